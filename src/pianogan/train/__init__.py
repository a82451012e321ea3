"""Training: one loop for every model family (pianogan.models), with exact resume, EMA,
mixed precision, samples, TensorBoard and data-parallel runs under torchrun.

* :mod:`.config` — :class:`TrainConfig` and how a run's configuration is resolved.
* :mod:`.trainer` — :func:`train`, the loop.
* :mod:`.checkpoint` — atomic checkpoints, ``generator.safetensors`` and :func:`load_generator`.
* :mod:`.sampler`, :mod:`.ema`, :mod:`.distributed`, :mod:`.precision`, :mod:`.samples` — its parts.
"""

from .config import TRAIN_PRESETS, TrainConfig

__all__ = ["TRAIN_PRESETS", "TrainConfig", "train", "load_generator"]


def __getattr__(name: str):
    # Lazy: torch-heavy modules load only when used.
    if name == "train":
        from .trainer import train

        return train
    if name == "load_generator":
        from .checkpoint import load_generator

        return load_generator
    raise AttributeError(name)
