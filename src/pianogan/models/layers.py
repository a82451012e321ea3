"""Pieces shared by the DCGAN and SpecGAN families: the generator base class (latent sampling,
cropping), layers and weight initialisation. Their geometry (stages, seed shape) is every
family's, in :mod:`pianogan.models.geometry`; a generator's image of at least (H, W) is cropped
to (H, W) when H or W is not a multiple of 2^k.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PianoGANError


def conv_out(n: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (n + 2 * padding - kernel) // stride + 1


def width(stage: int, d: int, max_channels: int) -> int:
    """Channels of stage ``stage`` counted from the full-resolution end: min(d * 2^stage, max)."""
    return int(min(d * 2 ** stage, max_channels))


class GeneratorBase(nn.Module):
    """What every generator exposes: ``z_dim``, ``latent``, ``image_shape`` and ``sample_z``."""

    def __init__(self, z_dim: int, image_shape: tuple[int, int], latent: str):
        super().__init__()
        if latent not in ("normal", "uniform"):
            raise PianoGANError(f"latent must be 'normal' or 'uniform', got {latent!r}")
        self.z_dim = int(z_dim)
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.latent = latent

    def sample_z(self, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
        """(n, z_dim) latents: N(0, 1) for "normal", U(-1, 1) for "uniform".

        Drawn on ``device`` (default: the generator's device when one is given, else the
        model's), so a seeded CPU ``generator`` gives the same latents whatever the model's device.
        """
        if device is None:
            device = generator.device if generator is not None else next(self.parameters()).device
        if self.latent == "uniform":
            return torch.rand(n, self.z_dim, generator=generator, device=device) * 2 - 1
        return torch.randn(n, self.z_dim, generator=generator, device=device)

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """Cut the (n, 1, h, w) output of the last stage to (n, 1, H, W)."""
        h, w = self.image_shape
        if x.shape[-2:] != (h, w):
            x = x[..., :h, :w]
        return x


class _LeakyReLUFn(torch.autograd.Function):
    """leaky_relu whose backward is differentiable in the incoming gradient only."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        y = F.leaky_relu(x, slope)
        ctx.save_for_backward(y)  # sign(y) == sign(x)
        ctx.slope = slope
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (y,) = ctx.saved_tensors
        # One fused kernel; with y detached, a double backward differentiates it with respect
        # to `grad` only (the slope mask is a constant), never back into the forward graph.
        return torch.ops.aten.leaky_relu_backward(grad, y.detach(), ctx.slope, True), None


class LeakyReLU(nn.Module):
    """``nn.LeakyReLU`` (same values and first derivatives) that is cheaper under a gradient
    penalty.

    PyTorch's leaky_relu backward declares a (zero) derivative with respect to its input, so
    the double backward of WGAN-GP sends zeros back through the whole forward graph of the
    interpolates — a full discriminator backward pass, weight gradients included, that only
    ever adds zeros. Here the slope mask is a constant of the backward, so that pass never runs.
    """

    def __init__(self, slope: float = 0.2):
        super().__init__()
        self.slope = float(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LeakyReLUFn.apply(x, self.slope)

    def backward_of(self, grad: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The gradient with respect to this layer's input, given the gradient ``grad`` with
        respect to its output ``y`` (same shape): ``grad`` scaled by 1 where y > 0, else by
        the slope. Differentiable in ``grad``; ``y`` is a constant."""
        return torch.ops.aten.leaky_relu_backward(grad.to(y.dtype), y.detach(), self.slope, True)

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


GEMM_MAX_PIXELS = 16  # small maps: a convolution runs as one matrix product (see Conv2d)


def _use_gemm(x: torch.Tensor, pixels: int, module: nn.Module | None = None) -> bool:
    if x.device.type != "cpu" or pixels > GEMM_MAX_PIXELS:
        return False
    return module is None or (module.groups == 1 and module.dilation == (1, 1)
                              and module.padding_mode == "zeros")


def conv_transpose2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     stride: tuple[int, int], padding: tuple[int, int],
                     output_padding: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """``F.conv_transpose2d`` (groups 1, dilation 1), as one matrix product + fold when the
    input (n, C_in, h, w) has at most GEMM_MAX_PIXELS pixels on a CPU (see :class:`Conv2d`).
    weight: (C_in, C_out, kh, kw)."""
    n, c, h, w = x.shape
    if not _use_gemm(x, h * w):
        return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding)
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    kh, kw = weight.shape[-2:]
    ho, wo = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
    cols = F.linear(x.flatten(2).transpose(1, 2).reshape(n * h * w, c),  # (n*L, C_in)
                    weight.reshape(c, -1).t())                            # (n*L, C_out*k*k)
    cols = cols.reshape(n, h * w, -1).transpose(1, 2)                     # (n, C_out*k*k, L)
    y = F.fold(cols, (ho, wo), (kh, kw), padding=(ph, pw), stride=(sh, sw))
    return y if bias is None else y + bias.view(1, -1, 1, 1)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, same function) that runs as unfold + one matrix product
    when its output is at most GEMM_MAX_PIXELS pixels: oneDNN's direct convolution
    kernels use a CPU poorly on 4x4 / 8x8 maps with many channels, while the same work as a
    single (N*L) x (C*k*k) x C_out GEMM runs near peak (measured 1.5-2x faster on the last
    SpecGAN layers, forward and backward, fp32 and bf16)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        ho, wo = conv_out(h, kh, sh, ph), conv_out(w, kw, sw, pw)
        if not _use_gemm(x, ho * wo, self):
            return super().forward(x)
        cols = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw))  # (n, C*k*k, L)
        cols = cols.transpose(1, 2).reshape(n * ho * wo, -1)  # 2-D, so every product is one GEMM
        y = F.linear(cols, self.weight.reshape(self.out_channels, -1), self.bias)  # (n*L, C_out)
        return y.reshape(n, ho * wo, self.out_channels).transpose(1, 2).reshape(n, -1, ho, wo)

    def adjoint(self, grad: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
        """The gradient with respect to this layer's input (n, C_in, *input_size), given the
        gradient ``grad`` (n, C_out, ho, wo) with respect to its output: the transposed
        convolution with the same weight. Differentiable in ``grad`` and the weight."""
        if self.groups != 1 or self.dilation != (1, 1) or self.padding_mode != "zeros":
            raise NotImplementedError("adjoint: groups 1, dilation 1, zero padding only")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        ho, wo = grad.shape[-2:]
        out_pad = (int(input_size[0]) - ((ho - 1) * sh - 2 * ph + kh),
                   int(input_size[1]) - ((wo - 1) * sw - 2 * pw + kw))
        return conv_transpose2d(grad, self.weight.to(grad.dtype), None, self.stride, self.padding,
                                out_pad)


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (same parameters, same function) that runs as one matrix product
    + fold when its input is at most GEMM_MAX_PIXELS pixels (see :class:`Conv2d`)."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        h, w = x.shape[-2:]
        if output_size is not None or not _use_gemm(x, h * w, self):
            return super().forward(x, output_size)
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                self.output_padding)


class PatchConv1d(nn.Conv1d):
    """``nn.Conv1d(c_in, c_out, k, stride=k)`` (same parameters, same function): each output
    frame reads its own patch of k input frames, computed as one matrix product over the
    patches. Not for speed: under bf16 autocast on CPUs with AMX, torch 2.13.0's oneDNN picks
    its AMX convolution (brg_conv_fwd:avx10_1_512_amx) for this shape and gets it wrong (16 or
    24 input channels, kernel = stride = 4 or 8: relative error 1.1 against fp32, where every
    other layer of every family is within 0.3 %; the class of pytorch/pytorch#169688). The roll
    critic's pitch-class view (24 channels) was that layer: trained on such a CPU it read noise
    (docs/results.md, section 22; tests/test_precision.py scans every layer for this)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(in_channels, out_channels, kernel_size, stride=kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, C_in, T) -> (n, C_out, T // k); a remainder of T shorter than k is dropped."""
        k = self.kernel_size[0]
        t = x.shape[-1] - x.shape[-1] % k
        patches = x[..., :t].unflatten(-1, (-1, k)).transpose(1, 2).flatten(2)  # (n, T/k, C_in*k)
        return F.linear(patches, self.weight.flatten(1), self.bias).transpose(1, 2)


def to_stock(module: nn.Module) -> nn.Module:
    """``module`` with this file's drop-in layers swapped, in place, for the stock torch.nn
    layers that compute the same function (Conv2d, ConvTranspose2d, LeakyReLU): the reference
    that tests and the training benchmark compare the fast layers with."""
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if isinstance(child, Conv2d):
                child.__class__ = nn.Conv2d  # same parameters and attributes
            elif isinstance(child, ConvTranspose2d):
                child.__class__ = nn.ConvTranspose2d
            elif isinstance(child, LeakyReLU):
                setattr(parent, name, nn.LeakyReLU(child.slope))
    return module


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.'s initialisation: weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def feature_stddev(x: torch.Tensor, group: int) -> torch.Tensor:
    """(n, C) -> (n, C + 1): the mean over features of the std across a group of samples."""
    n = x.shape[0]
    g = min(group, n)
    while n % g:
        g -= 1
    y = x.float().reshape(g, -1, x.shape[1])
    s = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=1)  # (n/g,)
    return torch.cat([x, s.repeat(g).reshape(n, 1).to(x.dtype)], dim=1)


def projection(embed: nn.Embedding | None, y: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor | float:
    """A projection discriminator's label term: <embed(y), h> / sqrt(dim) per sample (n,), for
    features ``h`` (n, dim); 0 when the critic has no such labels or none are given."""
    if embed is None or y is None:
        return 0.0
    return (embed(y) * h).sum(dim=1) / math.sqrt(h.shape[1])


def he_init(module: nn.Module) -> None:
    """He initialisation for LeakyReLU(0.2) on every conv and linear layer (torch's default
    shrinks the variance ~3x per layer: after the ~15 layers of G its output hardly depended on
    z, measured 0.004 std), zero biases. Layers that need other starts are set after this."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
