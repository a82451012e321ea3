"""Give the C heap's freed memory back to the operating system between the blocks of long work.

glibc's malloc keeps what is freed inside its heap, and it raises its mmap threshold each time a
large block is freed, so later large tensors come from the heap as well. A loop that allocates
and frees tensors of tens of MB block after block (Griffin-Lim over a long piece) then grows the
process's resident memory with every block, by an amount that depends on the order of
allocations: a 10-minute piece peaked between 0.65 and 0.85 GB across installs of the same code,
0.66-0.77 GB with the heap trimmed after each block (0.53 GB with a fixed mmap threshold, a
process-wide setting left to whoever owns the process; docs/results.md, section 35).
:func:`trim` calls glibc's ``malloc_trim(0)``, which changes no setting; where the C library has
no such function it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, or None (another C library, or none found)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


def trim() -> bool:
    """Return the heap's free memory to the OS; True when some was returned."""
    fn = _malloc_trim()
    return bool(fn(0)) if fn is not None else False
