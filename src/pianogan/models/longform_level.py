"""Level calibration of a trained ``longform`` generator: one strike gain so that it plays as
loud as the training clips.

Why a calibration and not more training: the adversarial game left the generator playing too
softly (session 5's best checkpoint: every log-mel band 0.6-0.9 real standard deviations below
the corpus, strikes at 40 % of real strength), and the critics never pushed it back. Loudness
is one number that the training data fixes exactly, so it is fitted, not learned: the gain g
that makes the mean normalised level of generated clips equal that of real training clips.
Scaling the strikes (not the image) keeps silence silent: the renderer's noise floor does not
move, only the notes get louder, and their decays last longer above it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ..errors import PianoGANError


@torch.no_grad()
def mean_level(G, n: int = 128, seed: int = 0, batch: int = 32) -> float:
    """Mean of G's images (normalised log magnitude in [-1, 1]) over ``n`` clips from fixed latents."""
    g = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for start in range(0, n, batch):
        z = G.sample_z(min(batch, n - start), generator=g)
        x = G(z).float()
        total, count = total + float(x.sum()), count + x.numel()
    return total / count


def calibrate_level(G, real_images: np.ndarray, n: int = 128, seed: int = 0, iters: int = 12,
                    bounds: tuple[float, float] = (1 / 16, 16.0), field: str = "strike_gain") -> dict:
    """Set ``G.cfg.<field>`` (relative to its current value, which must be > 0) so that G's mean
    level matches ``real_images`` (n, F, T) in [-1, 1]; bisection on the log of the factor (the
    level rises with it). ``field``: ``strike_gain`` scales every strike; ``ghost_scale`` only
    the faint strikes below a dynamics map (longform_dynamics), so the mapped notes keep the
    corpus's values. Returns {"gain" (the field's new value), "real", "before", "after"}; a
    factor at a bound means the level is out of the field's reach. G is changed in place (its
    config only)."""
    if getattr(G.cfg, "head", None) != "notes":
        raise PianoGANError("level calibration: only a longform model with the 'notes' head has a strike gain")
    target = float(np.mean(real_images, dtype=np.float64))
    base = float(getattr(G.cfg, field))
    if base <= 0:
        raise PianoGANError(f"level calibration: {field} is {base:g}; it can only be scaled from a value > 0")

    def level_at(gain: float) -> float:
        G.cfg = dataclasses.replace(G.cfg, **{field: base * gain})
        return mean_level(G, n, seed)

    before = level_at(1.0)
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if level_at(math.exp(mid)) < target:
            lo = mid
        else:
            hi = mid
    gain = math.exp(0.5 * (lo + hi))
    after = level_at(gain)
    return {"gain": base * gain, "real": target, "before": before, "after": after}


__all__ = ["calibrate_level", "mean_level"]
