"""Checkpoints of a run, and loading a generator from one.

A run directory holds::

    RUN/checkpoints/step-0001000.pt   torch.save of tensors and plain values only (see KEYS)
    RUN/checkpoints/latest            the newest checkpoint's file name
    RUN/generator.safetensors         the EMA generator's weights; metadata: model, model_config,
                                      preset, stats, step (JSON strings)

Every file is written through :mod:`pianogan.atomic` (temporary name, fsync, rename), so a crash
never leaves half a file, and the newest complete checkpoint is the one ``latest`` names. A file
damaged anyway (a truncated copy, a failing disk) is skipped with a warning by
:func:`load_newest_checkpoint` and by :func:`load_generator` given a run directory, which take
the newest readable one. Everything loads with ``torch.load(weights_only=True)`` or safetensors:
no pickled code runs.
"""

from __future__ import annotations

import json
import pickle
import random
import re
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path, write_text
from ..config import Preset
from ..errors import PianoGANError, describe, warn
from ..spectrogram import Stats

FORMAT_VERSION = 1
KEYS = ("format_version", "model", "model_config", "preset", "stats", "step", "G", "D", "G_ema",
        "opt_G", "opt_D", "loss_state", "rng", "train_config")
_STEP_FILE = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}.pt"


def checkpoint_step(path: str | Path) -> int:
    """The step a step-N.pt checkpoint file holds, from its name."""
    m = _STEP_FILE.match(Path(path).name)
    if m is None:
        raise ValueError(f"{path} is not named step-N.pt")
    return int(m.group(1))


def save_checkpoint(run: str | Path, ckpt: dict, keep: int = 3) -> Path:
    """Write ``ckpt`` as RUN/checkpoints/step-N.pt atomically, point ``latest`` at it and delete
    all but the newest ``keep`` checkpoints."""
    missing = set(KEYS) - set(ckpt)
    if missing:
        raise ValueError(f"checkpoint lacks {sorted(missing)}")
    folder = Path(run) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(int(ckpt["step"]))
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    write_text(folder / "latest", path.name + "\n")
    for old in list_checkpoints(run)[:-keep]:
        if old != path:
            old.unlink(missing_ok=True)
    return path


def list_checkpoints(run: str | Path) -> list[Path]:
    """RUN's step-N.pt files, oldest first."""
    folder = Path(run) / "checkpoints"
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if _STEP_FILE.match(p.name)]
    return sorted(files, key=checkpoint_step)


def latest_checkpoint(run: str | Path) -> Path | None:
    """The checkpoint ``latest`` names (or the highest step-N.pt if the pointer is missing)."""
    folder = Path(run) / "checkpoints"
    pointer = folder / "latest"
    if pointer.is_file():
        path = folder / pointer.read_text().strip()
        if path.is_file():
            return path
    files = list_checkpoints(run)
    return files[-1] if files else None


class UnreadableCheckpoint(PianoGANError):
    """A checkpoint or generator file that cannot be read: torn, truncated or foreign."""


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """A checkpoint dict, loaded without executing code (``weights_only=True``)."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise PianoGANError(f"{path}: no such checkpoint") from None
    except pickle.UnpicklingError:  # torch's message would advise weights_only=False: not here
        raise UnreadableCheckpoint(f"{path}: not a PianoGAN checkpoint, or a damaged one") from None
    except Exception as e:  # a torn or foreign file
        raise UnreadableCheckpoint(f"{path}: not a readable PianoGAN checkpoint ({describe(e)})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "G" not in ckpt:
        raise UnreadableCheckpoint(f"{path}: not a PianoGAN checkpoint")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise PianoGANError(f"{path}: written by a newer pianogan (format {ckpt['format_version']})")
    return ckpt


def load_newest_checkpoint(run: str | Path, map_location="cpu") -> tuple[Path, dict] | None:
    """(path, checkpoint) of RUN's newest *readable* checkpoint; None when RUN has none.

    A checkpoint that cannot be read (a truncated or otherwise damaged file) is skipped with a
    warning that names it, and the next older one is tried, so a damaged file costs at most the
    steps since the checkpoint before it. When no checkpoint can be read, the error names each.
    """
    newest = latest_checkpoint(run)
    if newest is None:
        return None
    older = [p for p in reversed(list_checkpoints(run)) if p != newest]
    skipped: list[str] = []
    for path in [newest, *older]:
        try:
            ckpt = load_checkpoint(path, map_location)
        except UnreadableCheckpoint as e:
            skipped.append(str(e))
            continue
        if skipped:
            warn(f"skipped {len(skipped)} unreadable checkpoint(s): {'; '.join(skipped)}; using "
                 f"{path.name} (step {int(ckpt['step'])}), the newest readable one")
        return path, ckpt
    raise UnreadableCheckpoint(f"{run}: no readable checkpoint: {'; '.join(skipped)}")


def generator_metadata(model: str, model_config: dict, preset: Preset, stats: Stats, step: int) -> dict[str, str]:
    """The string metadata a generator.safetensors carries: all that is needed to rebuild G."""
    return {"format_version": str(FORMAT_VERSION), "model": model,
            "model_config": json.dumps(model_config), "preset": json.dumps(preset.to_dict()),
            "stats": json.dumps(stats.to_dict()), "step": str(int(step))}


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write ``tensors`` with ``metadata`` to ``path`` as safetensors, atomically and byte for
    byte the same for the same input.

    safetensors (0.8) serialises the metadata from a hash map, whose order changes from one
    write to the next, so two exports of the same weights and config differed in their bytes
    and their hash. The header is written again with the metadata's keys sorted: the same JSON
    text reordered, so it keeps its length and the tensors their offsets.
    """
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) <= n:  # always, for a reordering; the format pads its header with spaces
        data = data[:8] + text.ljust(n) + data[8 + n:]
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def save_generator(run: str | Path, state: dict, model: str, model_config: dict, preset: Preset,
                   stats: Stats, step: int) -> Path:
    """RUN/generator.safetensors: ``state`` (the EMA generator's state dict) + metadata."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    meta = generator_metadata(model, model_config, preset, stats, step)
    path = Path(run) / "generator.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)  # a run's first save may come before any other
    write_safetensors(path, tensors, meta)
    return path


# ----------------------------------------------------------------------------- RNG states

def rng_state(device: torch.device | None = None) -> dict:
    """This process's torch (CPU and CUDA), numpy and python RNG states as plain values."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                       "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                       "cached_gaussian": float(np_state[4])},
             "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]}}
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device | None = None) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if device is not None and device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


# ----------------------------------------------------------------------------- generators

def _build_generator(model: str, model_config: dict, preset: Preset):
    from ..models import config_from_dict, get_model

    family = get_model(model)
    try:
        cfg = config_from_dict(model, model_config)
    except TypeError as e:
        raise PianoGANError(f"checkpoint's {model} config does not fit this pianogan: {e}") from None
    G, _ = family.build(cfg, preset.image_shape)
    return G


def _from_safetensors(path: Path, device) -> tuple[torch.nn.Module, dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
        model, model_config = meta["model"], json.loads(meta["model_config"])
        preset = Preset.from_dict(json.loads(meta["preset"]))
        stats = Stats.from_dict(json.loads(meta["stats"]))
        step = int(meta.get("step", 0))
    except PianoGANError:
        raise
    except Exception as e:
        raise UnreadableCheckpoint(f"{path}: not a PianoGAN generator file ({describe(e)})") from None
    G = _build_generator(model, model_config, preset)
    G.load_state_dict(state)
    info = {"model": model, "model_config": model_config, "preset": preset, "stats": stats,
            "step": step, "path": str(path)}
    return G.to(device).eval(), info


def load_generator(path: str | Path, device="cpu", ema: bool = True) -> tuple[torch.nn.Module, dict]:
    """(G in eval mode, info) from a run directory, a step-N.pt checkpoint or a
    generator.safetensors. ``ema=False`` gives the raw (non-averaged) weights, which only .pt
    checkpoints hold. info: model, model_config (dict), preset (Preset), stats (Stats), step,
    path (the file read)."""
    path = Path(path)
    if path.is_dir():  # a run: its generator file, else its newest readable checkpoint
        run, gen = path, path / "generator.safetensors"
        if ema and gen.is_file():
            try:
                return _from_safetensors(gen, device)
            except UnreadableCheckpoint as e:
                if latest_checkpoint(run) is None:
                    raise
                warn(f"{e}; using the run's newest readable checkpoint instead")
        found = load_newest_checkpoint(run)
        if found is None:
            raise PianoGANError(f"{run}: no generator.safetensors or checkpoints/ in this run directory")
        return _from_checkpoint(*found, device=device, ema=ema)
    if not path.is_file():
        raise PianoGANError(f"{path}: no such run directory or checkpoint")
    if path.suffix == ".safetensors":
        if not ema:
            raise PianoGANError(f"{path} holds only the EMA generator; pass a .pt checkpoint for "
                                f"the raw weights")
        return _from_safetensors(path, device)
    return _from_checkpoint(path, load_checkpoint(path), device=device, ema=ema)


def _from_checkpoint(path: Path, ckpt: dict, device, ema: bool) -> tuple[torch.nn.Module, dict]:
    preset = Preset.from_dict(ckpt["preset"])
    G = _build_generator(ckpt["model"], dict(ckpt["model_config"]), preset)
    G.load_state_dict(ckpt["G_ema" if ema else "G"])
    info = {"model": ckpt["model"], "model_config": dict(ckpt["model_config"]), "preset": preset,
            "stats": Stats.from_dict(ckpt["stats"]), "step": int(ckpt["step"]), "path": str(path)}
    return G.to(device).eval(), info
