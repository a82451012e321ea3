"""Dynamics calibration of a trained ``longform`` generator: a monotone map of its strike values
so that it plays as many notes, as loud, as the training rolls.

Why a calibration: the generators play a wider and busier dynamic range than a pianist. At
training scale the shipped model's loudest strike in a 10 s clip is 1.6x the corpus's, while its
40th loudest is half the corpus's 40th, and below those it plays ~180 faint strikes a clip
(the corpus has 64 strikes a clip in all): a haze of ghost notes that keeps its level up
(docs/results.md, sections 26 and 29). A penalty on the ghost notes in training took the sound
with them (section 26); a sampling-time map keeps every note the model chose and changes only how
hard it is struck.

The map matches *exceedance rates*: the strike that a model's clip exceeds r times on average
(its r-th loudest, per clip) is mapped to the strike that a real clip exceeds r times, for r from
a fraction of a note up to the corpus's own count of strikes. It is stored as knots of a
piecewise-linear function (``Config.strike_map``: the raw values, then the mapped ones); below
the lowest knot the strikes are the ghost notes beyond the corpus's count, which
``Config.ghost_scale`` scales (0 drops them), and above the highest one the map goes on in
proportion. A style-conditioned model gets one map per style, fitted on its clips of that style
against the corpus's clips of that style: the corpus's chorales are played far more softly than
its keyboard pieces (a clip's loudest strike 0.48 against 0.78), and one map for all had played
every style alike (0.66).
"""

from __future__ import annotations

import numpy as np
import torch

# The last knot sits at this share of the real clips' count of strikes: their faintest few are
# near 0 (a rate at the full count mapped the model's 64th loudest strike to 6e-5).
TOP_RATE = 0.95
N_KNOTS = 24  # knots a side of one map
MIN_KNOT = 1e-6  # the smallest gap between two raw knots


def exceedance_values(strikes: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Strikes (n, 88, T) >= 0 -> (len(rates),): the value a clip's strikes exceed ``rates[i]``
    times on average (rate per clip; 0 where it has fewer strikes)."""
    s = np.asarray(strikes, np.float64)
    v = np.sort(s[s > 0])[::-1]
    k = np.maximum(np.round(np.asarray(rates) * len(strikes)).astype(int), 1)
    return np.where(k <= len(v), v[np.minimum(k, len(v)) - 1], 0.0)


def fit_strike_map(fake: np.ndarray, real: np.ndarray) -> tuple[float, ...]:
    """:data:`N_KNOTS` knots (raw x ascending..., mapped y ...) of the exceedance-rate map from
    strikes ``fake`` (n, 88, T) to ``real`` (m, 88, T): rates log-spaced from 1/4 per clip up to
    :data:`TOP_RATE` of the real clips' count of strikes per clip. Raw values that tie (or a rate
    the model never reaches) are nudged apart, so the map stays a function."""
    per_clip = float((np.asarray(real) > 0).sum()) / len(real)
    rates = np.geomspace(0.25, max(TOP_RATE * per_clip, 0.5), N_KNOTS)
    x, y = exceedance_values(fake, rates)[::-1], exceedance_values(real, rates)[::-1]
    x = np.maximum(x, MIN_KNOT) + MIN_KNOT * np.arange(N_KNOTS)  # strictly increasing (x is sorted)
    y = np.maximum.accumulate(np.maximum(y, 0.0))
    return tuple(float(v) for v in np.concatenate([x, y]))


def fit_style_maps(fake: np.ndarray, fake_labels: np.ndarray, real: np.ndarray, real_labels: np.ndarray,
                   n_styles: int) -> tuple[float, ...]:
    """One :func:`fit_strike_map` per style (clips of style s against real clips of style s),
    concatenated; a style with no real clips gets the map of all clips."""
    whole = fit_strike_map(fake, real)
    maps = []
    for s in range(n_styles):
        f, r = fake[fake_labels == s], real[real_labels == s]
        maps.extend(fit_strike_map(f, r) if len(f) and len(r) else whole)
    return tuple(maps)


def _map(strikes: torch.Tensor, knots, ghost_scale: float) -> torch.Tensor:
    """:func:`_map_values` of the struck entries only (most of a roll is silent, and a long
    piece's roll is large): the silent ones get the map's value at 0."""
    struck = strikes != 0
    out = torch.full_like(strikes, float(_map_values(strikes.new_zeros(1), knots, ghost_scale)))
    out[struck] = _map_values(strikes[struck], knots, ghost_scale)
    return out


def _map_values(strikes: torch.Tensor, knots, ghost_scale: float) -> torch.Tensor:
    k = len(knots) // 2
    x = torch.as_tensor(knots[:k], dtype=strikes.dtype, device=strikes.device)
    y = torch.as_tensor(knots[k:], dtype=strikes.dtype, device=strikes.device)
    i = torch.searchsorted(x, strikes.contiguous()).clamp(1, k - 1)
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    inside = y0 + (strikes - x0) * (y1 - y0) / (x1 - x0)
    out = torch.where(strikes >= x[-1], strikes * (y[-1] / x[-1]), inside)
    return torch.where(strikes < x[0], strikes * (ghost_scale * y[0] / x[0]), out)


def apply_strike_map(strikes: torch.Tensor, knots: tuple[float, ...], ghost_scale: float,
                     labels: torch.Tensor | None = None) -> torch.Tensor:
    """Strikes (n, 88, T) >= 0 mapped through ``knots`` (:func:`fit_strike_map`): linear between
    knots, in proportion above the last one, ``ghost_scale`` x the first knot's ratio below it.
    ``knots`` may hold one map per style, concatenated (:func:`fit_style_maps`); ``labels`` (n,)
    then picks each clip's (without labels, the first style's)."""
    size = len(knots) // map_count(knots)
    if size == len(knots) or labels is None:
        return _map(strikes, knots[:size], ghost_scale)
    out = torch.empty_like(strikes)
    for s in range(len(knots) // size):
        rows = labels == s
        if rows.any():
            out[rows] = _map(strikes[rows], knots[s * size:(s + 1) * size], ghost_scale)
    return out


def map_count(knots) -> int:
    """How many maps ``knots`` holds: a fitted map has :data:`N_KNOTS` knots a side, so a list of
    a multiple of that length holds one map per style; any other length is one map."""
    per = 2 * N_KNOTS
    return len(knots) // per if len(knots) % per == 0 and len(knots) >= per else 1


@torch.no_grad()
def played_strikes(G, n: int, seed: int = 0, labels: torch.Tensor | None = None, batch: int = 32,
                   bar=None) -> np.ndarray:
    """(n, 88, T) strikes G plays at its training length from the latents of ``seed``, sampled as
    ``pianogan generate`` samples them (``labels`` (n,) their styles, None: drawn from z), in
    batches (numpy); ``bar``: a progress bar updated per batch."""
    z = G.sample_z(n, generator=torch.Generator().manual_seed(int(seed)))
    out = []
    for s in range(0, n, batch):
        out.append(G.notes(z[s:s + batch], None if labels is None else labels[s:s + batch]).float().numpy())
        if bar is not None:
            bar.update(len(out[-1]))
    return np.concatenate(out)


def played_raw(G, n: int = 256, seed: int = 0, labels: torch.Tensor | None = None) -> np.ndarray:
    """:func:`played_strikes` before any map, gain or ceiling."""
    import dataclasses

    cfg = G.cfg
    G.cfg = dataclasses.replace(cfg, strike_map=(), strike_gain=1.0, strike_ceiling=0.0)
    try:
        return played_strikes(G, n, seed, labels)
    finally:
        G.cfg = cfg


def calibrate_dynamics(G, real_strikes: np.ndarray, real_labels: np.ndarray | None = None, n: int = 256,
                       seed: int = 0) -> dict:
    """Set ``G.cfg.strike_map`` from ``n`` clips of G against the training rolls' ``real_strikes``
    (m, 88, T): one map per style when G is conditioned on styles and ``real_labels`` (m,) gives
    the real clips' (``n`` clips of each style), else one map. Returns {"knots", "per_style",
    "strikes_per_clip": {"real", "model"}}. G's config is changed in place; its ``strike_gain``
    is reset to 1 (the level calibration comes after)."""
    import dataclasses

    n_styles = int(getattr(G, "n_styles", 0) or 0)
    if n_styles and real_labels is not None:
        labels = torch.arange(n_styles).repeat_interleave(n)
        fake = played_raw(G, n * n_styles, seed, labels)
        knots = fit_style_maps(fake, labels.numpy(), real_strikes, np.asarray(real_labels), n_styles)
    else:
        fake = played_raw(G, n, seed)
        knots = fit_strike_map(fake, real_strikes)
    G.cfg = dataclasses.replace(G.cfg, strike_map=knots, strike_gain=1.0)
    return {"knots": [round(v, 5) for v in knots], "per_style": map_count(knots) > 1,
            "strikes_per_clip": {"real": float((real_strikes > 0).sum() / len(real_strikes)),
                                 "model": float((fake > 0).sum() / len(fake))}}


__all__ = ["N_KNOTS", "apply_strike_map", "calibrate_dynamics", "exceedance_values", "fit_strike_map", "fit_style_maps",
           "map_count", "played_raw", "played_strikes"]
