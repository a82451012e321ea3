"""A beat clock: the generator is told where the beats fall, the roll critic checks the onsets.

The recipe's model plays almost without a beat (pulse 0.13-0.16 against real 0.45-0.52,
docs/results.md, section 19), and a critic that could hear the pulse did not teach one (section
19's pulse run). Its generator has to carry a beat's phase across one-second local latents
drawn independently, and nothing in its convolutions keeps time. So it gets the time the way a
transformer gets positions: cos/sin features of a clock running at the clip's beat period, at
the beat and two subdivisions, fed to every level of the generator (models/longform.py).

Each real clip's beat (its period and phase) is read from its own roll (:func:`clip_beats`): the
onset envelope's autocorrelation peak between 0.3 and 1.5 s, refined to a fraction of a frame
where the envelope's Fourier coefficient at that period is strongest; the phase is that
coefficient's angle. The roll critic reads where the strikes fall on the same clock
(:func:`clock_alignment`), so it can learn where real onsets fall against their own beat and
hold the generator to it; a fake gets
the beat of a real clip drawn with its labels, as it gets its key. At sampling the period is
drawn from the corpus's own per style (:func:`period_table`, filled at export) or asked for
(``generate --tempo``), the phase from the latent.

Pure functions of arrays; periods in frames, phases in radians.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .roll_lags import autocorrelation

BEAT_SECONDS = (0.3, 1.5)  # beat periods read: 200 down to 40 beats a minute
HARMONICS = (1, 2, 4)  # the beat, its halves and quarters: cos and sin of each
N_CHANNELS = 2 * len(HARMONICS)
N_QUANTILES = 16  # points of each style's period distribution kept at export
DEFAULT_SECONDS = 0.6  # the period without a table (100 beats a minute)
HALF_SHARE = 0.8  # see clip_beats
REFINE = 1.0  # the autocorrelation peak is refined within +- this many frames ...
REFINE_STEP = 0.05  # ... on this grid
WANDER_SECONDS = (3.0, 12.0)  # periods of the phase wander's sinusoids (phase_wander) ...
WANDER_PARTS = 3  # ... and how many of them


def onset_envelope(strikes: torch.Tensor) -> torch.Tensor:
    """Strikes (n, 88, T) >= 0 -> (n, T): notes struck per frame, smoothed by [1, 2, 1] / 4 (a
    played beat jitters by a frame either way)."""
    e = (strikes > 0).float().sum(dim=1)
    p = torch.nn.functional.pad(e[:, None], (1, 1))[:, 0]
    return 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]


def _coefficient(e: torch.Tensor, periods: torch.Tensor) -> torch.Tensor:
    """Envelope (n, T), mean removed, and periods (n, k) frames -> (n, k) complex Fourier
    coefficients sum_t e(t) exp(-2 pi i t / p)."""
    t = torch.arange(e.shape[-1], dtype=torch.float64, device=e.device)
    ang = 2 * math.pi * t[None, None] / periods[..., None]  # (n, k, T)
    e = e.double()[:, None]
    return torch.complex((e * torch.cos(ang)).sum(-1), -(e * torch.sin(ang)).sum(-1))


def clip_beats(strikes: torch.Tensor, frames_per_second: float) -> torch.Tensor:
    """Strikes (n, 88, T) of real clips -> beats (n, 2) float32: the beat period in frames and
    its phase in radians, so that cos(2 pi t / period - phase) peaks on the beats (t in frames
    from the clip's start). A clip without a pulse still gets its strongest period; a silent one
    gets :data:`DEFAULT_SECONDS` and phase 0."""
    lo = max(2, math.floor(BEAT_SECONDS[0] * frames_per_second))
    hi = math.ceil(BEAT_SECONDS[1] * frames_per_second)
    e = onset_envelope(strikes)
    e = e - e.mean(dim=-1, keepdim=True)
    r = autocorrelation(e, hi)  # lags 1..hi
    lag = r[:, lo - 1:].argmax(dim=1) + lo
    # A peak at twice the beat (a jittered beat's own period can read a little lower) is taken
    # at the beat when the half lag's autocorrelation is nearly as high: the shorter period.
    half = torch.div(lag, 2, rounding_mode="floor")
    near = torch.stack([r.gather(1, (half + d).clamp(1, hi)[:, None] - 1)[:, 0] for d in (-1, 0, 1)], 1)
    best_half = half + near.argmax(dim=1) - 1
    take = (best_half >= lo) & (near.max(dim=1).values >= HALF_SHARE * r.gather(1, lag[:, None] - 1)[:, 0])
    lag = torch.where(take, best_half, lag).double()
    grid = torch.arange(-REFINE, REFINE + 1e-9, REFINE_STEP, dtype=torch.float64)
    cands = (lag[:, None] + grid[None]).clamp(lo, hi)  # (n, k)
    z = torch.cat([_coefficient(e[i:i + 256], cands[i:i + 256]) for i in range(0, len(e), 256)])  # bounded memory
    best = z.abs().argmax(dim=1)
    period = cands.gather(1, best[:, None])[:, 0]
    phase = -torch.angle(z.gather(1, best[:, None])[:, 0]) % (2 * math.pi)
    silent = (strikes > 0).flatten(1).sum(1) == 0
    period = torch.where(silent, torch.full_like(period, DEFAULT_SECONDS * frames_per_second), period)
    phase = torch.where(silent, torch.zeros_like(phase), phase)
    return torch.stack([period, phase], dim=1).float()


def phase_wander(n: int, frames: int, frames_per_second: float, rms: float,
                 seeds: list[int] | None = None, device=None) -> torch.Tensor:
    """A slow wander of a clock's phase, like a performer's rubato -> (n, frames) radians: a sum
    of :data:`WANDER_PARTS` sinusoids, periods drawn in :data:`WANDER_SECONDS`, phases at random,
    scaled to an rms of ``rms`` radians. Drawn from the global RNG, or from one seed per row."""
    shape = (2, WANDER_PARTS, 1)  # per row: the periods' and the phases' U(0, 1) draws
    u = (torch.rand(n, *shape) if seeds is None
         else torch.stack([torch.rand(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]))
    u = u if device is None else u.to(device)
    lo, hi = WANDER_SECONDS
    period = (lo + (hi - lo) * u[:, 0]) * frames_per_second  # (n, P, 1) frames
    t = torch.arange(frames, dtype=torch.float32, device=u.device)
    parts = torch.sin(2 * math.pi * (t / period + u[:, 1]))  # (n, P, T)
    return parts.sum(1) * (rms / math.sqrt(WANDER_PARTS / 2))  # a unit sinusoid's rms is 1/sqrt(2)


def beat_clock(beats: torch.Tensor, frames: int, factor: int = 1,
               wander: torch.Tensor | None = None) -> torch.Tensor:
    """Beats (n, 2) (period in frames, phase in radians) -> the clock (n, :data:`N_CHANNELS`,
    frames // factor): cos and sin of h (2 pi t / period - phase + wander(t)) for h in
    :data:`HARMONICS`, averaged over each ``factor`` frames (a coarse level sees a subdivision
    faster than its rate as ~0 rather than aliased); ``wander`` (n, >= frames) radians, or none."""
    t = torch.arange(frames - frames % factor, dtype=torch.float32, device=beats.device)
    theta = 2 * math.pi * t[None] / beats[:, :1].float() - beats[:, 1:].float()  # (n, T)
    if wander is not None:
        theta = theta + wander[:, :theta.shape[1]].to(theta.device)
    h = torch.tensor(HARMONICS, dtype=torch.float32, device=beats.device)[None, :, None]
    c = torch.cat([torch.cos(h * theta[:, None]), torch.sin(h * theta[:, None])], dim=1)
    return c if factor == 1 else c.unflatten(-1, (-1, factor)).mean(-1)


def clock_alignment(strikes: torch.Tensor, clock: torch.Tensor) -> torch.Tensor:
    """Strikes (n, 88, T) >= 0 (any monotone view of them) and their clips' clocks (n,
    :data:`N_CHANNELS`, T) -> (n, N_CHANNELS): the clock's mean at the strikes, each frame weighted
    by its loudest strike (cos of the beat near 1: on the beat; cos of the half beat near -1: on
    the off-beats). A silent clip gives ~0.

    The loudest strike, not the sum over keys: a critic reading this is held by an R1 penalty on
    its input gradient, and through a sum every one of the 88 keys of every frame carries the
    same slope; 88 times the squared gradient held a critic's logit gap between on-beat and
    off-beat clips to 0.3, against 3.2 through the maximum (tests/test_beat_clock.py)."""
    on = strikes.clamp_min(0).amax(dim=1)  # (n, T)
    return (clock * on[:, None]).sum(-1) / (on.sum(-1, keepdim=True) + 1e-3)


def period_table(periods_s: np.ndarray, labels: np.ndarray | None, n_styles: int) -> np.ndarray:
    """Real clips' beat periods (n,) in seconds [and their style labels (n,)] -> (max(1, n_styles),
    :data:`N_QUANTILES`): each style's period quantiles at the midpoints (k + 0.5) / N (all clips
    for a style without any, or for an unconditional model)."""
    q = (np.arange(N_QUANTILES) + 0.5) / N_QUANTILES
    every = np.quantile(periods_s, q) if len(periods_s) else np.full(N_QUANTILES, DEFAULT_SECONDS)
    if not n_styles or labels is None:
        return every[None]
    return np.stack([np.quantile(periods_s[labels == s], q) if np.any(labels == s) else every
                     for s in range(n_styles)])


def draw_periods(u: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """U(0, 1) draws (n,) and each draw's row of a period table (n, Q >= 2) -> periods (n,), by
    linear interpolation between the quantiles (the end quantiles below and above them)."""
    q = table.shape[1]
    x = (u.float().clamp(0, 1) * q - 0.5).clamp(0, q - 1)
    i = x.floor().long().clamp(max=q - 2)
    lo, hi = table.gather(1, i[:, None])[:, 0], table.gather(1, (i + 1)[:, None])[:, 0]
    return lo + (x - i) * (hi - lo)


__all__ = ["BEAT_SECONDS", "HARMONICS", "N_CHANNELS", "beat_clock", "clip_beats", "clock_alignment",
           "draw_periods", "onset_envelope", "period_table", "phase_wander"]
