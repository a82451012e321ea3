"""Fréchet distance between two sets of feature vectors (Gaussian fit of each set).

FD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the formula of FID (Heusel et al. 2017)
applied to any features. It is biased upwards for small sets (the covariance estimates are
noisy), so only compare FDs of sets of equal size; the evaluation reports a real-vs-real floor
of the same size for that reason.
"""

from __future__ import annotations

import numpy as np


def gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) features -> mean (d,), covariance (d, d) (unbiased, n - 1)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need (n >= 2, d) features, got shape {x.shape}")
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_from_moments(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """FD of two Gaussians given their means (d,) and covariances (d, d)."""
    # tr((A B)^(1/2)) = tr((A^(1/2) B A^(1/2))^(1/2)); the symmetric form is computed with eigh
    # instead of scipy.linalg.sqrtm, which returns complex noise for the singular covariances
    # that n < d sets have.
    ra = _sqrt_psd(cov_a)
    m = ra @ cov_b @ ra
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = mu_a - mu_b
    fd = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)
    return max(fd, 0.0)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD between feature sets a (n, d) and b (m, d)."""
    return frechet_from_moments(*gaussian(a), *gaussian(b))


def frechet_by_group(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray,
                     groups: dict[str, list[int]]) -> dict[str, float]:
    """{group: FD of the two Gaussians restricted to the group's dimensions}: the marginal of a
    Gaussian on a subset of dimensions is the sub-vector of its mean and the sub-block of its
    covariance, so no refit is needed."""
    out = {}
    for name, idx in groups.items():
        i = np.asarray(idx, dtype=int)
        out[name] = frechet_from_moments(mu_a[i], cov_a[np.ix_(i, i)], mu_b[i], cov_b[np.ix_(i, i)])
    return out
