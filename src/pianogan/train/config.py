"""How a training run is configured.

A run has two dataclasses: the model family's ``Config`` (architecture, optimiser, loss;
``pianogan.models.<name>.Config``) and :class:`TrainConfig` (length, logging, checkpoints,
precision). ``--config NAME`` picks the presets of that name for both (``"default"``: the
paper's settings, ``"tiny"``: a CPU demo); ``--config FILE.json`` holds
``{"base": NAME, "model": {...}, "train": {...}}`` or the same fields flat (each key goes to
whichever of the two dataclasses has it). Command-line options override single fields.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ..config import read_json_file
from ..errors import PianoGANError


@dataclass
class TrainConfig:
    """Everything about a run that is not the model: length, seeds, logging, checkpoints."""

    steps: int = 100_000  # total generator steps of the run
    seed: int = 0  # model init, latents, data order
    device: str = "auto"  # "auto" (CUDA if present), "cpu", "cuda"
    amp: str = "auto"  # "auto": bf16 on CUDA and on CPUs with native bf16 (AVX-512 BF16 / AMX); "bf16"; "off"
    channels_last: str = "auto"  # "auto" (CUDA, or CPU with images >= 256x256), "on", "off"
    log_every: int = 10  # TensorBoard scalars / metrics.jsonl every this many steps
    sample_every: int = 1000  # sample grid PNG + WAVs every this many steps (0 = only at the end)
    ckpt_every: int = 1000  # checkpoint every this many steps (and always at the end)
    keep_checkpoints: int = 3  # the newest this many step-*.pt files are kept
    sample_images: int = 16  # images in the sample grid (fixed latents)
    sample_audio: int = 4  # WAVs written per sample round (the grid's first images)
    sample_gl_iters: int = 32  # Griffin-Lim iterations for those WAVs
    sample_seed: int = 1234  # seed of the fixed latents

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise PianoGANError("steps must be >= 1")
        if self.amp not in ("auto", "bf16", "off"):
            raise PianoGANError(f"amp must be 'auto', 'bf16' or 'off', got {self.amp!r}")
        if self.channels_last not in ("auto", "on", "off"):
            raise PianoGANError(f"channels_last must be 'auto', 'on' or 'off', got {self.channels_last!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise PianoGANError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if min(self.log_every, self.ckpt_every, self.keep_checkpoints) < 1 or self.sample_every < 0:
            raise PianoGANError("log_every, ckpt_every and keep_checkpoints must be >= 1, "
                                "sample_every >= 0")
        if min(self.sample_images, self.sample_audio, self.sample_gl_iters) < 0:
            raise PianoGANError("sample_images, sample_audio and sample_gl_iters must be >= 0")


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "default": TrainConfig(),
    "tiny": TrainConfig(steps=400, log_every=5, sample_every=100, ckpt_every=100, sample_images=8,
                        sample_audio=2),
}


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _replace(obj, changes: dict, what: str):
    try:
        return dataclasses.replace(obj, **changes)
    except TypeError as e:
        raise PianoGANError(f"invalid {what} configuration: {e}") from None


def resolve_config(model: str, config: str | Path | dict | None = "default",
                   overrides: dict | None = None):
    """(model Config, TrainConfig) for family ``model`` from a preset name, a JSON file or a dict.

    ``overrides`` sets single fields of either dataclass (``batch_size`` is the model's); a
    value of None leaves the field alone.
    """
    from ..models import get_model

    family = get_model(model)
    spec: dict
    if config is None:
        spec = {}
    elif isinstance(config, dict):
        spec = dict(config)
    elif str(config).endswith(".json"):
        path = Path(config)
        spec = read_json_file(path, "config file")
        if not isinstance(spec, dict):
            raise PianoGANError(f"config file {path}: expected a JSON object")
    else:
        spec = {"base": str(config)}
    base = spec.pop("base", "default")
    if base not in family.CONFIGS:
        raise PianoGANError(f"unknown {model} config {base!r}; choose from "
                            f"{', '.join(family.CONFIGS)} or a .json file")
    model_changes, train_changes = dict(spec.pop("model", {}) or {}), dict(spec.pop("train", {}) or {})
    model_fields, train_fields = _fields(family.Config), _fields(TrainConfig)
    for key, value in {**spec, **{k: v for k, v in (overrides or {}).items() if v is not None}}.items():
        if key in model_fields:
            model_changes[key] = value
        elif key in train_fields:
            train_changes[key] = value
        else:
            raise PianoGANError(f"unknown configuration field {key!r} for {model}")
    for key in model_changes:
        if key not in model_fields:
            raise PianoGANError(f"unknown {model} model field {key!r}")
    for key in train_changes:
        if key not in train_fields:
            raise PianoGANError(f"unknown training field {key!r}")
    model_cfg = _replace(family.CONFIGS[base], model_changes, model)
    train_cfg = _replace(TRAIN_PRESETS.get(base, TRAIN_PRESETS["default"]), train_changes, "training")
    return model_cfg, train_cfg


# ----------------------------------------------------------------------------- --resume policy
def _same_stats(old: dict, new: dict) -> bool:
    return (math.isclose(old["mean"], new["mean"], rel_tol=1e-6, abs_tol=1e-9)
            and math.isclose(old["std"], new["std"], rel_tol=1e-6))


def _show_stats(d: dict) -> str:
    return f"mean {d['mean']:.4g}, std {d['std']:.4g}"


# A resumed run continues the checkpoint's run exactly. These keys of the checkpoint must match
# what the run is given now: key -> (what it is, equal(checkpoint's, now), how to show one).
RESUME_MUST_MATCH = {
    "model": ("model family", lambda a, b: a == b, str),
    "preset": ("spectrogram preset", lambda a, b: dict(a) == dict(b), lambda d: repr(d.get("name"))),
    "stats": ("normalisation statistics", _same_stats, _show_stats),
    "model_config": ("model configuration", lambda a, b: dict(a) == dict(b), None),
}
# Of TrainConfig, a resumed run may change only these; the rest keeps the checkpoint's values.
RESUMABLE_OVERRIDES = ("steps", "device", "amp", "log_every", "sample_every", "ckpt_every",
                       "keep_checkpoints", "sample_images", "sample_audio", "sample_gl_iters",
                       "channels_last")


def resumed_config(model: str, ckpt: dict, source, now: dict, config: str | Path | dict | None,
                   overrides: dict, configure=None):
    """(model Config, TrainConfig) of a run resumed from checkpoint ``ckpt`` (read from file
    ``source``), applying the policy above.

    ``now``: the run's "model", "preset" and "stats" (dicts) as given today. ``config`` (None =
    "the checkpoint's") may only restate the checkpoint's model configuration; ``overrides``
    may change the RESUMABLE_OVERRIDES fields, and any other field only to its current value.
    ``configure(cfg)``: how a fresh run completes its model config from the dataset (see
    ``Trainer._configure``), applied to ``config`` before it is compared.
    """
    from ..models import config_from_dict

    model_cfg = config_from_dict(ckpt["model"], ckpt["model_config"])
    then = {**ckpt, "model_config": dataclasses.asdict(model_cfg)}
    if config is not None:
        want = resolve_config(model, config, overrides)[0]
        now = {**now, "model_config": dataclasses.asdict(configure(want) if configure else want)}
    for key, (what, same, show) in RESUME_MUST_MATCH.items():
        if key not in now or same(then[key], now[key]):
            continue
        if show is None:
            diff = sorted(k for k, v in now[key].items() if then[key].get(k) != v)
            raise PianoGANError(f"--resume keeps the run's {what}; these differ from the "
                                f"checkpoint: {', '.join(diff)}")
        raise PianoGANError(f"{source} was trained with {what} {show(then[key])}; this run has "
                            f"{show(now[key])}" + (" (was the dataset prepared again?)"
                                                   if key == "stats" else ""))
    train_cfg = TrainConfig(**dict(ckpt["train_config"]))
    bad = {k for k in set(overrides) - set(RESUMABLE_OVERRIDES)
           if getattr(model_cfg, k, getattr(train_cfg, k, None)) != overrides[k]}
    if bad:
        raise PianoGANError(f"--resume cannot change {', '.join(sorted(bad))}")
    changes = {k: v for k, v in overrides.items() if k in RESUMABLE_OVERRIDES}
    return model_cfg, dataclasses.replace(train_cfg, **changes)
