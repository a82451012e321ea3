"""Learning-rate schedule: constant, then an optional linear ramp-down near the end of a run.

Why it exists: with a constant rate the long-form model's FD swung by 2x between checkpoints 250
steps apart (docs/results.md, session 7), as if the GAN orbited a good region. Ramping both
players' rates down was the obvious cure; measured, it was not one (session 8: the swings stayed
and the end point was worse), so every shipped config keeps it off; it stays for experiments. The
schedule is in images seen (kimg), like the EMA's half-life, so a resumed or longer run keeps the
same rate at every step.

A family opts in with ``lr_decay_kimg > 0`` in its Config (fields ``lr_decay_start_kimg``,
``lr_decay_kimg``, ``lr_final``); without them the rate is constant.

Not ``torch.optim.lr_scheduler.LambdaLR``: the rate here is a pure function of the step, so the
trainer sets it at every step and an exact resume needs no scheduler state in the checkpoint
(LambdaLR keeps a step counter of its own that would have to be saved and restored beside the
optimisers); the base rate lives in the optimiser's state as ``initial_lr``, LambdaLR's name for it.
"""

from __future__ import annotations

import torch


def lr_scale(cfg, step: int, batch: int) -> float:
    """The factor on the base learning rates at G step ``step`` (0-based), global batch ``batch``:
    1 until ``lr_decay_start_kimg``, then linear to ``lr_final`` over ``lr_decay_kimg``, then
    ``lr_final``."""
    length = float(getattr(cfg, "lr_decay_kimg", 0.0))
    if length <= 0:
        return 1.0
    kimg = step * batch / 1000.0
    t = min(max((kimg - float(cfg.lr_decay_start_kimg)) / length, 0.0), 1.0)
    return 1.0 - (1.0 - float(cfg.lr_final)) * t


def remember_base_lr(opt: torch.optim.Optimizer) -> None:
    """Store each parameter group's base rate (``initial_lr``, kept in the optimiser's state
    dict) unless a resumed state already holds it."""
    for g in opt.param_groups:
        g.setdefault("initial_lr", g["lr"])


def set_lr(opt: torch.optim.Optimizer, scale: float) -> None:
    for g in opt.param_groups:
        g["lr"] = g["initial_lr"] * scale
