"""Loss of the ``longform`` family: non-saturating logistic with lazy R1, optionally conditional.

D: softplus(D(G(z, y), y)) + softplus(-D(x, y)), and every ``r1_interval``-th step
``r1_interval · γ/2 · E‖∇_x D(x, y)‖²`` on the reals (added to the same step; see
losses/stylegan2.py for why the interval scales it). G: softplus(-D(G(z, y), y)).
Labels y: a real batch's own labels for D (the fakes get the same labels, so D compares like
with like), labels drawn by the trainer for G; None for an unconditional model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .stylegan2 import r1_penalty


class LongformLoss:
    def __init__(self, cfg, G: nn.Module, D: nn.Module):
        self.cfg, self.G, self.D = cfg, G, D
        self.n_critic = int(cfg.n_critic)

    def d_loss(self, real: torch.Tensor, z: torch.Tensor, step: int, labels: torch.Tensor | None = None):
        """real (B, 1, F, T) in [-1, 1], z (B, z_dim), labels (B,) or None -> (loss, stats)."""
        with torch.no_grad():
            fake = self.G(z, labels).to(real.dtype)
        do_r1 = self.cfg.r1_gamma > 0 and step % self.cfg.r1_interval == 0
        real = real.detach().requires_grad_(do_r1)
        real_logits = self.D(real, labels).float()
        fake_logits = self.D(fake, labels).float()
        loss_real = F.softplus(-real_logits).mean()
        loss_fake = F.softplus(fake_logits).mean()
        loss = loss_real + loss_fake
        stats = {"loss/D_real": loss_real.item(), "loss/D_fake": loss_fake.item(),
                 "D/real": real_logits.detach().mean().item(), "D/fake": fake_logits.detach().mean().item()}
        if do_r1:
            r1 = r1_penalty(real, real_logits).mean()
            loss = loss + r1 * (self.cfg.r1_gamma / 2) * self.cfg.r1_interval
            stats["loss/r1"] = r1.item()
        stats["loss/D"] = loss.item()
        return loss, stats

    def g_loss(self, z: torch.Tensor, step: int, labels: torch.Tensor | None = None):
        """z (B, z_dim), labels (B,) or None -> (loss, stats)."""
        loss = F.softplus(-self.D(self.G(z, labels), labels).float()).mean()
        return loss, {"loss/G": loss.item()}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None:
        pass
