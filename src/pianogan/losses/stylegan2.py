"""StyleGAN2-ADA losses: non-saturating logistic, lazy R1, lazy path-length regularisation,
style mixing, and the adaptive augmentation of everything D sees.

Written from Karras et al. 2020 (StyleGAN2 §3.1-3.2 and App. B; ADA §2-3):

* D: ``softplus(D(A(G(z)))) + softplus(-D(A(x)))``; every ``r1_interval``-th call also
  ``r1_interval · γ/2 · E[‖∇_x D(A(x))‖²]`` (R1 on the un-augmented reals, through the
  augmentation, as ADA does).
* G: ``softplus(-D(A(G(z))))``; every ``pl_interval``-th call also
  ``pl_interval · w_pl · E[(‖J_wᵀ y‖ - a)²]`` with y ~ N(0, I)/√(HW) and a the running mean of
  the path lengths (decay ``pl_decay``), on a batch ``pl_batch_shrink`` times smaller.
* With probability ``style_mixing_prob`` a batch is generated from two latents switched at a
  random layer.

The schedule: the regularisers are added to the main loss of the same minibatch, because the
trainer performs one optimiser step per loss; scaling by the interval keeps their average
strength. So, unlike the paper's code, no network takes extra optimiser steps for them, and
Adam needs no correction for such steps (see :func:`lazy_adam`, which the optimisers' settings
go through).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import AdaController, SpectrogramAugment


# Whether a lazy regulariser runs as an optimiser step of its own (the paper's code) or rides in
# the loss of every k-th minibatch (this module: see d_loss and g_loss).
SEPARATE_REGULARISER_STEPS = False


def lazy_adam(lr: float, betas: tuple[float, float], interval: int,
              separate_steps: bool = SEPARATE_REGULARISER_STEPS) -> tuple[float, tuple[float, float]]:
    """Adam's (lr, betas) for a network with a lazy regulariser every ``interval`` minibatches
    (0 = none).

    StyleGAN2 (App. B) runs the regulariser as a separate optimiser step every k minibatches,
    so the network takes k + 1 steps per k minibatches; it multiplies the learning rate by
    c = k / (k + 1) and raises both betas to the power c, keeping the per-minibatch step size
    and Adam's memory what they would be without the extra steps. Only that schedule needs
    the correction. Here the regulariser rides in the minibatch's own step (k steps per k
    minibatches), so the paper's lr and betas apply unchanged; correcting them anyway trained
    G with a 20 % and D with a 6 % lower learning rate than the paper's.
    """
    if not separate_steps or interval <= 0:
        return lr, (betas[0], betas[1])
    c = interval / (interval + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)


def _unwrap(m: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (attributes live there)."""
    return m.module if hasattr(m, "module") else m


def r1_penalty(real: torch.Tensor | Sequence[torch.Tensor], logits: torch.Tensor,
               create_graph: bool = True) -> torch.Tensor:
    """Per-sample ‖∇_real Σ logits‖² (n,); ``real`` (one tensor, or several inputs of the same
    critic, whose squared gradients add up) must require grad and produce ``logits``."""
    inputs = [real] if isinstance(real, torch.Tensor) else list(real)
    grads = torch.autograd.grad(logits.sum(), inputs, create_graph=create_graph)
    return sum(g.float().square().flatten(1).sum(dim=1) for g in grads)


class StyleGAN2Loss:
    """The loss object of the ``stylegan2`` family (see ``pianogan.models`` interface)."""

    def __init__(self, cfg, G: nn.Module, D: nn.Module):
        self.cfg, self.G, self.D = cfg, G, D
        self.n_critic = 1
        self.augment = SpectrogramAugment(cfg.augment_params(),
                                          p=cfg.aug_p if cfg.augment != "none" else 0.0)
        self.ada = AdaController(self.augment, cfg.ada_target, cfg.ada_interval, cfg.ada_kimg,
                                 adapt=cfg.augment == "ada")
        self.pl_mean = 0.0

    # ------------------------------------------------------------------ helpers
    def _mixing(self, z: torch.Tensor) -> dict:
        """Style-mixing kwargs for one batch: with probability p a second latent and a cutoff."""
        g = _unwrap(self.G)
        if self.cfg.style_mixing_prob > 0 and torch.rand(()).item() < self.cfg.style_mixing_prob:
            return {"mix_z": g.sample_z(z.shape[0], device=z.device),
                    "mixing_cutoff": int(torch.randint(1, g.num_ws, ()).item())}
        return {}

    def _D(self, x: torch.Tensor) -> torch.Tensor:
        return self.D(self.augment(x) if self.cfg.augment != "none" else x)

    # ------------------------------------------------------------------ D
    def d_loss(self, real: torch.Tensor, z: torch.Tensor, step: int):
        """real (B, 1, H, W) in [-1, 1], z (B, z_dim) -> (loss, stats)."""
        with torch.no_grad():
            fake = self.G(z, **self._mixing(z))
        fake_logits = self._D(fake.detach())
        do_r1 = self.cfg.r1_gamma > 0 and step % self.cfg.r1_interval == 0
        real = real.detach().requires_grad_(do_r1)
        real_logits = self._D(real)
        loss_fake = F.softplus(fake_logits).mean()
        loss_real = F.softplus(-real_logits).mean()
        loss = loss_fake + loss_real
        stats = {"loss/D_real": loss_real.item(), "loss/D_fake": loss_fake.item(),
                 "D/real": real_logits.detach().float().mean().item(),
                 "D/fake": fake_logits.detach().float().mean().item()}
        if do_r1:
            r1 = r1_penalty(real, real_logits).mean()
            loss = loss + r1 * (self.cfg.r1_gamma / 2) * self.cfg.r1_interval
            stats["loss/r1"] = r1.item()
        self.ada.accumulate(real_logits)
        stats["loss/D"] = loss.item()
        stats["ada/p"] = self.augment.p
        if not math.isnan(self.ada.last_rt):
            stats["ada/rt"] = self.ada.last_rt
        return loss, stats

    # ------------------------------------------------------------------ G
    def g_loss(self, z: torch.Tensor, step: int):
        """z (B, z_dim) -> (loss, stats); also updates G's w_avg (for truncation)."""
        fake = self.G(z, update_w_avg=True, **self._mixing(z))
        logits = self._D(fake)
        loss = F.softplus(-logits).mean()
        stats = {"loss/G_main": loss.item()}
        if self.cfg.pl_weight > 0 and step % self.cfg.pl_interval == 0:
            pl, lengths = self._path_length(z)
            loss = loss + pl * self.cfg.pl_weight * self.cfg.pl_interval
            stats.update({"loss/pl": pl.item(), "pl/length": lengths, "pl/mean": self.pl_mean})
        stats["loss/G"] = loss.item()
        return loss, stats

    def _path_length(self, z: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Path-length penalty mean((|J^T y| - a)^2) on a smaller batch; updates the running a."""
        n = max(1, z.shape[0] // max(1, self.cfg.pl_batch_shrink))
        z = z[:n]
        img, ws = self.G(z, return_ws=True, **self._mixing(z))
        h, w = img.shape[-2:]
        y = torch.randn_like(img) / math.sqrt(h * w)
        (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
        lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()  # (n,)
        mean = lengths.detach().mean()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(mean)
            mean = mean / torch.distributed.get_world_size()
        batch_mean = mean.item()
        # a <- a + decay (mean - a), as a python float (exact resume via state_dict)
        self.pl_mean = self.pl_mean + self.cfg.pl_decay * (batch_mean - self.pl_mean)
        penalty = (lengths - self.pl_mean).square().mean()
        return penalty, batch_mean

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        return {"ada": self.ada.state_dict(), "pl_mean": self.pl_mean}

    def load_state_dict(self, d: dict) -> None:
        self.ada.load_state_dict(d["ada"])
        self.pl_mean = float(d["pl_mean"])
