"""Mode-collapse measures: NDB/K (Richardson & Weiss 2018) and mean pairwise distance.

NDB ("number of statistically different bins"): k-means splits the *reference* (real) samples
into K bins; the test samples are assigned to the nearest centre; a bin is "different" when the
share of test samples in it differs from the reference share by a two-proportion z-test at
level alpha (two-sided, pooled variance). NDB/K is in [0, 1]: ~alpha or less for a set drawn
from the same distribution, near 1 for a collapsed set that fills one or two bins. The
Jensen-Shannon divergence (base 2, in [0, 1]) of the two bin histograms is reported with it.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps


def default_bins(n: int) -> int:
    """K for sets of n samples: about 10 samples per bin (so the z-test is valid), 2..50."""
    return int(np.clip(n // 10, 2, 50))


def kmeans(x: np.ndarray, k: int, seed: int = 0, restarts: int = 4) -> np.ndarray:
    """(n, d) -> (k, d) centres: best of ``restarts`` k-means++ runs (scipy.cluster.vq.kmeans2)."""
    from scipy.cluster.vq import kmeans2

    x = np.asarray(x, np.float64)
    if k > len(x):
        raise ValueError(f"cannot make {k} bins from {len(x)} samples")
    best, best_inertia = None, np.inf
    rng = np.random.default_rng(seed)
    for _ in range(restarts):
        centres, labels = kmeans2(x, k, iter=50, minit="++", missing="warn", seed=rng)
        inertia = ((x - centres[labels]) ** 2).sum()
        if inertia < best_inertia:
            best, best_inertia = centres, inertia
    return best


def assign(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(n, d) samples -> (n,) index of the nearest centre."""
    d2 = (x ** 2).sum(1)[:, None] - 2 * x @ centres.T + (centres ** 2).sum(1)[None]
    return d2.argmin(1)


def ndb(ref_labels: np.ndarray, test_labels: np.ndarray, k: int, alpha: float = 0.05) -> dict:
    """NDB of test vs reference bin labels: {"ndb", "ndb_k", "ndb_js", "bins", "alpha", ...}."""
    n1, n2 = len(ref_labels), len(test_labels)
    c1 = np.bincount(ref_labels, minlength=k).astype(np.float64)
    c2 = np.bincount(test_labels, minlength=k).astype(np.float64)
    p1, p2 = c1 / n1, c2 / n2
    pooled = (c1 + c2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = np.where(se > 0, (p1 - p2) / np.maximum(se, 1e-30), 0.0)
    different = np.abs(z) > sps.norm.ppf(1 - alpha / 2)
    m = (p1 + p2) / 2
    kl = lambda p, q: float(np.sum(np.where(p > 0, p * np.log2(np.maximum(p, 1e-30) / np.maximum(q, 1e-30)), 0.0)))  # noqa: E731
    return {"ndb": int(different.sum()), "ndb_k": float(different.mean()), "ndb_js": 0.5 * kl(p1, m) + 0.5 * kl(p2, m),
            "bins": int(k), "alpha": float(alpha), "ref_share": p1.tolist(), "test_share": p2.tolist()}


def mean_pairwise_distance(x: np.ndarray, max_n: int = 2000, seed: int = 0) -> float:
    """Mean Euclidean distance over pairs i < j of the rows of x (n, d); 0 for a collapsed set.

    Sets larger than ``max_n`` are subsampled (the mean is estimated from a random subset).
    float32 input stays float32 (images: n x H*W values), anything else is computed in float64.
    """
    x = np.asarray(x)
    x = x.astype(np.float32 if x.dtype == np.float32 else np.float64, copy=False).reshape(len(x), -1)
    if len(x) > max_n:
        x = x[np.random.default_rng(seed).choice(len(x), max_n, replace=False)]
    n = len(x)
    if n < 2:
        return 0.0
    sq = (x ** 2).sum(1)
    d2 = np.clip(sq[:, None] + sq[None] - 2 * x @ x.T, 0, None)
    iu = np.triu_indices(n, 1)
    return float(np.sqrt(d2[iu]).mean())
