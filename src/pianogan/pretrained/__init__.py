"""Pretrained generators that ship inside the package, and the export that makes one.

A shipped model is a ``NAME.safetensors`` file in this folder (fp16 weights + the metadata a run's
``generator.safetensors`` carries: family, config, preset, statistics, step) with its SHA-256 in
``MODELS.json`` and a model card ``NAME.md`` beside it. :func:`load_pretrained` checks the hash
before it builds the generator, and loads without executing code (safetensors).

``pianogan export RUN --name NAME`` (:func:`export`) turns a trained run into such a file; the
recipe that trains the shipped model from a fresh clone is ``make model`` (docs/results.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from ..atomic import write_json, write_text
from ..errors import PianoGANError

HERE = Path(__file__).resolve().parent
REGISTRY = HERE / "MODELS.json"
MAX_BYTES = 30 * 2 ** 20  # the project's limit on a shipped weights file


def registry(folder: Path = HERE) -> dict[str, dict]:
    """{name: {"file", "sha256", "bytes", ...}} of the models shipped in ``folder``."""
    path = folder / "MODELS.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def shipped_models(folder: Path = HERE) -> list[str]:
    """Names of the shipped pretrained models (empty until one meets its bar)."""
    return sorted(registry(folder))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_file(name: str | None = None, folder: Path = HERE) -> tuple[str, Path, dict]:
    """(name, path, MODELS.json entry) of a shipped model's weights (default: the first one), the
    file checked against the entry's SHA-256."""
    models = registry(folder)
    if not models:
        raise PianoGANError("this pianogan ships no pretrained model yet: give RUN_OR_CHECKPOINT (train "
                            "one with `make model`, docs/results.md)")
    name = name or sorted(models)[0]
    if name not in models:
        raise PianoGANError(f"unknown pretrained model {name!r}; shipped: {', '.join(sorted(models))}")
    entry = models[name]
    path = folder / entry["file"]
    if not path.is_file():
        raise PianoGANError(f"pretrained model {name!r}: {path.name} is missing from the package")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise PianoGANError(f"pretrained model {name!r}: {path.name} does not match its recorded hash "
                            f"(got {digest[:12]}..., expected {entry['sha256'][:12]}...): reinstall pianogan")
    return name, path, entry


def compare_to_shipped(name: str, path: Path, folder: Path = HERE, digest: str | None = None) -> str | None:
    """One line on whether the exported file ``path`` is the shipped model ``name``: the same file
    bit for bit, the same weights with another calibration, or another model (None when nothing
    of that name ships). Training is deterministic on one machine only (bf16 kernels differ
    between hosts, docs/results.md, section 46), so `make model` elsewhere trains another model;
    and the shipped file's calibration read its fp16 weights (section 37) where `make model`'s
    reads the fp32 ones, so even the same weights can carry calibrated figures a rounding apart.
    ``digest``: ``path``'s SHA-256 when the caller has it (the export's entry), else read here."""
    import numpy as np
    from safetensors.numpy import load_file

    entry = registry(folder).get(name)
    if entry is None:
        return None
    digest = digest or sha256(path)
    if digest == entry["sha256"]:
        return f"the same file as the shipped {name}, bit for bit (sha256 {digest[:16]}...)"
    ours, theirs = load_file(str(path)), load_file(str(folder / entry["file"]))
    same = [k for k in ours if k in theirs and ours[k].dtype == theirs[k].dtype and np.array_equal(ours[k], theirs[k])]
    if len(same) == len(ours) == len(theirs):
        return (f"the same weights as the shipped {name}, bit for bit ({len(same)} tensors), with calibrated "
                f"settings of its own (sha256 {digest[:16]}..., shipped {entry['sha256'][:16]}...)")
    return (f"not the shipped {name}: {len(same)} of {len(theirs)} weight tensors equal. Another model, as "
            f"training on another machine or from another seed makes; its own figures are the ones to read")


def resolve_input(spec: str, folder: Path = HERE) -> str:
    """A command's model input as a path: ``spec`` itself when it exists, else the hash-checked
    file of the shipped model of that name; anything else is left for the command to reject."""
    if Path(spec).exists() or spec not in shipped_models(folder):
        return spec
    return str(shipped_file(spec, folder)[1])


def load_pretrained(name: str | None = None, device="cpu", folder: Path = HERE):
    """(G in eval mode, info) of a shipped model (default: the first one), hash-checked."""
    from ..train.checkpoint import load_generator

    name, path, entry = shipped_file(name, folder)
    G, info = load_generator(path, device=device)
    return G, {**info, "pretrained": name, "sha256": entry["sha256"], "figures": dict(entry.get("figures", {}))}


def with_settings(cfg, model: str, settings: dict):
    """``cfg`` with sampling-time fields replaced; anything else is refused in one line (a field
    that changes training would make the file disagree with the run that trained it)."""
    from ..models import get_model

    allowed = tuple(getattr(get_model(model), "SAMPLING_FIELDS", ()))
    out = {}
    for field, value in settings.items():
        if field not in allowed:
            can = f"it can set: {', '.join(allowed)}" if allowed else "it has no sampling settings"
            raise PianoGANError(f"--set {field}: not a sampling setting of the {model} family ({can})")
        current = getattr(cfg, field)
        try:
            out[field] = _parse(type(current), value)
        except (TypeError, ValueError):
            raise PianoGANError(f"--set {field}: {value!r} is not a {type(current).__name__}") from None
    return dataclasses.replace(cfg, **out)


def _parse(kind: type, value: str):
    """``value`` (command-line text) as a ``kind``; a bool reads true/false, yes/no, on/off, 1/0."""
    if kind is bool:
        word = value.strip().lower()
        if word not in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            raise ValueError(value)
        return word in ("true", "yes", "on", "1")
    return kind(value)


def export(run: str | Path, name: str, folder: Path = HERE, fp16: bool = True, card: str = "",
           level_from: str | Path | None = None, level_n: int = 128, figures: dict | None = None,
           settings: dict | None = None, drift_n: int | None = None) -> dict:
    """Write a run's EMA generator as shipped model ``name`` in ``folder`` (fp16 by default) and
    record it in MODELS.json; returns the registry entry. ``run``: anything
    :func:`~pianogan.train.checkpoint.load_generator` reads (a run directory, a step-N.pt
    checkpoint, a generator.safetensors). ``level_from``: a prepared dataset whose training clips
    calibrate a ``longform`` model first: its share of each key (from the clips' piano rolls,
    when the data has them; :mod:`pianogan.keys`) and of each style, with ``match_dynamics`` its
    strike map (:mod:`pianogan.models.longform_dynamics`), its loudness
    (:mod:`pianogan.models.longform_level`), then its drift (:mod:`pianogan.models.longform_drift`;
    for a harmony-plan model how often its plans keep their key instead);
    all are kept in its config. ``figures``: measured figures {name: text} recorded with the entry
    (the demo's report shows them). ``settings``: {field: value} of the family's
    ``SAMPLING_FIELDS`` (fields that act only outside training, such as the truncation psi) to
    store in place of the run's, set before calibrating.
    ``drift_n``: generated pieces per drift candidate (None: the calibration's own number)."""
    from ..train.checkpoint import generator_metadata, load_generator, write_safetensors

    G, info = load_generator(run)
    if settings:
        G.cfg = with_settings(G.cfg, info["model"], settings)
    level = drift = dynamics = None
    if level_from is not None:
        from ..data.dataset import PianoDataset
        from ..data.rolls import clip_rolls, roll_to_notes

        styles = tuple(getattr(G.cfg, "styles", ()) or ())
        train_clips = PianoDataset(level_from, split="train")
        if len(train_clips) == 0:
            raise PianoGANError(f"{level_from}: no training clips to calibrate from")
        rolls = clip_rolls(train_clips)  # None for audio data
        strikes = None if rolls is None else roll_to_notes(rolls)[0]
        labels = _style_labels(train_clips, styles)
        G.cfg = dataclasses.replace(G.cfg, **_shares(strikes, styles, labels, G.cfg))
        if strikes is not None and getattr(G.cfg, "harmony_plan", False):  # how a long piece's plans move key
            from ..models.harmony_plan import key_steps

            G.cfg = dataclasses.replace(G.cfg, plan_key_steps=key_steps(strikes, train_clips.rows))
        dynamics = _calibrate_dynamics(G, strikes, labels)  # sets G.cfg.strike_map (when it asks for one)
        level = _calibrate(G, train_clips, level_n)  # sets G.cfg.strike_gain
        # The drift last: it counts the notes played, and the map and the gain decide which
        # strikes are loud enough to be notes. The two above are fitted with the run's drift (none
        # for a trained run) on 10 s clips, which a drift of 15 s or more hardly moves (on seed 0
        # a drift of 30 s had set the faint strikes' scale to 0.70 instead of 0.66, well within
        # what the FD can tell; docs/results.md, section 33).
        drift = _calibrate_drift(G, train_clips, strikes, drift_n)  # sets G.cfg.drift_seconds (data with rolls)
    # G's config, calibration included, with every field written out: a later default cannot
    # change a shipped model.
    model_config = dict(info["model_config"])
    if dataclasses.is_dataclass(G.cfg):
        model_config.update(dataclasses.asdict(G.cfg))
    meta = generator_metadata(info["model"], model_config, info["preset"], info["stats"], info["step"])
    state = {k: (v.half() if fp16 and v.is_floating_point() else v).contiguous()
             for k, v in G.state_dict().items()}
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}.safetensors"
    write_safetensors(out, state, meta)
    size = out.stat().st_size
    if size > MAX_BYTES:
        out.unlink()
        raise PianoGANError(f"{name}: {size / 2 ** 20:.1f} MB is over the {MAX_BYTES // 2 ** 20} MB limit")
    entry = {"file": out.name, "sha256": sha256(out), "bytes": size, "dtype": "float16" if fp16 else "float32",
             "model": info["model"], "step": int(info["step"]), "card": f"{name}.md"}
    if level is not None:
        entry["level"] = level
    if drift is not None:
        entry["drift"] = drift
    if dynamics is not None:
        entry["dynamics"] = dynamics
    if figures:
        entry["figures"] = {str(k): str(v) for k, v in figures.items()}
    if model_config.get("key_shares"):
        entry["key_shares"] = [round(float(s), 4) for s in model_config["key_shares"]]
    if model_config.get("style_shares"):
        entry["style_shares"] = dict(zip(model_config["styles"], (round(float(s), 4)
                                                                  for s in model_config["style_shares"])))
    models = registry(folder)
    models[name] = entry
    write_json(folder / "MODELS.json", models)
    if card:
        write_text(folder / f"{name}.md", card)
    return entry


def _shares(strikes, styles: tuple[str, ...], labels, cfg=None) -> dict:
    """Config fields calibrated to the training clips' piano-roll ``strikes`` (n, 88, T) (None for
    audio data) and style ``labels`` (n,) (:func:`_style_labels`; None without them):
    ``key_shares`` (24 keys; absent without rolls), for a model conditioned on ``styles`` (when
    the data has those labels) ``style_shares`` and ``style_key_shares``, and for a beat-clock
    ``cfg`` ``beat_periods``
    (each style's quantiles of the clips' beat periods, :mod:`pianogan.models.beat_clock`)."""
    import numpy as np

    from ..keys import key_shares, style_key_shares

    out: dict = {}
    if labels is not None:
        counts = np.bincount(labels, minlength=len(styles)).astype(np.float64)
        out["style_shares"] = tuple(float(c) for c in counts / counts.sum())
    if strikes is not None:
        out["key_shares"] = tuple(float(s) for s in key_shares(strikes))
        if labels is not None:
            out["style_key_shares"] = tuple(float(s) for s in style_key_shares(strikes, labels, len(styles)).ravel())
        if getattr(cfg, "beat_clock", False):
            from ..models.beat_clock import clip_beats, period_table

            fps = cfg.sample_rate / cfg.hop_length
            table = period_table(clip_beats(strikes, fps)[:, 0].double().numpy() / fps, labels,
                                 len(styles) if labels is not None else 0)
            if styles and labels is None:  # a conditional model on unlabelled data: every style alike
                table = table.repeat(len(styles), axis=0)
            out["beat_periods"] = tuple(float(v) for v in table.ravel())
    return out


def _style_labels(ds, styles: tuple[str, ...]):
    """(n,) style indices of the clips ``ds`` for a model conditioned on ``styles``, or None (no
    styles, or the data's labels are other styles)."""
    from ..data.labels import dataset_labels

    found = dataset_labels(ds) if styles else None
    return found[1] if found is not None and tuple(found[0]) == styles else None


def _calibrate_drift(G, ds, strikes, n: int | None = None) -> dict | None:
    """The key calibration (:mod:`pianogan.models.longform_drift`) against the key agreement of
    consecutive training clips ``ds`` of one piece (their rolls' ``strikes``): the global latent's
    drift, or a harmony-plan model's plan key hold; None when the data has no piano rolls or the
    model makes no notes."""
    from ..models.longform_drift import CALIBRATION_PIECES, calibrate_drift, calibrate_hold, real_agreement

    if strikes is None or getattr(G.cfg, "head", None) != "notes":  # only longform has a note head
        return None
    real, pairs, pieces = real_agreement(strikes, ds.rows)
    if not pairs:
        return None
    # a longform config from here on (the note head); a plan model's plans carry its key
    knob, calibrate = ("plan_key_hold", calibrate_hold) if G.cfg.harmony_plan else ("drift_seconds", calibrate_drift)
    out = calibrate(G, real, window=strikes.shape[-1], n=n or CALIBRATION_PIECES)
    return {knob: out[knob], "real": round(real, 4), "weighting": "per piece",
            "pairs": pairs, "pieces": pieces, "agreement": {f"{k:g}": round(v, 4) for k, v in out["agreement"].items()}}


def _calibrate_dynamics(G, strikes, labels) -> dict | None:
    """The dynamics map (:mod:`pianogan.models.longform_dynamics`) against the training rolls'
    ``strikes`` (one per style with the clips' style ``labels``), for a config with
    ``match_dynamics``; None otherwise (or without rolls)."""
    if strikes is None or not getattr(G.cfg, "match_dynamics", False):
        return None
    from ..models.longform_dynamics import calibrate_dynamics

    return calibrate_dynamics(G, strikes.numpy(), labels)


def _calibrate(G, ds, n: int) -> dict:
    """The level calibration against ``n`` of the training clips ``ds`` (a PianoDataset)."""
    import numpy as np

    from ..models.longform_level import calibrate_level

    idx = np.sort(np.random.default_rng(0).choice(len(ds), min(n, len(ds)), replace=False))
    real = ds.images(idx)
    out = {}
    if getattr(G.cfg, "level_through_ghosts", False) and getattr(G.cfg, "maps_dynamics", False):
        # The faint strikes below the dynamics map carry the level first; the strike gain then
        # takes what they cannot reach (about 1 when they reach it).
        ghosts = calibrate_level(G, real, n=n, field="ghost_scale")
        out["ghost_scale"] = round(float(ghosts["gain"]), 5)
    out.update({k: round(float(v), 5) for k, v in calibrate_level(G, real, n=n).items()})
    return out


__all__ = ["export", "load_pretrained", "registry", "sha256", "shipped_models"]
