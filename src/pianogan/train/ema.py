"""Exponential moving average of the generator's weights (the copy that samples are drawn from).

The decay is set by a half-life in images (StyleGAN's convention): after ``half_life`` images
an old weight counts half. Early in training the half-life is capped at ``rampup`` times the
images seen so far, so the average does not drag the random initial weights along.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_beta(cfg, step: int, batch: int) -> float:
    """Per-step decay after G step ``step`` (0-based) with a global batch of ``batch`` images."""
    half_life = float(cfg.ema_half_life_kimg) * 1000.0
    if half_life <= 0:
        return 0.0
    rampup = float(cfg.ema_rampup)
    if rampup > 0:
        half_life = min(half_life, (step + 1) * batch * rampup)
    return 0.5 ** (batch / max(half_life, 1e-8))


def make_ema(G: nn.Module) -> nn.Module:
    """A frozen copy of G in eval mode."""
    ema = copy.deepcopy(G).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, G: nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * G for parameters; buffers (batch-norm statistics,
    StyleGAN's w average) are copied."""
    e_params, g_params = list(ema.parameters()), list(G.parameters())
    if beta <= 0:
        torch._foreach_copy_(e_params, [p.detach() for p in g_params])
    else:
        torch._foreach_lerp_(e_params, [p.detach() for p in g_params], 1.0 - beta)
    for eb, gb in zip(ema.buffers(), G.buffers()):
        eb.copy_(gb)
