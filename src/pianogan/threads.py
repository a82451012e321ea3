"""Scoped torch thread count: :func:`torch_threads` sets it for a block and restores it after.

``torch.set_num_threads`` is process-wide, so a library function that lowers it must put it back,
and two threads that lower it at once must not restore each other's value. The context manager
counts the blocks that are active in the process: the first one saves the setting, every one sets
its own value on entry, and the last one out restores the saved setting.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_lock = threading.Lock()
_active = 0
_saved: int | None = None


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)``; the process's setting is restored when the
    last concurrently active block (in any thread) ends."""
    global _active, _saved
    if n < 1:
        raise ValueError("thread count must be >= 1")
    with _lock:
        if _active == 0:
            _saved = torch.get_num_threads()
        _active += 1
        torch.set_num_threads(n)
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                torch.set_num_threads(_saved)
                _saved = None
