"""How much of an FD is the draw: the FD part of the protocol repeated over several seeds.

At n = 256 clips per set the Fréchet distance of one generator moves by several points with the
draw of its latents and of the real reference half (docs/results.md, section 8: 19.8-25.9 over
five seeds for one checkpoint, as much as neighbouring checkpoints differ). A single figure
cannot tell two models apart by less than that. :func:`repeat_fd` repeats the real split, the
fake draw and both FDs with seeds ``seed, seed + 1, ...`` and reports each figure's mean and
spread; the transcription measures and the white-noise ceiling are not repeated (they cost
minutes per draw and are not what checkpoints are picked on).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..config import Preset
from ..spectrogram import Stats
from .core import run_evaluation

FIGURES = ["fd_floor", "fd_fake", "fd_ratio"]


def real_draw(real_ds, n: int, seed: int) -> np.ndarray:
    """The 2n real clips (2n, H, W) that one evaluation with ``seed`` compares (read lazily:
    a full dataset may not fit in memory); split into halves A and B by :func:`run_evaluation`."""
    rng = np.random.default_rng(seed)
    return real_ds.images(sorted(rng.choice(len(real_ds), 2 * n, replace=False).tolist()))


def draw_figures(report: dict, seed: int) -> dict:
    """{"seed", "fd_floor"[, "fd_fake", "fd_ratio"], "fd_groups"} of one evaluation's report;
    "fd_groups": {"real"[, "fake"]: {group: FD}} (:data:`~.features.FEATURE_GROUPS`)."""
    summary = report["summary"]
    groups = {k: report["sets"][k]["fd_groups"] for k in ("real", "fake")
              if "fd_groups" in report["sets"].get(k, {})}
    return {"seed": int(seed), **{k: summary[k] for k in FIGURES if k in summary},
            **({"fd_groups": groups} if groups else {})}


def repeat_fd(real_ds, fake_for_seed: Callable[[int], np.ndarray | None], preset: Preset, stats: Stats,
              n: int, seeds: list[int], progress: bool = False) -> list[dict]:
    """One :func:`draw_figures` dict per seed: the FD protocol of
    :func:`run_evaluation` (same split, same sizes) on that seed's real draw and fake set.

    ``fake_for_seed(seed)``: the fake images (m >= n, H, W) of that draw (a generator samples new
    latents; a fixed set returns itself and a random n of it is taken), or None (floor only).
    """
    from tqdm.auto import tqdm

    out = []
    for seed in tqdm(seeds, desc="repeats", unit="draw", disable=not progress, leave=False):
        rep = run_evaluation(real_draw(real_ds, n, seed), fake_for_seed(seed), preset, stats, n=n, seed=seed,
                             noise=False, plot=False, progress=False)
        out.append(draw_figures(rep, seed))
    return out


def summarise_draws(draws: list[dict]) -> dict:
    """{"draws", "mean", "sd", "min", "max"} of each figure over the draws (sd with ddof 1), and
    "fd_groups_mean" {set: {group: mean FD}} when every draw has the groups."""
    keys = [k for k in FIGURES if all(k in d for d in draws)]
    values = {k: np.array([d[k] for d in draws], np.float64) for k in keys}
    out = {"draws": draws,
           "mean": {k: float(v.mean()) for k, v in values.items()},
           "sd": {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()},
           "min": {k: float(v.min()) for k, v in values.items()},
           "max": {k: float(v.max()) for k, v in values.items()}}
    if draws and all("fd_groups" in d for d in draws):
        sets = [k for k in draws[0]["fd_groups"] if all(k in d["fd_groups"] for d in draws)]
        out["fd_groups_mean"] = {k: {g: float(np.mean([d["fd_groups"][k][g] for d in draws]))
                                     for g in draws[0]["fd_groups"][k]} for k in sets}
    return out


__all__ = ["FIGURES", "draw_figures", "real_draw", "repeat_fd", "summarise_draws"]
