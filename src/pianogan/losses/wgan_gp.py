"""Wasserstein GAN loss with gradient penalty (Gulrajani et al. 2017), penalty per sample.

Critic: E[D(G(z))] - E[D(x)] + λ E_x̂[(‖∇_x̂ D(x̂)‖₂ - 1)²] with x̂ = ε x + (1 - ε) G(z),
ε ~ U(0, 1) per sample. The norm is each sample's own (over its C·H·W pixels) — the paper's
code took one norm over the whole batch, which is not the 1-Lipschitz constraint the method
states. Generator: -E[D(G(z))].
"""

from __future__ import annotations

import torch
from torch import nn


def input_gradient(D: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """∇_x Σ_i D(x)_i (B, C, H, W), differentiable with respect to D's weights.

    D's own ``input_gradient(x)`` where it has one (SpecGAN's critic writes the backward chain
    out, see pianogan.models.specgan), else autograd's double backward.
    """
    if callable(getattr(D, "input_gradient", None)):
        return D.input_gradient(x)
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).float().sum(), x, create_graph=True)
    return grad


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """λ · mean_i (‖∇ D(x̂_i)‖ - 1)² and the per-sample norms ‖∇ D(x̂_i)‖ (B,).

    real, fake: (B, C, H, W); eps: (B,) interpolation weights (default U(0, 1)). D must treat
    samples independently (no batch statistics), so the gradient of Σ_i D(x̂_i) with respect to
    x̂_i is each sample's own gradient. The penalty is differentiable (for D's update).
    """
    n = real.shape[0]
    if eps is None:
        eps = torch.rand(n, device=real.device)
    eps = eps.to(real.dtype).view(n, *([1] * (real.ndim - 1)))
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    norms = input_gradient(D, x_hat).float().flatten(1).norm(dim=1)
    return weight * (norms - 1).square().mean(), norms


class WGANGPLoss:
    """Loss object of the ``specgan`` family (interface: docs/training.md)."""

    def __init__(self, G: nn.Module, D: nn.Module, n_critic: int = 5, gp_weight: float = 10.0):
        self.G, self.D = G, D
        self.n_critic = int(n_critic)
        self.gp_weight = float(gp_weight)

    def d_loss(self, real: torch.Tensor, z: torch.Tensor, step: int):
        """real (B, 1, H, W) in [-1, 1], z (B, z_dim) -> (critic loss, stats)."""
        with torch.no_grad():
            fake = self.G(z).to(real.dtype)
        n = real.shape[0]
        # The critic has no batch statistics: one pass over [real; fake] equals two passes.
        scores = self.D(torch.cat([real, fake])).float()
        d_real, d_fake = scores[:n].mean(), scores[n:].mean()
        gp, norms = gradient_penalty(self.D, real, fake, self.gp_weight)
        loss = d_fake - d_real + gp
        stats = {"loss/D": loss.item(), "loss/gp": gp.item(),
                 "loss/wdist": (d_real - d_fake).item(), "D/real": d_real.item(),
                 "D/fake": d_fake.item(), "gp/grad_norm": norms.mean().item()}
        return loss, stats

    def g_loss(self, z: torch.Tensor, step: int):
        """z (B, z_dim) -> (-E[D(G(z))], stats)."""
        loss = -self.D(self.G(z)).float().mean()
        return loss, {"loss/G": loss.item()}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None:
        pass
