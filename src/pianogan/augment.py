"""Adaptive discriminator augmentation (ADA) for spectrogram images.

Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data": every image the
discriminator sees — real and generated alike — is augmented with probability ``p``, and ``p`` is
steered so that the overfitting heuristic ``r_t = E[sign(D(real))]`` stays near a target (0.6).
Because the generator only ever meets D through augmented images, an augmentation whose effect
could be "undone" in distribution (applied with p < 1, random parameters) does not leak into what
G generates; G's images stay un-augmented.

Images are (batch, 1, freq, time) in [-1, 1]: rows are frequency (row 0 = lowest), columns time,
values a normalised log magnitude (-1 = the clipped noise floor, i.e. near silence). The
transformations are chosen for that signal, each a plausible audio operation:

* **time shift** (integer columns, circular): the clip starts elsewhere in the piece; circular
  because a clip is a window of a longer recording (a splice is musically harmless, padding would
  invent a silence).
* **time stretch** (linear interpolation along time, circular): a tempo change without a pitch
  change (what a phase vocoder does to a spectrogram).
* **frequency shift** (a few whole rows, edge rows repeated): a small, constant frequency offset
  (a pitch shift on a log-frequency axis); kept small because harmonic spacing is information.
* **gain**: an additive offset in the normalised log domain = a loudness change in dB.
* **additive noise**: small Gaussian noise on the log magnitude.
* **time / frequency masking** (SpecAugment-like cutout): a muted stretch of time or a removed
  frequency band, filled with -1 (the floor).

Deliberately *not* used: rotations and vertical flips (the frequency axis is not symmetric:
harmonics sit at integer multiples above a fundamental, low rows hold the bass; a flipped or
rotated spectrogram is not the spectrogram of any sound, and at high p the generator could learn
to produce it), horizontal flips (time reversal turns piano attacks-and-decays into swells — the
direction of time is part of what must be learned), colour transforms (one channel) and isotropic
2-D scaling (time and frequency are different units).

All operations are differentiable with respect to the image (gathers, interpolation weights,
masks, additions, clamping), so the generator receives gradients through them, and keep the shape
and the [-1, 1] range.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

FLOOR = -1.0  # value of silence in a normalised image


@dataclass
class AugmentParams:
    """Strength of each augmentation (0 disables it); each is applied with probability p."""

    time_shift: float = 0.125  # max |shift|, fraction of the width (integer columns)
    time_stretch: float = 0.2  # std of log2(stretch factor)
    freq_shift: float = 0.02  # max |shift|, fraction of the height (at least 1 row)
    gain: float = 0.2  # std of the additive offset (normalised log units)
    noise: float = 0.05  # the noise std is |N(0, noise)|
    time_mask: float = 0.25  # max width of the muted band, fraction of the width
    freq_mask: float = 0.15  # max height of the removed band, fraction of the height


def _gather_along(x: torch.Tensor, idx: torch.Tensor, dim: int) -> torch.Tensor:
    """x (B, C, H, W); idx (B, N) integer positions along ``dim`` (2 or 3), N = x.shape[dim]."""
    b, c, h, w = x.shape
    shape = (b, 1, h, 1) if dim == 2 else (b, 1, 1, w)
    return x.gather(dim, idx.view(shape).expand(b, c, h, w))


def resample_time(x: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """Read column ``src[b, t]`` (fractional, periodic) into column t: x (B, C, H, W), src (B, W).

    Linear interpolation, so values stay within the input's range; integer ``src`` is exact.
    """
    w = x.shape[3]
    i0 = torch.floor(src)
    frac = (src - i0).to(x.dtype).view(x.shape[0], 1, 1, w)
    i0 = i0.long()
    a = _gather_along(x, torch.remainder(i0, w), 3)
    b = _gather_along(x, torch.remainder(i0 + 1, w), 3)
    return a + (b - a) * frac


def shift_freq(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Move content up by ``rows[b]`` whole rows (negative = down), repeating the edge row."""
    h = x.shape[2]
    src = torch.arange(h, device=x.device).view(1, h) - rows.view(-1, 1)
    return _gather_along(x, src.clamp(0, h - 1), 2)


def band_mask(n: int, length: int, max_frac: float, device) -> torch.Tensor:
    """(n, length) float masks, 1 inside one random band of width U(0, max_frac)·length."""
    width = torch.rand(n, 1, device=device) * max_frac * length
    centre = torch.rand(n, 1, device=device) * length
    pos = torch.arange(length, device=device).view(1, length) + 0.5
    return ((pos - centre).abs() < width / 2).float()


class SpectrogramAugment(nn.Module):
    """Apply each augmentation independently per sample with probability ``p`` (a float)."""

    def __init__(self, params: AugmentParams | None = None, p: float = 0.0):
        super().__init__()
        self.params = params or AugmentParams()
        self.p = float(p)

    def _chosen(self, n: int, device) -> torch.Tensor:
        return torch.rand(n, device=device) < self.p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 1, H, W) in [-1, 1] -> same shape, in [-1, 1]."""
        if self.p <= 0:
            return x
        q, (n, _, h, w), dev = self.params, x.shape, x.device

        # Time: integer circular shift, optionally combined with a stretch about the centre, in
        # one resampling pass. Untouched samples read src = t (exact identity).
        shift = torch.zeros(n, device=dev)
        log2s = torch.zeros(n, device=dev)
        if q.time_shift > 0:
            amount = torch.round((torch.rand(n, device=dev) * 2 - 1) * q.time_shift * w)
            shift = torch.where(self._chosen(n, dev), amount, shift)
        if q.time_stretch > 0:
            log2s = torch.where(self._chosen(n, dev), torch.randn(n, device=dev) * q.time_stretch, log2s)
        if q.time_shift > 0 or q.time_stretch > 0:
            t = torch.arange(w, device=dev, dtype=torch.float32).view(1, w)
            c = (w - 1) / 2
            src = c + (t - c) * torch.exp2(-log2s).view(n, 1) - shift.view(n, 1)
            x = resample_time(x, src)

        if q.freq_shift > 0:
            m = max(1, round(q.freq_shift * h))
            rows = torch.randint(-m, m + 1, (n,), device=dev) * self._chosen(n, dev)
            x = shift_freq(x, rows)

        if q.gain > 0:
            offset = torch.randn(n, device=dev) * q.gain * self._chosen(n, dev)
            x = (x + offset.view(n, 1, 1, 1).to(x.dtype)).clamp(-1.0, 1.0)

        if q.noise > 0:
            sigma = torch.randn(n, device=dev).abs() * q.noise * self._chosen(n, dev)
            x = (x + torch.randn_like(x) * sigma.view(n, 1, 1, 1).to(x.dtype)).clamp(-1.0, 1.0)

        if q.time_mask > 0:
            m = band_mask(n, w, q.time_mask, dev) * self._chosen(n, dev).float().view(n, 1)
            m = m.view(n, 1, 1, w).to(x.dtype)
            x = x * (1 - m) + FLOOR * m
        if q.freq_mask > 0:
            m = band_mask(n, h, q.freq_mask, dev) * self._chosen(n, dev).float().view(n, 1)
            m = m.view(n, 1, h, 1).to(x.dtype)
            x = x * (1 - m) + FLOOR * m
        return x


class AdaController:
    """Adjusts an augmenter's p from the sign of D's logits on (augmented) reals.

    Every ``interval`` D steps: r_t = mean sign(D(real)) over those steps (and over all DDP
    ranks); p += sign(r_t - target) · (images seen) / (kimg · 1000), clamped to [0, 1]. So p can
    travel 0 -> 1 in ``kimg`` thousand real images when D keeps overfitting. The accumulators live
    on the logits' device (no host sync per step) and are part of :meth:`state_dict`.
    """

    def __init__(self, augment: SpectrogramAugment, target: float = 0.6, interval: int = 4,
                 kimg: float = 500.0, adapt: bool = True):
        self.augment, self.target, self.interval, self.kimg, self.adapt = augment, target, interval, kimg, adapt
        self._acc: torch.Tensor | None = None  # [sum of signs, count]
        self._pending = [0.0, 0.0]  # restored values, moved to the device on first use
        self.steps = 0  # D steps since the last adjustment
        self.last_rt = float("nan")

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add one D step's logits on reals; adjusts p when ``interval`` steps have been seen."""
        logits = real_logits.detach().float()
        if self._acc is None or self._acc.device != logits.device:
            self._acc = torch.tensor(self._pending, dtype=torch.float64, device=logits.device)
        self._acc[0] += logits.sign().sum().double()
        self._acc[1] += logits.numel()
        self.steps += 1
        if self.steps >= self.interval:
            self._adjust()

    def _adjust(self) -> None:
        acc = self._acc.clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(acc)
        total, count = acc.tolist()
        if count > 0:
            self.last_rt = total / count
            if self.adapt:
                direction = (self.last_rt > self.target) - (self.last_rt < self.target)
                p = self.augment.p + direction * count / (self.kimg * 1000.0)
                self.augment.p = min(1.0, max(0.0, p))
        self._acc.zero_()
        self.steps = 0

    def state_dict(self) -> dict:
        acc = self._acc.tolist() if self._acc is not None else list(self._pending)
        return {"p": self.augment.p, "acc": acc, "steps": self.steps, "last_rt": self.last_rt}

    def load_state_dict(self, d: dict) -> None:
        self.augment.p = float(d["p"])
        self._pending = [float(v) for v in d["acc"]]
        self._acc = None
        self.steps = int(d["steps"])
        self.last_rt = float(d.get("last_rt", float("nan")))
