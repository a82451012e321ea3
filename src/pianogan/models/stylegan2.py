"""StyleGAN2-ADA for one-channel spectrogram images (the paper's third system, done natively).

The paper ran NVIDIA's library on colour-mapped RGB pictures of spectrograms; this family works on
the normalised log-magnitude image itself, (batch, 1, freq, time) in [-1, 1], inside the shared
trainer. Written from Karras et al. 2020 (StyleGAN2, and ADA for limited data); see
``stylegan2_layers`` for the layers and ``docs/stylegan2.md`` for the choices.

* Generator: mapping network z -> w (tracked average ``w_avg`` for truncation), learned constant
  input with the image's aspect ratio (4×8 for 64×128), per level an upsampling modulated conv and
  a modulated conv (each with per-pixel noise of learned strength), and the "skip" output
  architecture: a 1-channel ``ToGray`` per level, upsampled and summed.
* Discriminator: residual blocks, minibatch standard deviation, two dense layers -> (n,) logits.
* Loss (``pianogan.losses.stylegan2``): non-saturating logistic, lazy R1, lazy path-length
  regularisation, style mixing, and the ADA pipeline (``pianogan.augment``).

Output range: the generator's last layer is linear (as in the paper: clamping during training
would kill gradients at the bounds and the discriminator already penalises out-of-range values,
because every real pixel lies in [-1, 1]). In eval mode (``G.eval()``, which is how the trainer's
EMA copy, ``load_generator``, ``generate`` and ``evaluate`` use it) the output is clamped to
[-1, 1], as the interface promises; ``clamp=True/False`` overrides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import AugmentParams
from ..errors import PianoGANError
from .geometry import geometry
from .stylegan2_layers import (DiscriminatorBlock, EqualConv2d, EqualLinear, MappingNetwork,
                               SynthesisLayer, ToGray, minibatch_stddev, upsample2x)


@dataclass
class Config:
    """Every hyperparameter of the StyleGAN2-ADA family (model, optimisation, loss, ADA).

    Defaults are the StyleGAN2-ADA paper's 256×256 configuration ("paper256"): half-width
    networks, 8 mapping layers, batch 64, minibatch-stddev group 8, Adam lr 0.0025 β=(0, 0.99),
    R1 γ = 1, path length weight 2, style mixing 0.9, EMA half-life 20k images, ADA target 0.6
    over 500k images.
    """

    # --- latent and mapping network
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_mul: float = 0.01
    w_avg_beta: float = 0.995  # per G step: w_avg <- lerp(mean w, w_avg, beta)
    # --- widths: a level whose shorter side is r pixels has min(channel_base // r, channel_max)
    # channels in G and D.
    channel_base: int = 16384
    channel_max: int = 512
    conv_clamp: float | None = 256.0  # activation clamp, keeps fp16 autocast finite
    # Minibatch stddev over groups of this many samples. 8 is the ADA code's paper256/paper512
    # setting (mbstd=8: batch 64 on 8 GPUs, one group per GPU's 8 images); 4 is StyleGAN2's
    # config F (batch 32 on 8 GPUs) and the ADA "auto" rule min(per-GPU batch, 4).
    mbstd_group: int = 8
    mbstd_channels: int = 1
    # --- optimisation (Adam for both nets): the paper's values, which the optimisers get as
    # they are (see Config.adam and pianogan.losses.stylegan2.lazy_adam)
    batch_size: int = 64
    lr_g: float = 0.0025
    lr_d: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    adam_eps: float = 1e-8
    n_critic: int = 1
    grad_clip: float = 0.0  # 0 = no clipping (StyleGAN2 does not clip)
    ema_half_life_kimg: float = 20.0  # EMA of G: half-life in thousands of images
    ema_rampup: float = 0.0  # half-life <= ema_rampup * images seen (0 = off, as paper256)
    # --- loss
    r1_gamma: float = 1.0
    r1_interval: int = 16  # lazy R1: every this many D steps, scaled by the interval
    pl_weight: float = 2.0  # 0 disables path-length regularisation
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing_prob: float = 0.9
    # --- ADA (pianogan.augment)
    augment: str = "ada"  # "ada" (adaptive p), "fixed" (p = aug_p), "none"
    aug_p: float = 0.0  # initial p for "ada", the p for "fixed"
    ada_target: float = 0.6  # target of r_t = E[sign(D(real))]
    ada_interval: int = 4  # adjust p every this many D steps
    ada_kimg: float = 500.0  # p can go 0 -> 1 in this many thousand real images
    # aug_X: the strength of augmentation X, pianogan.augment.AugmentParams.X (and its default)
    aug_time_shift: float = AugmentParams.time_shift
    aug_time_stretch: float = AugmentParams.time_stretch
    aug_freq_shift: float = AugmentParams.freq_shift
    aug_gain: float = AugmentParams.gain
    aug_time_mask: float = AugmentParams.time_mask
    aug_freq_mask: float = AugmentParams.freq_mask
    aug_noise: float = AugmentParams.noise

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.augment not in ("ada", "fixed", "none"):
            raise PianoGANError(f"stylegan2: augment must be 'ada', 'fixed' or 'none', "
                                f"got {self.augment!r}")
        if self.n_critic != 1:
            raise PianoGANError("stylegan2: n_critic must be 1 (one D step per G step)")
        if min(self.r1_interval, self.pl_interval, self.ada_interval, self.batch_size,
               self.mapping_layers, self.z_dim, self.w_dim) < 1:
            raise PianoGANError("stylegan2: batch_size, z_dim, w_dim, mapping_layers and the "
                                "r1/pl/ada intervals must be >= 1")
        if not (0 <= self.aug_p <= 1 and 0 <= self.style_mixing_prob <= 1):
            raise PianoGANError("stylegan2: aug_p and style_mixing_prob must be in [0, 1]")

    def augment_params(self) -> AugmentParams:
        """The aug_* fields as the augmentation pipeline's parameters."""
        return AugmentParams(**{f.name: getattr(self, f"aug_{f.name}")
                                for f in dataclasses.fields(AugmentParams)})

    def adam(self, net: str) -> dict:
        """Adam keyword arguments for ``net`` in {"G", "D"}: lr and betas after the loss
        schedule's lazy-regularisation correction (G: path length every pl_interval steps, D:
        R1 every r1_interval), which is none for this family's schedule (see
        :func:`pianogan.losses.stylegan2.lazy_adam`)."""
        from ..losses.stylegan2 import lazy_adam

        if net == "G":
            lr, k = self.lr_g, (self.pl_interval if self.pl_weight > 0 else 0)
        elif net == "D":
            lr, k = self.lr_d, (self.r1_interval if self.r1_gamma > 0 else 0)
        else:
            raise ValueError(net)
        lr, betas = lazy_adam(lr, self.betas, k)
        return {"lr": lr, "betas": betas, "eps": self.adam_eps}


# Fields of older versions' Config, ignored when a stored configuration is read
# (pianogan.models.config_from_dict): the optimisers now get what the loss schedule needs.
RETIRED_FIELDS = ("lazy_adam_correction",)


CONFIGS: dict[str, Config] = {
    # StyleGAN2-ADA "paper256" settings; use for the 256² and 512² presets.
    "default": Config(),
    # StyleGAN2-ADA "paper512": full-width networks, γ = 0.5.
    "paper512": Config(channel_base=32768, r1_gamma=0.5),
    # Small enough to train on a CPU in minutes at 64×128 (tiny preset).
    # Its minibatch-stddev group is the ADA "auto" rule's (min(batch per GPU, 4)).
    "tiny": Config(z_dim=64, w_dim=64, mapping_layers=2, channel_base=512, channel_max=64,
                   mbstd_group=4, batch_size=16, lr_g=0.002, lr_d=0.002, r1_gamma=0.1, pl_weight=0.0,
                   ema_half_life_kimg=2.0, ema_rampup=0.05, ada_kimg=20.0),
}


def _channels(cfg: Config, base_side: int, level: int) -> int:
    r = base_side * 2 ** level
    return max(1, min(cfg.channel_base // r, cfg.channel_max))


class Generator(nn.Module):
    """z (n, z_dim) ~ N(0, I) -> image (n, 1, H, W)."""

    latent = "normal"

    def __init__(self, cfg: Config, image_shape: tuple[int, int]):
        super().__init__()
        self.z_dim, self.w_dim = cfg.z_dim, cfg.w_dim
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.w_avg_beta = cfg.w_avg_beta
        k, h0, w0 = geometry(self.image_shape)
        self.levels = k + 1
        self.internal_shape = (h0 * 2 ** k, w0 * 2 ** k)
        self.num_ws = 2 * self.levels
        base = min(h0, w0)
        ch = [_channels(cfg, base, i) for i in range(self.levels)]
        clamp = cfg.conv_clamp

        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers, cfg.mapping_lr_mul)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.const = nn.Parameter(torch.randn(ch[0], h0, w0))
        # Level i has size (h0·2^i, w0·2^i). Level 0: conv on the constant; level i > 0: an
        # upsampling conv and a conv. Every level ends in a ToGray summed into the image.
        self.convs = nn.ModuleList()
        self.to_gray = nn.ModuleList()
        for i in range(self.levels):
            size = (h0 * 2 ** i, w0 * 2 ** i)
            if i > 0:
                self.convs.append(SynthesisLayer(ch[i - 1], ch[i], cfg.w_dim, size, up=True, clamp=clamp))
            self.convs.append(SynthesisLayer(ch[i], ch[i], cfg.w_dim, size, clamp=clamp))
            self.to_gray.append(ToGray(ch[i], cfg.w_dim, clamp=clamp))

    def sample_z(self, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
        """(n, z_dim) standard normal latents (drawn on the generator's device, then moved)."""
        src = generator.device if generator is not None else device
        return torch.randn(n, self.z_dim, generator=generator, device=src).to(device or src or "cpu")

    def map(self, z: torch.Tensor, truncation_psi: float = 1.0, mix_z: torch.Tensor | None = None,
            mixing_cutoff: int | None = None, update_w_avg: bool = False) -> torch.Tensor:
        """z (n, z_dim) -> ws (n, num_ws, w_dim): one w per synthesis layer.

        Style mixing: layers [0, cutoff) take w(z), layers [cutoff, num_ws) take w(mix_z);
        cutoff defaults to a random integer in [1, num_ws). Truncation: ws <- w_avg + psi·(ws - w_avg).
        """
        w = self.mapping(z)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if mix_z is not None:
            if mixing_cutoff is None:
                mixing_cutoff = int(torch.randint(1, self.num_ws, ()).item())
            if not 0 <= mixing_cutoff <= self.num_ws:
                raise PianoGANError(f"stylegan2: mixing_cutoff must be in [0, {self.num_ws}], "
                                    f"got {mixing_cutoff}")
            w2 = self.mapping(mix_z).unsqueeze(1).expand(-1, self.num_ws - mixing_cutoff, -1)
            ws = torch.cat([ws[:, :mixing_cutoff], w2], dim=1)
        if truncation_psi != 1:
            ws = self.w_avg.to(ws.dtype).lerp(ws, float(truncation_psi))
        return ws

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """ws (n, num_ws, w_dim) -> image (n, 1, H, W), unbounded."""
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        img = None
        j = 0  # index of the next conv (= its w)
        for i in range(self.levels):
            for _ in range(1 if i == 0 else 2):
                x = self.convs[j](x, ws[:, j], noise_mode)
                j += 1
            y = self.to_gray[i](x, ws[:, j])  # shares its w with the next level's first conv
            img = y if img is None else upsample2x(img).to(y.dtype) + y
        if tuple(img.shape[-2:]) != self.image_shape:
            img = F.interpolate(img, size=self.image_shape, mode="bilinear", antialias=True,
                                align_corners=False)
        return img

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, mix_z: torch.Tensor | None = None,
                mixing_cutoff: int | None = None, noise_mode: str | None = None,
                update_w_avg: bool = False, return_ws: bool = False, clamp: bool | None = None,
                **unused):
        """z (n, z_dim) -> (n, 1, H, W); ``return_ws=True`` also returns the ws used.

        noise_mode: "random" (default in training), "const" (default in eval: deterministic,
        a fixed noise image saved with G) or "none". clamp: to [-1, 1]; default in eval only.
        """
        ws = self.map(z, truncation_psi, mix_z, mixing_cutoff, update_w_avg)
        if noise_mode is None:
            noise_mode = "random" if self.training else "const"
        img = self.synthesis(ws, noise_mode)
        if clamp if clamp is not None else not self.training:
            img = img.clamp(-1.0, 1.0)
        return (img, ws) if return_ws else img


class Discriminator(nn.Module):
    """Residual discriminator: (n, 1, H, W) -> (n,) logits."""

    def __init__(self, cfg: Config, image_shape: tuple[int, int]):
        super().__init__()
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        k, h0, w0 = geometry(self.image_shape)
        self.internal_shape = (h0 * 2 ** k, w0 * 2 ** k)
        base = min(h0, w0)
        ch = [_channels(cfg, base, i) for i in range(k + 1)]
        clamp = cfg.conv_clamp
        self.mbstd_group, self.mbstd_channels = cfg.mbstd_group, cfg.mbstd_channels
        self.from_gray = EqualConv2d(1, ch[k], 1, activation=True, clamp=clamp)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(ch[i], ch[i - 1], clamp=clamp)
                                      for i in range(k, 0, -1)])
        self.conv = EqualConv2d(ch[0] + cfg.mbstd_channels, ch[0], 3, activation=True, clamp=clamp)
        self.fc = EqualLinear(ch[0] * h0 * w0, ch[0], activation=True)
        self.out = EqualLinear(ch[0], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.internal_shape:
            x = F.interpolate(x, size=self.internal_shape, mode="bilinear", antialias=True,
                              align_corners=False)
        x = self.blocks(self.from_gray(x))
        if self.mbstd_group > 1 and self.mbstd_channels > 0:
            x = minibatch_stddev(x, self.mbstd_group, self.mbstd_channels)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        return self.out(x).squeeze(1)


def build(cfg: Config, image_shape: tuple[int, int]) -> tuple[Generator, Discriminator]:
    """(G, D) for images of ``image_shape`` = (freq rows H, time columns W)."""
    return Generator(cfg, image_shape), Discriminator(cfg, image_shape)


def make_loss(cfg: Config, G: nn.Module, D: nn.Module):
    """The StyleGAN2-ADA loss object (holds the ADA pipeline and its p)."""
    from ..losses.stylegan2 import StyleGAN2Loss

    return StyleGAN2Loss(cfg, G, D)
