"""The take cache: the one directory the server writes to, bounded in size, least recently used
takes evicted first.

Layout::

    CACHE/takes/<take id>/clip-0000.wav     the take's audio (pianogan generate's file names)
                         /clip-0000.png     its spectrogram, time (s) x frequency (Hz)
                         /generated.json    its record: `pianogan generate --from` makes it again
                         /images.npy        the generator images it was made from
                         /take.mid          MIDI, when a transcriber is configured
                         /take.json         what the server needs to list it (model, seed, ...)
    CACHE/takes/.stage-<id>-<pid>-<n>/      a take being written (renamed into place when whole)

A take's id is a hash of the model's identity (file, size, mtime, step), the seed and every
generation setting, so the same request is answered from the cache, and a retrained model never
serves stale takes. A take directory's mtime is its last use; :meth:`TakeCache.evict` removes the
oldest until the cache fits its size.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import threading
from pathlib import Path

from ..atomic import fsync_dir

TAKE_ID = re.compile(r"^[0-9a-f]{32}$")
STAGE = ".stage-"
# public file name -> (file in the take directory, media type)
FILES = {"audio.wav": ("clip-0000.wav", "audio/wav"),
         "spectrogram.png": ("clip-0000.png", "image/png"),
         "generated.json": ("generated.json", "application/json"),
         "take.mid": ("take.mid", "audio/midi")}
_counter = itertools.count()


def take_id(identity: str, seed: int, settings: dict, extra: dict | None = None) -> str:
    """32 hex digits naming the take of model ``identity`` with ``seed`` and ``settings``."""
    key = json.dumps({"model": identity, "seed": int(seed), "settings": settings,
                      "extra": extra or {}}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def dir_bytes(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


class TakeCache:
    """Take directories under ``root/takes``, at most ``max_bytes`` in all after each eviction."""

    def __init__(self, root: str | Path, max_bytes: int):
        self.root = Path(root).resolve()
        self.takes = self.root / "takes"
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()

    def setup(self) -> int:
        """Create the directories; remove stages left by killed writers. Returns how many."""
        self.takes.mkdir(parents=True, exist_ok=True)
        return self.clear_stages()

    def path(self, tid: str) -> Path:
        if not TAKE_ID.match(tid):
            raise KeyError(tid)
        return self.takes / tid

    def stage(self, tid: str) -> Path:
        """A new, empty directory to write take ``tid`` into before :meth:`commit`."""
        path = self.takes / f"{STAGE}{self.path(tid).name}-{os.getpid()}-{next(_counter)}"
        path.mkdir(parents=True)
        return path

    def commit(self, stage: Path, tid: str) -> Path:
        """Rename a fully written stage into place (atomic); a take already there wins."""
        final = self.path(tid)
        try:
            os.rename(stage, final)
        except OSError:  # made meanwhile by another job: keep that one
            shutil.rmtree(stage, ignore_errors=True)
        fsync_dir(self.takes)
        return final

    def clear_stages(self, pid: int | None = None) -> int:
        """Remove stage directories (of process ``pid`` only, when given)."""
        n = 0
        if not self.takes.is_dir():
            return 0
        for p in self.takes.glob(f"{STAGE}*"):
            if pid is None or p.name.split("-")[-2] == str(pid):
                shutil.rmtree(p, ignore_errors=True)
                n += 1
        return n

    def meta(self, tid: str) -> dict | None:
        """The take's take.json, or None when it is not (or no longer) cached."""
        try:
            return json.loads((self.path(tid) / "take.json").read_text())
        except (KeyError, OSError, ValueError):
            return None

    def file(self, tid: str, name: str) -> tuple[Path, str] | None:
        """(path, media type) of public file ``name`` of a take, marking the take as used."""
        if name not in FILES:
            return None
        try:
            folder = self.path(tid)
        except KeyError:
            return None
        inner, media = FILES[name]
        path = folder / inner
        if not path.is_file():
            return None
        self.touch(tid)
        return path, media

    def touch(self, tid: str) -> None:
        try:
            os.utime(self.path(tid))
        except (KeyError, OSError):
            pass

    def evict(self, keep: set[str] = frozenset()) -> list[str]:
        """Remove least recently used takes (not those in ``keep``) until the cache fits."""
        with self._lock:
            entries = []
            for p in self.takes.iterdir() if self.takes.is_dir() else []:
                if p.is_dir() and TAKE_ID.match(p.name):
                    try:
                        entries.append((p.stat().st_mtime_ns, p, dir_bytes(p)))
                    except OSError:
                        pass
            total = sum(size for _, _, size in entries)
            removed = []
            for _, p, size in sorted(entries, key=lambda e: e[0]):
                if total <= self.max_bytes:
                    break
                if p.name in keep:
                    continue
                shutil.rmtree(p, ignore_errors=True)
                total -= size
                removed.append(p.name)
            return removed

    def size(self) -> int:
        return dir_bytes(self.takes) if self.takes.is_dir() else 0
