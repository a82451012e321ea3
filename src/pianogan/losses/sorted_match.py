"""The 1-D Wasserstein distance between two batches of per-clip values, column by column: the
distance the ``longform`` family's matching terms pay (losses/movement.py, losses/degrees.py).

Sorted against sorted: the generated clip with the largest value is compared with the real one
with the largest, so a missing tail costs as much as a wrong mean.
"""

from __future__ import annotations

import torch


def sorted_distance(fake: torch.Tensor, real: torch.Tensor, midpoints: bool = False) -> torch.Tensor:
    """Values (n, d) of generated clips and (m, d) of real ones -> (d,): per column, the mean
    absolute difference of the sorted values (float32; no gradient to the reals). With m != n the
    reals are read at n quantiles: ``midpoints`` (i + 1/2) / n, so that the largest of ten fakes is
    compared with the reals' 95th percentile, not their maximum; else evenly from 0 to 1."""
    f = fake.float().sort(dim=0).values
    r = real.float().detach().sort(dim=0).values
    if f.shape[0] != r.shape[0]:
        n = f.shape[0]
        if midpoints:
            q = (torch.arange(n, device=r.device, dtype=r.dtype) + 0.5) / n
        else:
            q = torch.linspace(0, 1, n, device=r.device)
        r = torch.quantile(r, q, dim=0)
    return (f - r).abs().mean(0)


__all__ = ["sorted_distance"]
