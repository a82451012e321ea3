"""DCGAN (Radford et al. 2016), the paper's baseline, without the paper's code's defects.

Generator: z ~ N(0, 1) (100-d) -> a small linear layer to a seed of (H/2^k, W/2^k) pixels with
``min(d * 2^(k-1), max_channels)`` channels -> k transposed convolutions (4x4, stride 2), each
but the last followed by batch norm and ReLU -> the last one (to 1 channel) straight into tanh.
Discriminator: k convolutions (4x4, stride 2) with LeakyReLU(0.2) and, after all but the first,
batch norm (``d_norm="batch"``, Radford et al.; ``"none"`` drops it), then one linear layer to a
logit. Loss: binary cross-entropy on logits (see pianogan.losses.bce) with the
paper's tricks as options: label flipping, one-sided label smoothing, decaying instance noise.

What differs from the paper's code (which this repository does not hold; README's model table
lists the same): no activation before tanh; the first layer
maps z to a 4..7-pixel seed, not to a 512x512 image (0.8 M weights instead of 26 M); separate
optimisers for G and D; D sees real and fake images in separate batches, so batch norm never
mixes their statistics (the paper's code normalised them together).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import PianoGANError
from .geometry import num_stages, seed_shape
from .layers import Conv2d, ConvTranspose2d, GeneratorBase, conv_out, dcgan_init, width


@dataclass
class Config:
    """Every hyperparameter of the DCGAN family (model, optimisation, loss)."""

    # --- model
    z_dim: int = 100
    d: int = 32  # channels of the full-resolution stage; doubled per stage down to max_channels
    max_channels: int = 512
    min_side: int = 4  # shorter side of the generator's seed / the discriminator's last map
    g_norm: str = "batch"  # "batch" (DCGAN) or "none": normalisation in G's hidden layers
    d_norm: str = "batch"  # "batch" (DCGAN; real and fake then go through D in separate passes) or "none"
    # --- optimisation
    batch_size: int = 32  # global batch (split across processes when distributed)
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    adam_eps: float = 1e-8
    n_critic: int = 1  # D steps per G step
    grad_clip: float = 1.0  # max global gradient norm of each network (0 = off)
    ema_half_life_kimg: float = 10.0  # EMA of G's weights: half-life in thousands of images
    ema_rampup: float = 0.05  # half-life <= ema_rampup * images seen so far (0 = off)
    # --- loss (the paper's tricks)
    label_flip_prob: float = 0.05  # chance that a sample's real/fake label is swapped for D
    label_smoothing: float = 0.1  # real targets are 1 - label_smoothing (one-sided)
    instance_noise: float = 0.1  # std of Gaussian noise added to every image D sees ...
    instance_noise_steps: int = 20_000  # ... decaying linearly to 0 over this many G steps (0 = constant)

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        for name in ("g_norm", "d_norm"):
            if getattr(self, name) not in ("batch", "none"):
                raise PianoGANError(f"dcgan: {name} must be 'batch' or 'none', got {getattr(self, name)!r}")
        if min(self.z_dim, self.d, self.max_channels, self.min_side, self.batch_size,
               self.n_critic) < 1:
            raise PianoGANError("dcgan: z_dim, d, max_channels, min_side, batch_size and n_critic "
                                "must be >= 1")
        if not (0 <= self.label_flip_prob <= 0.5 and 0 <= self.label_smoothing < 1):
            raise PianoGANError("dcgan: need 0 <= label_flip_prob <= 0.5 and 0 <= label_smoothing < 1")
        if self.instance_noise < 0 or self.instance_noise_steps < 0:
            raise PianoGANError("dcgan: instance_noise and instance_noise_steps must be >= 0")


CONFIGS: dict[str, Config] = {
    # The paper's settings (Adam 1e-4, β (0.5, 0.9), clip 1, batch 32, its three tricks).
    "default": Config(),
    # CPU demo at the "tiny" preset's 64x128: learns visibly in a few hundred steps (a higher
    # learning rate and beta2 than the paper's, no tricks).
    "tiny": Config(d=16, max_channels=128, batch_size=32, lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.99),
                   label_flip_prob=0.0, label_smoothing=0.0, instance_noise=0.0,
                   ema_half_life_kimg=1.0),
}


class Generator(GeneratorBase):
    """z (n, z_dim) -> image (n, 1, H, W) in [-1, 1]."""

    def __init__(self, cfg: Config, image_shape: tuple[int, int]):
        super().__init__(cfg.z_dim, image_shape, latent="normal")
        k = num_stages(image_shape, cfg.min_side)
        self.seed = seed_shape(image_shape, k)
        c0 = width(k - 1, cfg.d, cfg.max_channels)
        bn = cfg.g_norm == "batch"
        self.fc = nn.Linear(cfg.z_dim, c0 * self.seed[0] * self.seed[1], bias=not bn)
        self.fc_norm = nn.BatchNorm2d(c0) if bn else nn.Identity()
        layers: list[nn.Module] = []
        for stage in range(k - 1, 0, -1):
            c_in, c_out = width(stage, cfg.d, cfg.max_channels), width(stage - 1, cfg.d, cfg.max_channels)
            layers += [ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=not bn),
                       nn.BatchNorm2d(c_out) if bn else nn.Identity(), nn.ReLU(inplace=True)]
        # The last transposed convolution feeds tanh directly (the paper's code had a LeakyReLU here).
        layers += [ConvTranspose2d(width(0, cfg.d, cfg.max_channels), 1, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.c0 = c0
        dcgan_init(self)

    def forward(self, z: torch.Tensor, **kwargs) -> torch.Tensor:
        x = self.fc(z).view(z.shape[0], self.c0, *self.seed)
        x = torch.relu(self.fc_norm(x))
        return self.crop(self.body(x))


class Discriminator(nn.Module):
    """image (n, 1, H, W) -> logit (n,)."""

    def __init__(self, cfg: Config, image_shape: tuple[int, int]):
        super().__init__()
        k = num_stages(image_shape, cfg.min_side)
        layers: list[nn.Module] = []
        h, w, c = int(image_shape[0]), int(image_shape[1]), 1
        for stage in range(k):
            c_out = width(stage, cfg.d, cfg.max_channels)
            bn = cfg.d_norm == "batch" and stage > 0  # Radford et al.: none on the input layer
            layers += [Conv2d(c, c_out, 4, 2, 1, bias=not bn), nn.BatchNorm2d(c_out) if bn else nn.Identity(),
                       nn.LeakyReLU(0.2, inplace=True)]
            h, w, c = conv_out(h, 4, 2, 1), conv_out(w, 4, 2, 1), c_out
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(c * h * w, 1)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).flatten(1)).squeeze(1)


def build(cfg: Config, image_shape: tuple[int, int]) -> tuple[Generator, Discriminator]:
    """(G, D) for images of ``image_shape`` = (freq rows H, time columns W), 8..4096 each."""
    return Generator(cfg, image_shape), Discriminator(cfg, image_shape)


def make_loss(cfg: Config, G: nn.Module, D: nn.Module):
    """Binary cross-entropy (non-saturating G loss) with the paper's tricks."""
    from ..losses.bce import BCELoss

    return BCELoss(G, D, n_critic=cfg.n_critic, label_flip_prob=cfg.label_flip_prob,
                   label_smoothing=cfg.label_smoothing, instance_noise=cfg.instance_noise,
                   instance_noise_steps=cfg.instance_noise_steps)
