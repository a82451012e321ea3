"""The models a server offers, by name: shipped pretrained models and the runs under ``--runs``.

A client only ever names a model; the path behind the name stays on the server. A *run
directory* is a folder holding ``generator.safetensors`` or ``checkpoints/step-N.pt`` (see
:mod:`pianogan.train.checkpoint`). Runs are found up to :data:`MAX_DEPTH` folders below
``--runs`` (``--runs`` itself may be a run); a run's name is its path below ``--runs`` with ``:``
between the parts (``runs/exp1/tiny`` -> ``exp1:tiny``). Folders whose names cannot be model
names, and runs whose generator cannot be read, are skipped and listed in :attr:`Registry.skipped`.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PianoGANError, describe

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+:-]{0,127}$")
MAX_DEPTH = 3
RESCAN_S = 1.0  # a lookup of an unknown name rescans --runs at most this often


def shipped_models() -> list[tuple[str, Path]]:
    """(name, path) of the pretrained models shipped inside the package (pianogan.pretrained's
    registry; empty until one meets its bar). They are listed first, with kind "shipped"."""
    from ..pretrained import HERE, registry

    return [(name, HERE / entry["file"]) for name, entry in sorted(registry().items())]


def check_name(name: str) -> str:
    """``name`` if it is a well-formed model name; a path (``../x``, ``/abs``) is refused."""
    if not isinstance(name, str) or not NAME.match(name) or ".." in name:
        raise PianoGANError("model must be a model name from GET /api/models, not a path")
    return name


def model_styles(info: dict) -> list[str]:
    """Style labels of a conditioned model (``info["styles"]`` or its config's ``styles``); [] for
    the unconditioned generators of today. The page shows the style control only when non-empty."""
    styles = info.get("styles") or (info.get("model_config") or {}).get("styles") or []
    return [str(s) for s in styles]


@dataclass(frozen=True)
class ModelEntry:
    """One model a client may ask for. ``path`` and ``identity`` never leave the server."""

    name: str
    kind: str  # "shipped" or "run"
    path: Path  # run directory or generator file
    identity: str  # changes whenever the weights change: part of every take's cache key
    model: str  # family: dcgan, specgan, stylegan2
    preset: str
    clip_seconds: float
    sample_rate: int
    step: int
    styles: tuple[str, ...] = field(default_factory=tuple)
    # What the generator's stored config says it can do (read, not built): its own truncation psi
    # (None: it takes none), its own drift in seconds (None: its global latent cannot drift),
    # whether it makes any length itself, and whether it plays notes that can be moved to a key
    # (``generate --key``), and whether it has a beat clock whose tempo can be set (``--tempo``).
    truncation_default: float | None = None
    drift_default: float | None = None
    any_length: bool = False
    plays_notes: bool = False
    beat_clock: bool = False

    @property
    def truncation(self) -> bool:
        """Whether the generator uses truncation psi (StyleGAN2 and longform do)."""
        return self.truncation_default is not None

    def public(self) -> dict:
        from ..keys import KEY_NAMES

        return {"name": self.name, "kind": self.kind, "model": self.model, "preset": self.preset,
                "clip_seconds": self.clip_seconds, "sample_rate": self.sample_rate,
                "step": self.step, "styles": list(self.styles), "truncation": self.truncation,
                "truncation_default": self.truncation_default, "any_length": self.any_length,
                "drift": self.drift_default is not None, "drift_default": self.drift_default,
                "keys": list(KEY_NAMES) if self.plays_notes else [], "tempo": self.beat_clock}


def weights_file(path: Path) -> Path:
    """The file a run's EMA generator loads from (as load_generator picks it)."""
    from ..train.checkpoint import latest_checkpoint

    if path.is_dir():
        gen = path / "generator.safetensors"
        if gen.is_file():
            return gen
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise PianoGANError(f"{path}: no generator.safetensors or checkpoints/")
        return ckpt
    return path


def read_model_info(path: Path) -> dict:
    """model, model_config, preset (dict), step of a generator file, without building it."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return {"model": meta["model"], "model_config": json.loads(meta["model_config"]),
                "preset": json.loads(meta["preset"]), "step": int(meta.get("step", 0))}
    from ..train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    return {"model": ckpt["model"], "model_config": dict(ckpt["model_config"]),
            "preset": dict(ckpt["preset"]), "step": int(ckpt["step"])}


def describe_model(name: str, kind: str, path: Path) -> ModelEntry:
    """A registry entry for the generator at ``path``; PianoGANError when it cannot be read."""
    from ..config import Preset

    file = weights_file(path)
    try:
        st = file.stat()
        info = read_model_info(file)
        preset = Preset.from_dict(info["preset"])
    except PianoGANError:
        raise
    except Exception as e:
        raise PianoGANError(f"{file}: not a readable generator ({describe(e)})") from None
    identity = f"{file.resolve()}|{st.st_size}|{st.st_mtime_ns}|{info['step']}"
    return ModelEntry(name=name, kind=kind, path=path, identity=identity, model=info["model"],
                      preset=preset.name, clip_seconds=float(preset.clip_seconds),
                      sample_rate=int(preset.sample_rate), step=int(info["step"]),
                      styles=tuple(model_styles(info)), **model_abilities(info))


def model_abilities(info: dict) -> dict:
    """truncation_default, drift_default, any_length, plays_notes, beat_clock of a generator, from its stored
    config (a longform file from before the drift has none: 0, one global latent per piece)."""
    cfg = info.get("model_config") or {}
    psi = cfg.get("truncation", 1.0 if info.get("model") == "stylegan2" else None)
    drift = cfg.get("drift_seconds", 0.0) if info.get("model") == "longform" else None
    return {"truncation_default": None if psi is None else float(psi),
            "drift_default": None if drift is None else float(drift),
            "any_length": bool(cfg.get("frames_per_latent")), "plays_notes": cfg.get("head") == "notes",
            "beat_clock": bool(cfg.get("beat_clock"))}


def is_run_dir(path: Path) -> bool:
    if (path / "generator.safetensors").is_file():
        return True
    ckpts = path / "checkpoints"
    return ckpts.is_dir() and any(p.name.startswith("step-") and p.suffix == ".pt"
                                  for p in ckpts.iterdir())


def find_runs(root: Path, max_depth: int = MAX_DEPTH) -> tuple[list[tuple[str, Path]], list[str]]:
    """(name, run dir) of every run under ``root``, and "path: reason" for each folder skipped."""
    runs, skipped = [], []
    if not root.is_dir():
        return runs, [f"{root}: no such directory"]
    if is_run_dir(root):
        name = root.resolve().name
        return ([(name, root)], []) if NAME.match(name) else ([], [f"{root}: not a usable name"])
    for here, dirs, _ in os.walk(root):
        rel = Path(here).relative_to(root)
        depth = len(rel.parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        keep = []
        for d in dirs:
            path = Path(here) / d
            if is_run_dir(path):
                name = ":".join((*rel.parts, d))
                if NAME.match(name) and ".." not in name:
                    runs.append((name, path))
                else:
                    skipped.append(f"{path}: name {name!r} is not a usable model name")
            elif depth + 1 < max_depth:
                keep.append(d)
        dirs[:] = keep
    return runs, skipped


class Registry:
    """Name -> :class:`ModelEntry`, rescanned on :meth:`refresh` (entries cached per identity)."""

    def __init__(self, runs: Path | None, shipped=shipped_models):
        self.runs = Path(runs) if runs is not None else None
        self._shipped = shipped
        self._lock = threading.Lock()
        self._entries: dict[str, ModelEntry] = {}
        self._cache: dict[tuple, ModelEntry] = {}
        self.skipped: list[str] = []
        self._scanned = 0.0

    def refresh(self) -> list[ModelEntry]:
        """Rescan shipped models and ``--runs``; returns the entries, shipped first."""
        found = [(name, Path(path), "shipped") for name, path in self._shipped()]
        skipped: list[str] = []
        if self.runs is not None:
            runs, skipped = find_runs(self.runs)
            found += [(name, path, "run") for name, path in runs]
        entries: dict[str, ModelEntry] = {}
        for name, path, kind in found:
            if name in entries:
                skipped.append(f"{path}: the name {name!r} is taken by {entries[name].kind} model")
                continue
            try:
                file = weights_file(path)
                key = (name, kind, str(path), file.stat().st_mtime_ns, file.stat().st_size)
                entry = self._cache.get(key) or describe_model(name, kind, path)
            except (PianoGANError, OSError) as e:
                skipped.append(f"{path}: {e}")
                continue
            self._cache[key] = entry
            entries[name] = entry
        with self._lock:
            self._entries, self.skipped, self._scanned = entries, skipped, time.monotonic()
        return list(entries.values())

    def entries(self) -> list[ModelEntry]:
        with self._lock:
            return list(self._entries.values())

    def get(self, name: str) -> ModelEntry:
        """The entry called ``name`` (rescanning once if unknown); PianoGANError when none is."""
        check_name(name)
        with self._lock:
            entry = self._entries.get(name)
            stale = time.monotonic() - self._scanned > RESCAN_S
        if entry is None and stale:
            self.refresh()
            with self._lock:
                entry = self._entries.get(name)
        if entry is None:
            raise LookupError(f"unknown model {name!r}")
        if not self._current(entry):  # retrained or replaced since the last scan
            self.refresh()
            with self._lock:
                entry = self._entries.get(name)
            if entry is None:
                raise LookupError(f"model {name!r} is gone")
        return entry

    @staticmethod
    def _current(entry: ModelEntry) -> bool:
        try:
            file = weights_file(entry.path)
            st = file.stat()
        except (PianoGANError, OSError):
            return False
        return entry.identity.startswith(f"{file.resolve()}|{st.st_size}|{st.st_mtime_ns}|")
