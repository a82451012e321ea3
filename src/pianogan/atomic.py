"""Atomic, durable file writes: the one way PianoGAN writes a file that must never be torn.

Every writer (shards, manifest, statistics, JSON, WAV, PNG, checkpoints, safetensors) goes
through :func:`atomic_path` or one of the small helpers on top of it:

    with atomic_path(out / "images.npy") as tmp:   # a library that writes by path
        np.save(tmp, arr)
    write_json(out / "generated.json", record)      # or a helper

The data goes to a hidden temporary file beside the target, is fsync'ed, renamed over the
target with ``os.replace`` (atomic on POSIX), and the directory is fsync'ed so that the rename
itself survives a power cut. A reader therefore sees the old file or the new one, never half of
one; a process killed mid-write leaves at most a ``.<name>.tmp<pid>...`` file, which
:func:`remove_stale_temps` clears.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_MARK = ".tmp"
_serial = itertools.count()  # next() on a count is atomic under the GIL: thread-safe names


def _temp_name(path: Path) -> Path:
    # Unique per process and call (two threads may write the same target). Keeps the suffix
    # last, so libraries that pick a format by extension (np.save, savefig, soundfile) write
    # the right one and do not append their own.
    return path.with_name(f".{path.stem}{TEMP_MARK}{os.getpid()}-{next(_serial)}{path.suffix}")


def fsync_dir(directory: Path) -> None:
    """fsync a directory so that renames inside it are durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on success it is fsync'ed and
    renamed over ``path``; on an exception it is removed and ``path`` is left untouched."""
    path = Path(path)
    tmp = _temp_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj, indent: int | None = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent) + "\n")


# Names of temporary files: ours (.NAME.tmpPID-N.SUFFIX, and .NAME.tmpPID of older versions)
# and those of the hand-written writers this module replaced (NAME.tmp, NAME.tmp.SUFFIX).
_STALE = re.compile(r"^\..+\.tmp\d+(-\d+)?(\.\w+)?$|^.+\.tmp(\.\w+)?$")


def remove_stale_temps(directory: str | Path) -> int:
    """Delete temporary files left in ``directory`` by writers that were killed; returns how many."""
    n = 0
    folder = Path(directory)
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if _STALE.match(p.name) and p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


__all__ = ["atomic_path", "fsync_dir", "remove_stale_temps", "write_bytes", "write_json", "write_text"]
