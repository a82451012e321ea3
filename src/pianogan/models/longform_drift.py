"""Drift calibration of a trained ``longform`` generator: how fast its global latent moves in a long
piece (``Config.drift_seconds``), so that its key changes as often as the training music's.

Why a calibration: a training clip (10 s) has one global latent, so the model never learned how
often music moves to another key; the global latent holds the key, and held for a whole piece it
kept one key more than real music does. How often the key changes is one statistic that the
data's piano rolls give directly (consecutive 10 s clips of one piece, in order), so the drift
period is set to match it, on the notes played, not learned.

Two choices decide where it lands (docs/results.md, section 33):

- the real figure weighs every piece alike (:func:`real_agreement`), as the evaluator draws its
  real excerpts round-robin over the pieces: weighted by pairs, a few long quartets outweighed
  97 chorales (0.543 against 0.600 on the built-in slice), and the shorter drifts it chose left
  the halves of 20 s pieces agreeing on a key less often than real ones. Aimed per piece, some
  runs' 60 s windows agree more often than real ones instead: the evaluator's 20 s and 60 s
  references are different music, and no one drift meets both on every run;
- the model's agreement is measured at a few periods on 256 pieces, made monotone in the period
  (a longer period can only hold a key longer; the fit evens out the sampling noise, about 0.02
  a candidate) and read between candidates (:func:`pick_drift`), so two close candidates no
  longer flip the choice by noise.

A harmony-plan model (``Config.harmony_plan``) carries its key in its plans instead, so there
the calibration sets how often a long piece's next plan keeps the scale (:func:`calibrate_hold`).

A window's key is its best diatonic scale (:func:`pianogan.evaluate.notes.best_scale`, a minor
key sharing its relative major's scale), read from how many notes of each pitch class it strikes,
as the note measures read it from transcribed notes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy.optimize import isotonic_regression

from ..keys import pitch_class_totals

# Seconds between the global latent's anchors measured by the calibration (0: no drift); the
# chosen period lies between the shortest and the longest, or is 0.
DRIFT_CANDIDATES = (0.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 75.0, 90.0, 120.0)
# Weights of "keep the scale" mixed into a harmony-plan model's key steps (plan_key_hold).
HOLD_CANDIDATES = (0.0, 0.25, 0.5, 0.75, 1.0)
CALIBRATION_PIECES = 256  # generated 60 s pieces per candidate
STRIKE_NOTE = 0.05  # a strike this strong (velocity 28 of 127: strikes are (v / 127)^2) is a note
MIN_WINDOW_NOTES = 6  # a window needs this many notes to have a key (the note measures' MIN_KEY_NOTES)


def window_scales(strikes: torch.Tensor, window: int) -> np.ndarray:
    """Strikes (n, 88, T) -> (n, T // ``window``) the best scale (tonic 0..11) of each window's
    notes, -1 where a window has fewer than :data:`MIN_WINDOW_NOTES`."""
    from ..evaluate.notes import best_scales

    n, keys, t = strikes.shape
    k = t // window
    notes = (strikes[..., :k * window] > STRIKE_NOTE).float().reshape(n, keys, k, window).sum(-1)
    counts = pitch_class_totals(notes.permute(0, 2, 1).reshape(n * k, keys, 1)).reshape(n, k, 12).double().numpy()
    return np.where(counts.sum(-1) >= MIN_WINDOW_NOTES, best_scales(counts), -1)


def agrees(scales_a: np.ndarray, scales_b: np.ndarray) -> np.ndarray:
    """Per window pair: the same scale (a window without one never agrees)."""
    return (scales_a == scales_b) & (scales_a >= 0)


def agreement(scales_a: np.ndarray, scales_b: np.ndarray) -> float:
    """Share of window pairs with the same scale (:func:`agrees`)."""
    return float(np.mean(agrees(scales_a, scales_b)))


def real_agreement(strikes: torch.Tensor, rows: list[dict]) -> tuple[float, int, int]:
    """Key agreement of consecutive clips of one piece, each piece weighing alike: strikes
    (n, 88, T) of the clips of manifest ``rows`` (n) -> (mean over pieces of the share of their
    consecutive pairs (:func:`continues`) that agree, pairs, pieces with a pair). A pair's clips
    share their shard, so the shard names its piece."""
    scales = window_scales(strikes, strikes.shape[-1])[:, 0]
    follows = continues(rows)
    if not follows.any():
        return float("nan"), 0, 0
    agree = agrees(scales[:-1], scales[1:])[follows]
    _, owner = np.unique(np.array([r["shard"] for r in rows[:-1]])[follows], return_inverse=True)
    per_piece = np.bincount(owner, weights=agree) / np.bincount(owner)
    return float(per_piece.mean()), int(follows.sum()), len(per_piece)


def continues(rows: list[dict]) -> np.ndarray:
    """Manifest rows (n) -> (n - 1,) bool: row i + 1 is the clip of the same piece that starts
    where row i ends."""
    def follows(a: dict, b: dict) -> bool:
        end = float(a["offset_seconds"]) + float(a["duration_seconds"])
        return a["shard"] == b["shard"] and abs(float(b["offset_seconds"]) - end) < 0.01 * float(a["duration_seconds"])

    return np.array([follows(a, b) for a, b in zip(rows[:-1], rows[1:])], bool)


@torch.no_grad()
def generated_agreement(G, window: int, n_windows: int = 6, n: int = CALIBRATION_PIECES, seed: int = 0,
                        batch: int = 32) -> float:
    """Key agreement of consecutive ``window``-frame windows of ``n`` pieces of ``n_windows``
    windows; piece i's latent is drawn from seed ``seed + i`` (the same for every candidate, and
    whatever the ``batch``)."""
    fpl = G.cfg.frames_per_latent
    frames = window * n_windows
    a, b = [], []
    for start in range(0, n, batch):
        z = torch.cat([G.sample_z(1, generator=torch.Generator().manual_seed(seed + i), n_local=-(-frames // fpl))
                       for i in range(start, min(n, start + batch))])
        s = window_scales(G.notes(z)[..., :frames].float().cpu(), window)
        a.append(s[:, :-1].ravel())
        b.append(s[:, 1:].ravel())
    return agreement(np.concatenate(a), np.concatenate(b))


def pick_drift(found: dict[float, float], real: float) -> float:
    """The period whose agreement is ``real`` on the measured curve ``found`` {period: agreement}
    (0: no drift): the positive periods' agreements are made non-decreasing in the period
    (isotonic fit) and read between candidates, linearly in log period (the curve is about
    straight there). Outside their range: the shortest period, or the longest or 0 (no drift),
    whichever agrees closer. Rounded to 0.1 s."""
    periods = sorted(c for c in found if c > 0)
    if not periods:
        return 0.0
    levels, log_at = _monotone(np.log(periods), [found[c] for c in periods])
    if real <= levels[0]:
        return float(periods[0])
    if real >= levels[-1]:
        still = found.get(0.0)
        return 0.0 if still is not None and abs(still - real) < abs(levels[-1] - real) else float(periods[-1])
    return round(float(np.exp(np.interp(real, levels, log_at))), 1)


def calibrate_drift(G, real: float, window: int, candidates=DRIFT_CANDIDATES, n: int = CALIBRATION_PIECES,
                    seed: int = 0) -> dict:
    """Set ``G.cfg.drift_seconds`` to the period at which its pieces' key agreement between
    consecutive ``window``-frame windows is ``real`` (:func:`pick_drift` on the agreement at each
    of ``candidates``, ``n`` pieces each, the same latents for all). Returns {"drift_seconds",
    "real", "agreement": {candidate: agreement}}. G is changed in place (its config only)."""
    G.eval()
    found = _sweep(G, "drift_seconds", candidates, window, n, seed)
    best = pick_drift(found, real)
    G.cfg = dataclasses.replace(G.cfg, drift_seconds=best)
    return {"drift_seconds": best, "real": real, "agreement": found}


def pick_hold(found: dict[float, float], real: float) -> float:
    """The hold whose agreement is ``real`` on the measured curve ``found`` {hold: agreement}:
    the agreements made non-decreasing in the hold (isotonic fit) and read linearly between
    candidates; outside their range the nearest end. Rounded to 0.01."""
    holds = sorted(found)
    levels, at = _monotone(np.asarray(holds), [found[h] for h in holds])
    return round(float(np.interp(real, levels, at)), 2)


def calibrate_hold(G, real: float, window: int, candidates=HOLD_CANDIDATES, n: int = CALIBRATION_PIECES,
                   seed: int = 0) -> dict:
    """For a harmony-plan model: set ``G.cfg.plan_key_hold`` to the weight of "keep the scale" in
    its strung plans' key steps at which consecutive ``window``-frame windows agree as often as
    ``real`` (:func:`pick_hold` over ``candidates``, ``n`` pieces each, the same latents for
    all), with no drift: the plan, not the global latent, carries the key (on section 43's run
    every drift from 0 to 120 s gave the same agreement, 0.33-0.34). Returns {"plan_key_hold",
    "real", "agreement": {candidate: agreement}}. G is changed in place (its config only)."""
    G.eval()
    G.cfg = dataclasses.replace(G.cfg, drift_seconds=0.0)
    found = _sweep(G, "plan_key_hold", candidates, window, n, seed)
    best = pick_hold(found, real)
    G.cfg = dataclasses.replace(G.cfg, plan_key_hold=best)
    return {"plan_key_hold": best, "real": real, "agreement": found}


def _sweep(G, field: str, candidates, window: int, n: int, seed: int) -> dict[float, float]:
    """{candidate: G's key agreement (:func:`generated_agreement`) with its config ``field`` set to
    it}, the same latents for every candidate."""
    found = {}
    for c in candidates:
        G.cfg = dataclasses.replace(G.cfg, **{field: float(c)})
        found[float(c)] = generated_agreement(G, window, n=n, seed=seed)
    return found


def _monotone(xs: np.ndarray, ys) -> tuple[np.ndarray, np.ndarray]:
    """Agreements ``ys`` at increasing ``xs`` made non-decreasing (isotonic fit) -> (the distinct
    fitted levels, the x of each: a flat run's mean x), for reading x at a level."""
    fit = isotonic_regression(list(ys)).x
    levels, owner = np.unique(np.round(fit, 12), return_inverse=True)
    return levels, np.bincount(owner, weights=xs) / np.bincount(owner)


__all__ = ["CALIBRATION_PIECES", "DRIFT_CANDIDATES", "HOLD_CANDIDATES", "agreement", "agrees", "calibrate_drift",
           "calibrate_hold", "continues", "generated_agreement", "pick_drift", "pick_hold", "real_agreement",
           "window_scales"]
