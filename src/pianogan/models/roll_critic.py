"""The ``longform`` discriminator's second view: what was *played*, as a piano roll.

The spectrogram critic judges sound; harmony, key and rhythm are easier to judge on notes. When a
dataset has its performances (:mod:`pianogan.data.rolls`), real clips come with the strikes and
held keys they were rendered from, and the generator's note head produces the same two
(n, 88, T) maps, so a critic can compare them directly. Two views of the roll:

- the keyboard: 2-D convolutions over (key, time); a kernel 13 keys tall sees an octave at once,
  so intervals and chords are judged wherever they lie (translation-equivariant in pitch);
- the pitch classes: strikes and held keys folded onto 12 classes (octaves summed), which is
  where key and harmony live; a 1-D conv along time, plus the clip's pitch-class profile.

Both feed a 1-D trunk along time with a local head (texture: rhythm, density) and a global head
(minibatch standard deviation, projection on the style embedding). Any length: T a multiple of 4.

A third, small view (``energy_frames`` > 0): which pitch classes carry the *sound*. Through the
square root below, a loud note and a faint one look alike, and the generator put its loud strikes
on few pitch classes — the three strongest classes held 84 % of its strike energy (strike^2)
against 61 % real, while the square-root view's shares matched real (0.61 / 0.60) — and the
audio's chroma, the largest part of its FD, followed (session 8, docs/results.md). This view
folds strike energy onto 12 classes, for the clip and per window of ``energy_frames`` (~2 s),
and an MLP reads the clip's profile beside its spread across windows (how far the loud notes'
harmony moves).

A fourth view (``degrees``): the pitch classes as *scale degrees*. Each clip's key is found from
its own strikes (Krumhansl-Kessler, the evaluator's key finder, on the clean roll before the
instance noise; no gradient through the choice), its 12 classes are rotated so the tonic comes
first and put in a major or a minor half by the key's mode: (n, 2 x 2 x 12, T), read by a conv
along time, and its clip profile by the global head. In the raw classes a missing leading tone
in A minor and one in E minor are different inputs the critic must learn 24 times over; in
degrees they are one. The recipe's model played its major thirds 10 % of the time against real
14 %, and its minor tonic 31 % against 22 % (session 12), which no critic corrected.

A fifth view (``pulse_lags`` > 0): the autocorrelation of the onset envelope at lags up to
1.5 s, read by an MLP, so the critic can tell onsets on a steady beat from onsets at random
(:mod:`.roll_lags` has the measurements that motivate it).

A sixth view (``clock``): where the strikes fall on the clip's beat clock (:mod:`.beat_clock`):
the mean cos/sin of the beat and its subdivisions at the strikes, weighted by the strikes
(:func:`~.beat_clock.clock_alignment`, on the clean roll), read by an MLP, so the critic learns
where real onsets fall against their own beat; a fake is given the beat it was asked to play.
Its own head, like the pulse's: given the clock as six more channels beside the pitch classes,
the critic of the first 2 h run ignored it (at step 2000 its logits on real rolls were the same
to 0.01 with their own beat and with the phase moved by a quarter, half or three quarters of a
beat) and its generator played on the quarter-beat off-beats (session 18, docs/results.md). It
was telling real from fake by a margin of ~2 logits on other cues, and never needed the clock.
The head reads each frame's loudest strike, not the sum over keys, or the R1 penalty holds it
near zero (:func:`~.beat_clock.clock_alignment` says why).

Strikes are seen through a compressive power (``view_power``, 0.5: a square root). In linear
units a faint strike (0.015) hides under the instance noise beside real ones (>= 0.07, the
softest velocities), and a generator that played a haze of them — 22 strikes/s at a median of
0.015 against real 5.8/s at 0.25, measured at step 3500 of session 5's run — went unpunished; a
square root lifts 0.015 to 0.12 and a real 0.07 to 0.26, well above the noise.
While training, both real and generated rolls get Gaussian instance noise (``noise``; the loss
anneals it, :func:`pianogan.losses.longform.roll_noise_at`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.rolls import PIANO_LOW
from ..keys import keys_of_profiles
from .beat_clock import N_CHANNELS, beat_clock, clock_alignment
from .layers import PatchConv1d, feature_stddev, projection
from .roll_lags import pulse_profile


def roll_view(strikes: torch.Tensor, held: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """(strikes, held) (n, 88, T) -> the critic's input (n, 2, 88, T'), T' = T rounded down to a
    multiple of 4, strikes raised to ``power``. The loss takes R1 with respect to this view, not
    the raw strikes: through a square root every silent entry of a real roll would carry a slope
    of 50, and the penalty, 2500x larger there, flattened the critic to chance (measured:
    logits +0.1 / -0.1 for 1000 steps, against +1.5 / -1.2 with the linear view)."""
    t = strikes.shape[-1] - strikes.shape[-1] % 4
    strikes = strikes[..., :t].float()
    if power != 1.0:
        # (s + e)^p - e^p: 0 stays 0, and the slope at 0 stays finite (p e^(p-1) = 50 for p = 0.5)
        e = 1e-4
        strikes = (strikes + e) ** power - e ** power
    return torch.stack([strikes, held[..., :t].float()], dim=1)


def fold_pitch_classes(x: torch.Tensor) -> torch.Tensor:
    """(n, C, 88, T) -> (n, C, 12, T): sum over octaves; class 0 = A (the piano's lowest key)."""
    pad = 96 - x.shape[2]
    x = F.pad(x, (0, 0, 0, pad))
    return x.reshape(x.shape[0], x.shape[1], 8, 12, x.shape[3]).sum(dim=2)


def key_of_classes(pc: torch.Tensor) -> torch.Tensor:
    """(n, C, 12, T) pitch classes (class 0 = A, :func:`fold_pitch_classes`) -> (n,) the key
    (an index into pianogan.keys.KEY_NAMES) of the first channel's totals; no gradient."""
    return keys_of_profiles(pc[:, 0].sum(-1).roll(PIANO_LOW % 12, dims=1))  # class 0 = C there


def scale_degrees(pc: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """(n, C, 12, T) pitch classes (class 0 = A) and their keys (n,) -> (n, C * 24, T): rotated
    so the tonic comes first and placed in the major (first 12 rows per channel) or the minor
    half by the key's mode; the other half is zero."""
    n, c, _, t = pc.shape
    tonic = (key % 12 - PIANO_LOW % 12) % 12  # the tonic's class in pc's order
    idx = (torch.arange(12, device=pc.device) + tonic[:, None]) % 12  # (n, 12): degree -> class
    deg = pc.gather(2, idx[:, None, :, None].expand(n, c, 12, t))
    minor = (key >= 12).to(pc.dtype)[:, None, None, None]
    return torch.cat([deg * (1 - minor), deg * minor], dim=2).flatten(1, 2)


def _shares(profile: torch.Tensor) -> torch.Tensor:
    """(n, k) totals -> shares of their sum (a silent clip stays ~0)."""
    return profile / (profile.sum(dim=1, keepdim=True) + 1e-3)


def pitch_class_energy(strikes: torch.Tensor) -> torch.Tensor:
    """Strikes (n, 88, T) -> (n, 12, T): strike energy (strike², negatives as 0) summed over
    octaves per frame; the energy view below and the loss's pitch-class spread both read it."""
    return fold_pitch_classes(strikes.clamp_min(0).square().unsqueeze(1))[:, 0]


class RollCritic(nn.Module):
    """view(strikes, held) (n, 2, 88, T) [+ labels (n,)] -> logits (n,)."""

    def __init__(self, width: int = 128, n_styles: int = 0, mbstd_group: int = 4, noise: float = 0.0,
                 view_power: float = 1.0, energy_frames: int = 0, n_keys: int = 0, degrees: bool = False,
                 pulse_lags: int = 0, clock: bool = False):
        super().__init__()
        self.clock = bool(clock)
        self.mbstd_group, self.noise, self.view_power = mbstd_group, float(noise), float(view_power)
        self.energy_frames = int(energy_frames)
        self.keys = nn.Sequential(
            nn.Conv2d(2, 32, (13, 3), padding=(6, 1)), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.2))  # (n, 32, 22, T/4)
        self.classes = nn.Sequential(PatchConv1d(2 * 12, width // 2, 4), nn.LeakyReLU(0.2))
        self.degrees = (nn.Sequential(PatchConv1d(2 * 24, width // 2, 4), nn.LeakyReLU(0.2))
                        if degrees else None)
        n_deg = 2 * 24 if degrees else 0
        self.trunk = nn.Sequential(
            nn.Conv1d(32 * 22 + width // 2 * (2 if degrees else 1), width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(width, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(width, width, 3, padding=2, dilation=2), nn.LeakyReLU(0.2))
        self.local = nn.Conv1d(width, 1, 1)
        self.glob = nn.Sequential(nn.Linear(width + 2 * 12 + n_deg + 1, width), nn.LeakyReLU(0.2))
        self.out = nn.Linear(width, 1)
        self.embed = nn.Embedding(n_styles, width) if n_styles else None
        self.key_embed = nn.Embedding(n_keys, width) if n_keys else None
        self.energy = (nn.Sequential(nn.Linear(2 * 12, width // 2), nn.LeakyReLU(0.2), nn.Linear(width // 2, 1))
                       if self.energy_frames > 0 else None)
        self.pulse_lags = int(pulse_lags)
        self.pulse = (nn.Sequential(nn.Linear(self.pulse_lags, width // 2), nn.LeakyReLU(0.2), nn.Linear(width // 2, 1))
                      if self.pulse_lags > 0 else None)
        self.beat = (nn.Sequential(nn.Linear(N_CHANNELS, width // 2), nn.LeakyReLU(0.2), nn.Linear(width // 2, 1))
                     if self.clock else None)
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)

    def view(self, strikes: torch.Tensor, held: torch.Tensor) -> torch.Tensor:
        """Raw (strikes, held) (n, 88, T) -> this critic's input (:func:`roll_view`)."""
        return roll_view(strikes, held, self.view_power)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, noise: float | None = None,
                keys: torch.Tensor | None = None, beats: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (n,) of rolls in the critic's view ``x`` (n, 2, 88, T) (:meth:`view`); ``noise``:
        the instance noise's standard deviation while training (None: ``self.noise``); ``keys``
        (n,): key labels, projected on like the style; ``beats`` (n, 2): each clip's beat (period
        in frames, phase) for a critic with a clock (None: a silent clock)."""
        noise = self.noise if noise is None else float(noise)
        clean = x
        if self.training and noise > 0:
            # Instance noise on both sides: real rolls are exact (zeros, velocity steps), the
            # generator's are continuous; without it the critic told them apart by that alone
            # (logits +4 / -6 within 100 steps, measured) and its gradient said nothing musical.
            x = x + noise * torch.randn_like(x)
        k = self.keys(x)
        pc = fold_pitch_classes(x)  # (n, 2, 12, T)
        views = [k.flatten(1, 2), self.classes(pc.flatten(1, 2))]
        profiles = [_shares(pc.mean(dim=3).flatten(1))]  # (n, 24) pitch-class profile of the clip
        if self.degrees is not None:
            # the key is read from the clean roll (the noise would swamp a 10 s clip's totals),
            # the degrees of the noisy one (the critic's input)
            deg = scale_degrees(pc, key_of_classes(fold_pitch_classes(clean[:, :1])))
            views.append(self.degrees(deg))
            profiles.append(_shares(deg.mean(dim=2)))  # (n, 48) degree profile, per mode half
        h = self.trunk(torch.cat(views, dim=1))
        local = self.local(h).mean(dim=(1, 2))
        g = torch.cat([h.mean(dim=2), *profiles], dim=1)
        g = self.glob(feature_stddev(g, self.mbstd_group))
        out = self.out(g).squeeze(1) + local
        if self.energy is not None:
            out = out + self.energy(self.energy_profile(x)).squeeze(1)
        if self.pulse is not None:  # the onsets' autocorrelation: is there a beat (models/roll_lags.py)
            out = out + self.pulse(pulse_profile(x[:, 0], self.pulse_lags)).squeeze(1)
        if self.beat is not None:  # where the strikes fall on the clip's beat (None: a silent clock)
            if beats is not None:
                align = clock_alignment(clean[:, 0], beat_clock(beats.to(x.device), x.shape[-1]).to(x.dtype))
            else:
                align = x.new_zeros(x.shape[0], N_CHANNELS)
            out = out + self.beat(align).squeeze(1)
        return out + projection(self.embed, labels, g) + projection(self.key_embed, keys, g)

    def energy_profile(self, x: torch.Tensor) -> torch.Tensor:
        """View ``x`` (n, 2, 88, T) -> (n, 24): the clip's pitch-class shares of strike energy
        (strike^2, undoing the view's power; the instance noise's share is ~1e-8) and their standard
        deviation across windows of ``energy_frames`` (one window when the clip is shorter)."""
        e = pitch_class_energy(x[:, 0].clamp_min(0) ** (1.0 / self.view_power))  # (n, 12, T)
        k = max(1, min(self.energy_frames, e.shape[-1]))
        w = e[..., : e.shape[-1] // k * k].unflatten(-1, (-1, k)).sum(-1)  # (n, 12, W)
        clip = e.sum(-1)
        clip = clip / (clip.sum(1, keepdim=True) + 1e-4)
        w = w / (w.sum(1, keepdim=True) + 1e-4)
        spread = (w.var(-1, unbiased=False) + 1e-8).sqrt()  # std's gradient at 0 is 0/0 (one window)
        return torch.cat([clip, spread], dim=1)
