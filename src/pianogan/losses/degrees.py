"""How a clip spreads its notes over the degrees of its own key, and a distance between two
batches of it: the ``longform`` family's scale-degree term (``degree_match_weight``).

A clip's degree profile is its pitch-class shares of strike energy (strike², strikes capped at a
real strike's maximum) rotated so that its own key's tonic comes first; the key is the
Krumhansl-Kessler key of the same shares (pianogan.keys), read without gradient. Major and minor
clips are kept apart, since their profiles differ degree by degree.

Every run blurs the modes (docs/results.md, sections 34-37) and, read this way, more: on section
41's run (256 clips of 10 s at sampling settings against the corpus's 923 training clips) its
clips overplay the tonic (square-root share 0.54 against 0.49 major, 0.47 minor) and underplay
the third and the leading tone of major keys (0.30 / 0.15 against 0.36 / 0.22) and the second
and fifth of minor ones, while major clips sound the flat third (0.08 against 0.05). The
pitch-class group of the FD, the largest part left on every run, is mostly not the mean but the
spread between clips: generated clips differ in their chroma about twice as much as real ones
(section 42), each sitting on fewer classes. Section 37's roll critic with a degree view (the
same rotation, as a critic) cleared the major thirds but moved the blur into the minor clips; a
critic is free to look elsewhere. This term asks for the distribution itself: per mode and
degree, the 1-D Wasserstein distance between the generated clips' square-root shares and the
real clips' (sorted against sorted), over :data:`SCALE`, so a tonic played too often in some
clips costs as much as one played too often in all. Square roots steady the scale across
degrees: a rare degree's shares (0-2 %) and the tonic's (15-30 %) then spread alike.
"""

from __future__ import annotations

import torch

from ..data.rolls import PIANO_LOW
from ..keys import keys_of_profiles
from ..models.roll_critic import pitch_class_energy
from .sorted_match import sorted_distance

# The unit of the distance, in square-root share: about the corpus's spread of a common degree's
# value between clips (interquartile range / 1.35 of 512 training clips: 0.055-0.08 for the
# tonic, second, third, fourth and fifth; rare degrees sit at 0 in most clips).
SCALE = 0.05
EPS = 1e-4  # sqrt(share + EPS): a finite gradient at a share of 0
# Real clips the generator's batch is compared with: the last 16 critic batches of 16. One batch
# holds about six minor clips (38 % of the corpus's), often fewer real ones than generated; the
# bank's quantiles are a steady target. The gap's own noise stays (the generated batch is small):
# a real batch of 16 lies 0.72 from a bank of 256 on average, section 41's run in training 1.44.
DEGREE_BANK = 256


def class_shares(strikes: torch.Tensor) -> torch.Tensor:
    """Strikes (n, 88, T) -> (n, 12) float32: each clip's pitch-class shares of strike energy
    (strike², negatives as 0), class 0 = A (the roll's key 0); all 0 for a silent clip."""
    e = pitch_class_energy(strikes.float()).sum(-1)
    return e / (e.sum(1, keepdim=True) + 1e-6)


def degree_profiles(strikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Strikes (n, 88, T) >= 0 -> (profiles (n, 12), minor (n,) bool): each clip's shares of
    strike energy (strikes capped at 1, a real strike's maximum) per scale degree of its own
    Krumhansl-Kessler key, the tonic first, and whether that key is minor. The key is read
    without gradient; the shares keep theirs."""
    # Capped like the in-scale share (losses/longform.py, scale_share): a few strikes above any
    # real one would otherwise own the energy.
    shares = class_shares(strikes.float().clamp(max=1.0)).roll(PIANO_LOW % 12, dims=1)  # class 0 = C
    key = keys_of_profiles(shares)  # (n,) 0-11 major, 12-23 minor, tonic = key % 12
    tonic = (key % 12).to(shares.device)
    idx = (torch.arange(12, device=shares.device)[None] + tonic[:, None]) % 12
    return shares.gather(1, idx), (key >= 12).to(shares.device)


def bank(held: tuple[torch.Tensor, torch.Tensor] | None, new: tuple[torch.Tensor, torch.Tensor],
         size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The last ``size`` of ``held`` then ``new`` (degree profiles (n, 12) and minor flags (n,)),
    detached; ``held`` None: ``new`` alone."""
    if held is None:
        return new[0].detach()[-size:], new[1][-size:]
    return (torch.cat([held[0].to(new[0]), new[0].detach()])[-size:],
            torch.cat([held[1].to(new[1].device), new[1]])[-size:])


def degree_gap(fake: tuple[torch.Tensor, torch.Tensor], real: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Degree profiles (and minor flags) of generated and of real clips (:func:`degree_profiles`)
    -> the mean over the two modes (each weighted by its share of the generated clips) of the mean
    over degrees of the 1-D Wasserstein distance of the square-root shares, over :data:`SCALE`.
    Silent clips (no key to read) are left out, and so is a mode that one side lacks (0 when no
    mode is on both sides)."""
    (fp, fm), (rp, rm) = fake, real
    f_on, r_on = fp.sum(1) > 0.5, rp.sum(1) > 0.5  # a sounding clip's shares sum to 1, a silent one's to 0
    total, weight = fp.sum() * 0.0, 0
    for minor in (False, True):
        f, r = fp[f_on & (fm == minor)], rp[r_on & (rm == minor)]
        if len(f) and len(r):
            total = total + len(f) * sorted_distance((f + EPS).sqrt(), (r + EPS).sqrt(), midpoints=True).mean()
            weight += len(f)
    return total / max(weight, 1) / SCALE


__all__ = ["DEGREE_BANK", "EPS", "SCALE", "bank", "class_shares", "degree_gap", "degree_profiles"]
