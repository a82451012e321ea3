"""Binary cross-entropy GAN loss on logits (DCGAN), with the paper's three tricks.

D minimises BCE(D(x), t_real) + BCE(D(G(z)), t_fake) with t_real = 1 - label_smoothing (one
sided: fake targets stay 0) and, with probability ``label_flip_prob`` per sample, the two
targets swapped. G minimises the non-saturating BCE(D(G(z)), 1). Instance noise: every image D
sees gets Gaussian noise of std ``instance_noise * max(0, 1 - step / instance_noise_steps)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BCELoss:
    """Loss object of the ``dcgan`` family (interface: docs/training.md)."""

    def __init__(self, G: nn.Module, D: nn.Module, n_critic: int = 1, label_flip_prob: float = 0.0,
                 label_smoothing: float = 0.0, instance_noise: float = 0.0,
                 instance_noise_steps: int = 0):
        self.G, self.D = G, D
        self.n_critic = int(n_critic)
        self.label_flip_prob = float(label_flip_prob)
        self.label_smoothing = float(label_smoothing)
        self.instance_noise = float(instance_noise)
        self.instance_noise_steps = int(instance_noise_steps)
        # D with batch statistics (batch norm) sees real and fake batches in separate passes.
        self.separate_passes = any(isinstance(m, nn.modules.batchnorm._NormBase) for m in D.modules())

    def noise_std(self, step: int) -> float:
        """Instance-noise std at G step ``step`` (linear decay to 0)."""
        if self.instance_noise_steps <= 0:
            return self.instance_noise
        return self.instance_noise * max(0.0, 1.0 - step / self.instance_noise_steps)

    def _noisy(self, x: torch.Tensor, step: int) -> torch.Tensor:
        std = self.noise_std(step)
        return x + std * torch.randn_like(x) if std > 0 else x

    def targets(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(t_real, t_fake), each (n,): smoothed, and swapped where a per-sample flip fires."""
        t_real = torch.full((n,), 1.0 - self.label_smoothing, device=device)
        t_fake = torch.zeros(n, device=device)
        if self.label_flip_prob > 0:
            flip = torch.rand(n, device=device) < self.label_flip_prob
            t_real, t_fake = torch.where(flip, t_fake, t_real), torch.where(flip, t_real, t_fake)
        return t_real, t_fake

    def d_loss(self, real: torch.Tensor, z: torch.Tensor, step: int):
        """real (B, 1, H, W) in [-1, 1], z (B, z_dim) -> (loss, stats)."""
        with torch.no_grad():
            fake = self.G(z).to(real.dtype)
        n = real.shape[0]
        if self.separate_passes:  # batch norm in D: never mix real and fake in one batch
            real_logits = self.D(self._noisy(real, step)).float()
            fake_logits = self.D(self._noisy(fake, step)).float()
        else:  # no batch statistics: one pass over [real; fake] is the same function as two
            logits = self.D(self._noisy(torch.cat([real, fake]), step)).float()
            real_logits, fake_logits = logits[:n], logits[n:]
        t_real, t_fake = self.targets(n, real.device)
        loss_real = F.binary_cross_entropy_with_logits(real_logits, t_real)
        loss_fake = F.binary_cross_entropy_with_logits(fake_logits, t_fake)
        loss = loss_real + loss_fake
        with torch.no_grad():
            acc = 0.5 * ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean())
            stats = {"loss/D": loss.item(), "loss/D_real": loss_real.item(),
                     "loss/D_fake": loss_fake.item(),
                     "D/real": torch.sigmoid(real_logits).mean().item(),
                     "D/fake": torch.sigmoid(fake_logits).mean().item(),
                     "D/accuracy": acc.item(), "tricks/noise_std": self.noise_std(step)}
        return loss, stats

    def g_loss(self, z: torch.Tensor, step: int):
        """z (B, z_dim) -> (non-saturating loss, stats)."""
        logits = self.D(self._noisy(self.G(z), step)).float()
        loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return loss, {"loss/G": loss.item(), "D/fake_G": torch.sigmoid(logits).mean().item()}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None:
        pass
