"""Which training images each step sees: a seeded, endless, resumable stream of batches.

The stream is a sequence of epochs, each a permutation of the n clips drawn from
``numpy.random.default_rng([seed, epoch])``. Global batch k is positions
``k*B*W .. (k+1)*B*W - 1`` of that sequence (B per process, W processes) and process r takes
its r-th slice of B — so processes never share a clip within a batch (as torch's
DistributedSampler), and batch k is a pure function of (seed, k): a resumed run reads exactly
the batches the uninterrupted run would have read, with no state to save.
"""

from __future__ import annotations

import numpy as np


class BatchStream:
    def __init__(self, n: int, batch: int, world_size: int = 1, rank: int = 0, seed: int = 0):
        if n < 1 or batch < 1:
            raise ValueError("need at least one clip and a batch of at least one")
        self.n, self.batch, self.world_size, self.rank, self.seed = n, batch, world_size, rank, seed
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        p = self._perms.get(epoch)
        if p is None:
            if len(self._perms) > 4:
                self._perms.clear()
            p = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self._perms[epoch] = p
        return p

    def indices(self, k: int) -> np.ndarray:
        """Clip indices (batch,) of this process's share of global batch ``k``."""
        start = (k * self.world_size + self.rank) * self.batch
        pos = np.arange(start, start + self.batch)
        epochs, offsets = pos // self.n, pos % self.n
        out = np.empty(self.batch, dtype=np.int64)
        for e in np.unique(epochs):
            sel = epochs == e
            out[sel] = self._perm(int(e))[offsets[sel]]
        return out
