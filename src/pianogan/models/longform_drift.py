"""Drift calibration of a trained ``longform`` generator: how fast its global latent moves in a long
piece (``Config.drift_seconds``), so that its key changes as often as the training music's.

Why a calibration: a training clip (10 s) has one global latent, so the model never learned how
often music moves to another key; the global latent holds the key, and held for a whole piece it
kept one key more than real music does. How often the key changes is one statistic that the
data's piano rolls give directly (consecutive 10 s clips of one piece, in order), so the drift
period is picked from a few candidates to match it, on the notes played, not learned.

A window's key is its best diatonic scale (:func:`pianogan.evaluate.notes.best_scale`, a minor
key sharing its relative major's scale), read from how many notes of each pitch class it strikes,
as the note measures read it from transcribed notes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..keys import pitch_class_totals

# Seconds between the global latent's anchors tried by the calibration (0: no drift).
DRIFT_CANDIDATES = (0.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0)
STRIKE_NOTE = 0.05  # a strike this strong (velocity 28 of 127: strikes are (v / 127)^2) is a note
MIN_WINDOW_NOTES = 6  # a window needs this many notes to have a key (the note measures' MIN_KEY_NOTES)


def window_scales(strikes: torch.Tensor, window: int) -> np.ndarray:
    """Strikes (n, 88, T) -> (n, T // ``window``) the best scale (tonic 0..11) of each window's
    notes, -1 where a window has fewer than :data:`MIN_WINDOW_NOTES`."""
    from ..evaluate.notes import SHARE_MATRIX  # (12 classes, 12 scales): best_scale's, all windows at once

    n, keys, t = strikes.shape
    k = t // window
    notes = (strikes[..., :k * window] > STRIKE_NOTE).float().reshape(n, keys, k, window).sum(-1)
    counts = pitch_class_totals(notes.permute(0, 2, 1).reshape(n * k, keys, 1)).reshape(n, k, 12).double().numpy()
    return np.where(counts.sum(-1) >= MIN_WINDOW_NOTES, (counts @ SHARE_MATRIX).argmax(-1), -1)


def agreement(scales_a: np.ndarray, scales_b: np.ndarray) -> float:
    """Share of window pairs with the same scale (a window without one never agrees)."""
    return float(np.mean((scales_a == scales_b) & (scales_a >= 0)))


def real_agreement(strikes: torch.Tensor, follows: np.ndarray) -> tuple[float, int]:
    """Key agreement of consecutive clips of one piece: strikes (n, 88, T) of clips, ``follows``
    (n - 1,) bool, True where clip i + 1 continues clip i -> (agreement, pairs)."""
    scales = window_scales(strikes, strikes.shape[-1])[:, 0]
    follows = np.asarray(follows, bool)
    if not follows.any():
        return float("nan"), 0
    return agreement(scales[:-1][follows], scales[1:][follows]), int(follows.sum())


def continues(rows: list[dict]) -> np.ndarray:
    """Manifest rows (n) -> (n - 1,) bool: row i + 1 is the clip of the same piece that starts
    where row i ends."""
    def follows(a: dict, b: dict) -> bool:
        end = float(a["offset_seconds"]) + float(a["duration_seconds"])
        return a["shard"] == b["shard"] and abs(float(b["offset_seconds"]) - end) < 0.01 * float(a["duration_seconds"])

    return np.array([follows(a, b) for a, b in zip(rows[:-1], rows[1:])], bool)


@torch.no_grad()
def generated_agreement(G, window: int, n_windows: int = 6, n: int = 96, seed: int = 0) -> float:
    """Key agreement of consecutive ``window``-frame windows of ``n`` pieces of ``n_windows``
    windows, latents seeded from ``seed`` (the same for every candidate)."""
    fpl = G.cfg.frames_per_latent
    frames = window * n_windows
    a, b = [], []
    for i in range(n):
        z = G.sample_z(1, generator=torch.Generator().manual_seed(seed + i), n_local=-(-frames // fpl))
        s = window_scales(G.notes(z)[..., :frames].float().cpu(), window)[0]
        a.append(s[:-1])
        b.append(s[1:])
    return agreement(np.concatenate(a), np.concatenate(b))


def calibrate_drift(G, real: float, window: int, candidates=DRIFT_CANDIDATES, n: int = 96,
                    seed: int = 0) -> dict:
    """Set ``G.cfg.drift_seconds`` to the candidate whose pieces' key agreement between
    consecutive ``window``-frame windows is closest to ``real``. Returns {"drift_seconds",
    "real", "agreement": {candidate: agreement}}. G is changed in place (its config only)."""
    G.eval()
    found = {}
    for c in candidates:
        G.cfg = dataclasses.replace(G.cfg, drift_seconds=float(c))
        found[float(c)] = generated_agreement(G, window, n=n, seed=seed)
    best = min(found, key=lambda c: (abs(found[c] - real), c))
    G.cfg = dataclasses.replace(G.cfg, drift_seconds=best)
    return {"drift_seconds": best, "real": real, "agreement": found}


__all__ = ["DRIFT_CANDIDATES", "calibrate_drift", "continues", "generated_agreement", "real_agreement", "window_scales"]
