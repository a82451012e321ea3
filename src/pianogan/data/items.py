"""What ``pianogan prepare`` works on: items (input files or corpus pieces) and skip records.

A leaf module (no imports from the package), shared by :mod:`.sources`, which lists items, and
:mod:`.builtin`, which performs the built-in corpus's pieces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Item:
    """One input file (or corpus piece) to prepare."""

    key: str  # unique and stable, e.g. "audio:sub/a.wav"
    kind: str  # "audio", "midi" or "builtin"
    path: str  # file path, or the music21 corpus path for "builtin"
    source: str  # what the manifest's "source" column shows (path relative to the source root)
    split: str = "train"
    composer: str = ""
    title: str = ""
    seconds: float = 0.0  # estimated duration, for --max-hours and the progress bar
    fingerprint: str = ""  # changes when the input changes (size, mtime): redo the file
    extra: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Skip:
    """An input that was not used, and why (one line; goes to skipped.tsv)."""

    source: str
    reason: str


def stable_unit(text: str) -> float:
    """A number in [0, 1) fixed by ``text`` (sha1): deterministic splits and orderings."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / 16 ** 12
