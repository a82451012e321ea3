"""StyleGAN2 building blocks, single channel, written from the papers.

Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN" (StyleGAN2) and
"Training Generative Adversarial Networks with Limited Data" (ADA). Nothing here is taken from
NVIDIA's code; the layers follow the papers' equations:

* **Equalised learning rate** (ProGAN, kept in StyleGAN2): weights are stored as N(0, 1/lr_mul)
  and multiplied at run time by ``lr_mul / sqrt(fan_in)``, so every layer sees the same dynamic
  range of updates under Adam. Biases are stored divided by ``lr_mul``.
* **Modulated / demodulated convolution** (StyleGAN2 eq. 1-3): ``w'_oik = s_i w_oik`` and
  ``w''_oik = w'_oik / sqrt(sum_ik w'_oik^2 + eps)``. Implemented without grouped convolutions:
  scaling the input by ``s`` and the output by the demodulation coefficient is the same linear
  map, and a plain convolution batches better (and runs channels-last / mixed precision).
* **Resampling** with the separable [1, 3, 3, 1] filter (StyleGAN2 App. B). A stride-2
  transposed convolution followed by the filter upsamples; the filter followed by a stride-2
  convolution downsamples.

Tensor shapes are ``(batch, channels, freq, time)``: for a spectrogram image the rows are
frequency (row 0 = lowest) and the columns are time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # keeps unit variance through leaky ReLU(0.2) (He init)


def lrelu(x: torch.Tensor, clamp: float | None = None) -> torch.Tensor:
    """Leaky ReLU(0.2) times sqrt(2), optionally clamped to [-clamp, clamp] (fp16 safety)."""
    x = F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def _filter_2d(device=None, dtype=None) -> torch.Tensor:
    """The separable [1, 3, 3, 1] low-pass filter (4, 4), normalised to sum 1."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], device=device, dtype=dtype)
    k = torch.outer(k, k)
    return k / k.sum()


def blur(x: torch.Tensor, pad: tuple[int, int, int, int], gain: float = 1.0) -> torch.Tensor:
    """Depthwise [1,3,3,1] filter of (B, C, H, W) after zero-padding ``pad`` = (l, r, t, b)."""
    c = x.shape[1]
    k = (_filter_2d(x.device, x.dtype) * gain).expand(c, 1, 4, 4)
    return F.conv2d(F.pad(x, pad), k, groups=c)


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H/2, W/2): [1,3,3,1] low-pass, keep every other sample."""
    c = x.shape[1]
    k = _filter_2d(x.device, x.dtype).expand(c, 1, 4, 4)
    return F.conv2d(F.pad(x, (1, 1, 1, 1)), k, stride=2, groups=c)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W). Bilinear ×2 (half-pixel centres) is exactly the
    [1,3,3,1] upsampling filter with edge replication, so the library op is used."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate: y = x (W·g)^T + b·lr_mul."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 bias_init: float = 0.0, lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias * self.lr_mul if self.bias is not None else None
        x = F.linear(x, self.weight * self.weight_gain, b)
        return lrelu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate; ``down=True`` filters then strides by 2."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True,
                 activation: bool = False, down: bool = False, clamp: float | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.kernel, self.activation, self.down, self.clamp = kernel, activation, down, clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.down:
            if self.kernel == 1:
                x = F.conv2d(downsample2x(x), w)
            else:
                # Filter (4 taps) then a stride-2 k×k conv: pad so that H -> H/2 exactly and the
                # output sample o sits half-way between inputs 2o and 2o+1.
                p = (self.kernel + 1) // 2
                x = F.conv2d(blur(x, (p, p, p, p)), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.kernel // 2)
        if self.bias is not None:
            x = x + self.bias.view(1, -1, 1, 1).to(x.dtype)
        return lrelu(x, self.clamp) if self.activation else x


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution: per-sample input-channel scales ``s = A(w)`` and
    (optionally) weight demodulation; ``up=True`` doubles H and W.

    Written as ``demod ⊙ conv(x ⊙ s, W)``: identical to convolving with the per-sample weights
    ``W_oik s_i / sqrt(sum_ik (W_oik s_i)^2)`` but a single shared-weight convolution.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, w_dim: int,
                 demodulate: bool = True, up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)  # styles start at 1
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.weight_gain = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.kernel, self.demodulate, self.up = kernel, demodulate, up

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x (B, in, H, W), w (B, w_dim) -> (B, out, H', W')."""
        styles = self.affine(w)  # (B, in)
        weight = self.weight * self.weight_gain
        x = x * styles.to(x.dtype)[:, :, None, None]
        if self.up:
            # Transposed conv (H -> 2H+1), then the filter with gain 4 (zero-stuffing keeps a
            # quarter of the samples) and pad 1 each side -> 2H, centred like bilinear ×2.
            x = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)
            x = blur(x, (1, 1, 1, 1), gain=4.0)
        else:
            x = F.conv2d(x, weight.to(x.dtype), padding=self.kernel // 2)
        if self.demodulate:
            # sum over (i, k) of (W_oik s_i)^2 = sum_i s_i^2 (sum_k W_oik^2)
            wsq = weight.float().square().sum(dim=(2, 3))  # (out, in)
            demod = torch.rsqrt(styles.float().square() @ wsq.t() + 1e-8)  # (B, out)
            x = x * demod.to(x.dtype)[:, :, None, None]
        return x


class SynthesisLayer(nn.Module):
    """Modulated conv -> per-pixel noise (learned strength) -> bias -> lrelu."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, size: tuple[int, int],
                 up: bool = False, clamp: float | None = None):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, demodulate=True, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        # A fixed noise image for deterministic output (noise_mode="const"), saved with G.
        self.register_buffer("noise_const", torch.randn(1, 1, *size))
        self.clamp = clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.conv(x, w)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength.to(x.dtype)
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength.to(x.dtype)
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        x = x + self.bias.view(1, -1, 1, 1).to(x.dtype)
        return lrelu(x, self.clamp)


class ToGray(nn.Module):
    """The 1-channel "toRGB" of the skip generator: modulated 1×1 conv, no demodulation."""

    def __init__(self, in_ch: int, w_dim: int, clamp: float | None = None):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, 1, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1))
        self.clamp = clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y = self.conv(x, w) + self.bias.view(1, -1, 1, 1).to(x.dtype)
        return y.clamp(-self.clamp, self.clamp) if self.clamp is not None else y


class MappingNetwork(nn.Module):
    """z (B, z_dim) -> w (B, w_dim): normalise z to unit second moment, then an MLP of
    ``num_layers`` equalised-lr layers with lr multiplier ``lr_mul`` (0.01 in the paper)."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float):
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.Sequential(*[
            EqualLinear(dims[i], dims[i + 1], lr_mul=lr_mul, activation=True)
            for i in range(num_layers)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        return self.layers(z)


def minibatch_stddev(x: torch.Tensor, group_size: int, num_channels: int = 1) -> torch.Tensor:
    """Append ``num_channels`` feature maps holding the standard deviation of features across
    groups of ``group_size`` consecutive samples (ProGAN's minibatch-stddev layer).

    x (N, C, H, W) -> (N, C + num_channels, H, W). The group is the largest divisor of N not
    above ``group_size``, so any batch size works. Groups are contiguous samples, so a batch
    made of two halves (e.g. reals then fakes) of sizes divisible by the group never mixes.
    """
    n, c, h, w = x.shape
    g = min(group_size, n)
    while n % g:
        g -= 1
    f = num_channels
    y = x.float().reshape(n // g, g, f, c // f, h, w)
    y = y - y.mean(dim=1, keepdim=True)
    y = (y.square().mean(dim=1) + 1e-8).sqrt()  # (N/g, f, c/f, H, W)
    y = y.mean(dim=(2, 3, 4))  # (N/g, f)
    y = y.repeat_interleave(g, dim=0).reshape(n, f, 1, 1).expand(n, f, h, w)
    return torch.cat([x, y.to(x.dtype)], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual D block: (conv3×3, lrelu, conv3×3 ↓2, lrelu) + (↓2, conv1×1), scaled by √½."""

    def __init__(self, in_ch: int, out_ch: int, clamp: float | None = None):
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3, activation=True, clamp=clamp)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3, activation=True, down=True, clamp=clamp)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)
