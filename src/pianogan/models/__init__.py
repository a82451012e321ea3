"""GAN model families, looked up by name.

Each family is a module ``pianogan.models.<name>`` providing ``Config`` (every model and
optimisation hyperparameter), ``CONFIGS`` (named presets, at least "default" and "tiny"),
``build(cfg, image_shape) -> (G, D)`` and ``make_loss(cfg, G, D)``; see docs/training.md. The
trainer reads these ``Config`` fields of every family: ``batch_size``, ``lr_g``, ``lr_d``,
``betas``, ``adam_eps`` (or an ``adam(net)`` method giving Adam's arguments), ``grad_clip``,
``ema_half_life_kimg`` and ``ema_rampup``. Optional: ``configure(cfg, preset, stats, styles)``
completes a config from the dataset (the trainer calls it before ``build``); a config with a
non-empty ``styles`` makes a conditional model, whose ``G(z, labels)``, ``D(x, labels)`` and
loss methods take ``labels`` (n,) int64 style indices. Optional: ``prepare(G, dataset, rolls,
plans)``, a data-dependent initialisation of a fresh run (``rolls``: the clips' piano rolls or
None; ``plans``: their harmony plans, train/conditioning.clip_plans, or None).
Optional: ``SAMPLING_FIELDS``, the Config fields that act only outside training (``pianogan
export --set`` may change them on a trained run). Optional: ``RETIRED_FIELDS`` (stored fields that
are ignored) and ``upgrade_fields(fields) -> fields`` (stored fields of an older version rewritten
as the current Config's), applied when a checkpoint's or a shipped file's config is read.
Families are imported only when asked for, so importing this package stays cheap.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import PianoGANError

MODELS = ("dcgan", "specgan", "stylegan2", "longform")


def get_model(name: str) -> ModuleType:
    """The module of model family ``name`` (one of :data:`MODELS`)."""
    if name not in MODELS:
        raise PianoGANError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return importlib.import_module(f"{__name__}.{name}")


def config_from_dict(name: str, fields: dict):
    """Family ``name``'s Config from stored fields (a checkpoint's ``model_config``): renamed
    ones rewritten by the family's ``upgrade_fields``, retired ones (``RETIRED_FIELDS``) ignored."""
    family = get_model(name)
    fields = dict(fields)
    if hasattr(family, "upgrade_fields"):
        fields = family.upgrade_fields(fields)
    retired = set(getattr(family, "RETIRED_FIELDS", ()))
    return family.Config(**{k: v for k, v in fields.items() if k not in retired})


__all__ = ["MODELS", "config_from_dict", "get_model"]
