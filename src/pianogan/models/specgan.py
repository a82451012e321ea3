"""SpecGAN (Donahue, McAuley & Puckette 2019), the paper's best system, done as published.

Generator: z ~ U(-1, 1) (100-d) -> linear to a seed of (H/2^k, W/2^k) pixels with
``min(d * 2^(k-1), max_channels)`` channels -> ReLU -> k transposed convolutions (5x5, stride 2)
with ReLU, the last one (to 1 channel) into tanh. Discriminator: k convolutions (5x5,
stride 2) with LeakyReLU(0.2) -> linear -> a critic value. No batch norm anywhere (the gradient
penalty is per sample, which batch statistics would break). Loss: WGAN-GP with the penalty
computed per sample, λ = 10, 5 critic steps per generator step (pianogan.losses.wgan_gp).
At 128x128 this is exactly Donahue et al.'s d = 64 model (k = 5, 1024 channels at 4x4); other
shapes get k = floor(log2(min(H, W) / 4)) stages, widths capped at ``max_channels``.

What differs from the paper's code (which this repository does not hold; README's model table
shows both): the latent is U(-1, 1), not U(0, 1); the
gradient penalty uses each sample's own gradient norm, not one norm of the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import PianoGANError
from .geometry import num_stages, seed_shape
from .layers import Conv2d, ConvTranspose2d, GeneratorBase, LeakyReLU, conv_out, width


@dataclass
class Config:
    """Every hyperparameter of the SpecGAN family (model, optimisation, loss)."""

    # --- model
    z_dim: int = 100
    d: int = 64  # model size: channels of the full-resolution stage, doubled per stage
    max_channels: int = 1024  # 16 d, Donahue et al.'s widest layer
    kernel_size: int = 5
    min_side: int = 4
    # --- optimisation
    batch_size: int = 64  # global batch (split across processes when distributed)
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    adam_eps: float = 1e-8
    n_critic: int = 5  # critic steps per generator step
    grad_clip: float = 0.0  # 0 = off (WGAN-GP does not clip)
    ema_half_life_kimg: float = 10.0  # EMA of G's weights: half-life in thousands of images
    ema_rampup: float = 0.05  # half-life <= ema_rampup * images seen so far (0 = off)
    # --- loss
    gp_weight: float = 10.0  # λ of the per-sample gradient penalty

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        if min(self.z_dim, self.d, self.max_channels, self.min_side, self.batch_size,
               self.n_critic) < 1:
            raise PianoGANError("specgan: z_dim, d, max_channels, min_side, batch_size and n_critic "
                                "must be >= 1")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise PianoGANError("specgan: kernel_size must be odd and >= 3")
        if self.gp_weight < 0:
            raise PianoGANError("specgan: gp_weight must be >= 0")


CONFIGS: dict[str, Config] = {
    # Donahue et al.'s settings, as the paper used them (at 256x256 in the paper).
    "default": Config(),
    # CPU demo at the "tiny" preset's 64x128.
    "tiny": Config(d=16, max_channels=128, batch_size=32, lr_g=1e-3, lr_d=1e-3,
                   ema_half_life_kimg=1.0),
}


class Generator(GeneratorBase):
    """z (n, z_dim) ~ U(-1, 1) -> image (n, 1, H, W) in [-1, 1]."""

    def __init__(self, cfg: Config, image_shape: tuple[int, int]):
        super().__init__(cfg.z_dim, image_shape, latent="uniform")
        k = num_stages(image_shape, cfg.min_side)
        self.seed = seed_shape(image_shape, k)
        self.c0 = width(k - 1, cfg.d, cfg.max_channels)
        self.fc = nn.Linear(cfg.z_dim, self.c0 * self.seed[0] * self.seed[1])
        ks, pad = cfg.kernel_size, cfg.kernel_size // 2
        layers: list[nn.Module] = []
        for stage in range(k - 1, -1, -1):
            c_in = width(stage, cfg.d, cfg.max_channels)
            c_out = width(stage - 1, cfg.d, cfg.max_channels) if stage else 1
            # "same"-padded stride-2 transposed convolution: exactly doubles each side.
            layers.append(ConvTranspose2d(c_in, c_out, ks, 2, pad, output_padding=1))
            layers.append(nn.ReLU(inplace=True) if stage else nn.Tanh())
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, **kwargs) -> torch.Tensor:
        x = torch.relu(self.fc(z)).view(z.shape[0], self.c0, *self.seed)
        return self.crop(self.body(x))


class Discriminator(nn.Module):
    """image (n, 1, H, W) -> critic value (n,). No normalisation layers."""

    def __init__(self, cfg: Config, image_shape: tuple[int, int]):
        super().__init__()
        k = num_stages(image_shape, cfg.min_side)
        ks, pad = cfg.kernel_size, cfg.kernel_size // 2
        layers: list[nn.Module] = []
        h, w, c = int(image_shape[0]), int(image_shape[1]), 1
        for stage in range(k):
            c_out = width(stage, cfg.d, cfg.max_channels)
            layers += [Conv2d(c, c_out, ks, 2, pad), LeakyReLU(0.2)]  # see LeakyReLU: no wasted pass
            h, w, c = conv_out(h, ks, 2, pad), conv_out(w, ks, 2, pad), c_out
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(c * h * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).flatten(1)).squeeze(1)

    def input_gradient(self, x: torch.Tensor) -> torch.Tensor:
        """∂ Σ_i D(x)_i / ∂x (n, 1, H, W) — each sample's own critic gradient — differentiable
        with respect to D's weights: what the gradient penalty needs (losses.wgan_gp).

        The same values as autograd's double backward, written out because that is about twice
        as fast on a CPU: the forward pass runs without a graph and keeps only the activations
        (their signs are LeakyReLU's slopes); the gradient then runs back from fc.weight through
        each layer's slope mask and transposed convolution. The penalty's own backward is
        therefore one ordinary convolution backward per layer, where PyTorch's generic
        convolution double backward computes the weight term as a convolution of
        batch-transposed tensors (slow kernels plus layout copies: 19.8 -> 14.8 s per 256²
        critic step, batch 64, measured on an AVX-512 BF16 CPU).
        """
        convs, acts = list(self.body[0::2]), list(self.body[1::2])
        sizes, outs = [], []
        with torch.no_grad():
            h = x
            for conv, act in zip(convs, acts):
                sizes.append(h.shape[-2:])
                h = act(conv(h))
                outs.append(h)
        grad = self.fc.weight.view(1, *h.shape[1:]).expand(h.shape)  # ∂D/∂(last activation)
        for conv, act, y, size in reversed(list(zip(convs, acts, outs, sizes))):
            grad = conv.adjoint(act.backward_of(grad, y), size)
        return grad


def build(cfg: Config, image_shape: tuple[int, int]) -> tuple[Generator, Discriminator]:
    """(G, D) for images of ``image_shape`` = (freq rows H, time columns W), 8..4096 each."""
    return Generator(cfg, image_shape), Discriminator(cfg, image_shape)


def make_loss(cfg: Config, G: nn.Module, D: nn.Module):
    """WGAN-GP with the per-sample gradient penalty."""
    from ..losses.wgan_gp import WGANGPLoss

    return WGANGPLoss(G, D, n_critic=cfg.n_critic, gp_weight=cfg.gp_weight)
