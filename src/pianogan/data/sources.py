"""Inputs of ``pianogan prepare``: a SOURCE spec -> the list of files (items) to prepare.

SOURCE is one of
    maestro:PATH   MAESTRO (v1-v3) layout: PATH is the folder with maestro-v3.0.0.csv (or .json)
                   or that file itself; split, composer and title come from it
    audio:PATH     a folder tree of audio files (wav, flac, ogg, mp3, ...)
    midi:PATH      a folder tree of MIDI files, rendered with a SoundFont piano
    builtin        the built-in corpus (music21's scores, performed and rendered; no download)

For audio: and midi:, a folder named train / validation (valid, val, dev) / test anywhere in a
file's path sets its split; every other file is "train".

Problems found while listing (a file listed in the csv but missing, a row with an unknown split)
become :class:`Skip` records; problems inside files are found later, by the worker.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..audio import AUDIO_EXTENSIONS
from ..errors import PianoGANError
from .items import SPLITS, Item, Skip, stable_unit

SPLIT_DIRS = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
              "val": "validation", "dev": "validation", "test": "test", "testing": "test"}
MIDI_EXTENSIONS = (".mid", ".midi", ".kar")
MAESTRO_REQUIRED = ("canonical_composer", "canonical_title", "split", "audio_filename")
MAESTRO_COLUMNS = ("canonical_composer", "canonical_title", "split", "year", "midi_filename",
                   "audio_filename", "duration")


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "maestro", "audio", "midi", "builtin"
    path: Path | None

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


def parse_source(spec: str) -> SourceSpec:
    """'maestro:PATH' | 'audio:PATH' | 'midi:PATH' | 'builtin' -> SourceSpec (path resolved)."""
    kind, sep, path = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "builtin":
        if path:
            raise PianoGANError("the builtin source takes no path: use `builtin`")
        return SourceSpec("builtin", None)
    if kind not in ("maestro", "audio", "midi") or not sep or not path:
        raise PianoGANError(f"unknown source {spec!r}: use maestro:PATH, audio:PATH, midi:PATH or builtin")
    p = Path(path).expanduser()
    if not p.exists():
        raise PianoGANError(f"{kind} source not found: {p}")
    return SourceSpec(kind, p.resolve())


def fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}-{st.st_mtime_ns}"


def unreadable(path: Path) -> str | None:
    """Why a listed file cannot be read (a dangling link, vanished since it was listed, no
    permission), or None if it can be ``stat``-ed."""
    try:
        path.stat()
    except FileNotFoundError:
        return "dangling symbolic link" if path.is_symlink() else "vanished after it was listed"
    except OSError as e:
        return f"cannot be read ({e.strerror or type(e).__name__})"
    return None


def split_from_path(rel: Path) -> str:
    for part in rel.parts[:-1]:
        split = SPLIT_DIRS.get(part.lower())
        if split:
            return split
    return "train"


def _walk(root: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Files under root with one of the extensions (case-insensitive), sorted; hidden ones skipped."""
    if root.is_file():
        return [root]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(extensions):
                found.append(Path(dirpath) / name)
    return sorted(found)


def _relative(path: Path, root: Path) -> str:
    return path.name if root.is_file() else path.relative_to(root).as_posix()


def audio_items(root: Path) -> tuple[list[Item], list[Skip]]:
    """Every audio file under root; duration and tags (artist -> composer, title) from its header."""
    import soundfile as sf

    from ..audio import captured_stderr

    items, skips = [], []
    for path in _walk(root, AUDIO_EXTENSIONS):
        rel = _relative(path, root)
        problem = unreadable(path)
        if problem:
            skips.append(Skip(rel, problem))
            continue
        seconds, composer, title = 0.0, "", path.stem
        try:
            with captured_stderr(), sf.SoundFile(str(path)) as f:  # the worker reports decoder messages
                seconds = f.frames / f.samplerate
                meta = f.copy_metadata()
            composer = meta.get("artist", "") or ""
            title = meta.get("title", "") or title
        except Exception:  # not decodable by libsndfile: the worker tries harder, and reports
            pass
        items.append(_item("audio", path, rel, composer, title, seconds, skips))
    return [i for i in items if i is not None], skips


def _item(kind: str, path: Path, rel: str, composer: str, title: str, seconds: float,
          skips: list[Skip]) -> Item | None:
    """The Item of a listed file, or None (and a Skip) if it vanished meanwhile."""
    try:
        stamp = fingerprint(path)
    except OSError:
        skips.append(Skip(rel, unreadable(path) or "vanished after it was listed"))
        return None
    return Item(f"{kind}:{rel}", kind, str(path), rel, split_from_path(Path(rel)), composer, title,
                seconds, stamp)


def midi_items(root: Path) -> tuple[list[Item], list[Skip]]:
    """Every MIDI file under root; duration from a quick parse with mido (0 if it fails)."""
    import mido

    items, skips = [], []
    for path in _walk(root, MIDI_EXTENSIONS):
        rel = _relative(path, root)
        problem = unreadable(path)
        if problem:
            skips.append(Skip(rel, problem))
            continue
        try:
            seconds = float(mido.MidiFile(str(path)).length)
        except Exception:
            seconds = 0.0
        items.append(_item("midi", path, rel, "", path.stem, seconds, skips))
    return [i for i in items if i is not None], skips


def find_maestro_metadata(root: Path) -> Path:
    if root.is_file():
        return root
    for pattern in ("maestro-v*.csv", "maestro*.csv", "maestro-v*.json", "maestro*.json"):
        found = sorted(root.glob(pattern))
        if found:
            return found[-1]  # the newest version if several
    raise PianoGANError(f"{root}: no maestro-v3.0.0.csv or .json metadata file found")


def read_maestro_metadata(path: Path) -> list[dict]:
    """Rows of a MAESTRO csv, or json (column-oriented as in v3, or a list of records as in v2)."""
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):  # {"column": {"0": value, ...}, ...}
                columns = list(data)
                index = list(data[columns[0]]) if columns else []
                rows = [{c: data[c].get(i, "") for c in columns} for i in index]
            elif isinstance(data, list):
                rows = [dict(r) for r in data]
            else:
                raise ValueError("expected an object or a list")
            header = list(rows[0]) if rows else list(data) if isinstance(data, dict) else []
        else:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
                header = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, csv.Error) as e:
        raise PianoGANError(f"{path}: cannot read MAESTRO metadata ({e})") from None
    missing = [c for c in MAESTRO_REQUIRED if c not in header]
    if missing:
        raise PianoGANError(f"{path.name}: not MAESTRO metadata, missing column(s) {', '.join(missing)} "
                            f"(expected {', '.join(MAESTRO_COLUMNS)})")
    return rows


def maestro_items(root: Path) -> tuple[list[Item], list[Skip]]:
    meta = find_maestro_metadata(root)
    base = meta.parent
    rows = read_maestro_metadata(meta)
    items, skips, seen = [], [], set()
    for r in rows:
        rel = str(r.get("audio_filename") or "").strip()
        if not rel:
            skips.append(Skip(f"{meta.name} row without audio_filename", "no audio file named"))
            continue
        if rel in seen:
            continue
        seen.add(rel)
        split = str(r.get("split") or "").strip().lower()
        if split not in SPLITS:
            skips.append(Skip(rel, f"unknown split {split!r} in {meta.name}"))
            continue
        path = base / rel
        if not path.is_file():
            reason = "a dangling symbolic link" if path.is_symlink() else "not found"
            skips.append(Skip(rel, f"listed in {meta.name} but {reason}"))
            continue
        try:
            stamp = fingerprint(path)
        except OSError:
            skips.append(Skip(rel, unreadable(path) or "vanished after it was listed"))
            continue
        try:
            seconds = float(r.get("duration") or 0.0)
        except (TypeError, ValueError):
            seconds = 0.0
        extra = {k: str(r[k]) for k in ("year", "midi_filename") if r.get(k) not in (None, "")}
        items.append(Item(f"maestro:{rel}", "audio", str(path), rel, split,
                          str(r.get("canonical_composer") or ""), str(r.get("canonical_title") or ""),
                          seconds, stamp, extra))
    return items, skips


def builtin_items() -> tuple[list[Item], list[Skip]]:
    from .builtin import PERFORM_VERSION, corpus_pieces

    try:
        import music21
        from music21 import corpus
    except ImportError:
        raise PianoGANError("the builtin source needs music21 (pip install music21)") from None
    root = Path(corpus.__file__).parent
    items, skips = [], []
    for piece in corpus_pieces():
        if not (root / piece.ref).is_file():
            skips.append(Skip(piece.ref, f"not in the installed music21 {music21.__version__} corpus"))
            continue
        items.append(Item(f"builtin:{piece.ref}", "builtin", piece.ref, piece.ref, piece.split,
                          piece.composer, piece.title, piece.seconds,
                          f"music21-{music21.__version__}/perform-{PERFORM_VERSION}", {"kind": piece.kind}))
    return items, skips


def list_items(spec: SourceSpec) -> tuple[list[Item], list[Skip]]:
    """All items of a source (sorted by key) and the problems found while listing them."""
    if spec.kind == "maestro":
        items, skips = maestro_items(spec.path)
    elif spec.kind == "audio":
        items, skips = audio_items(spec.path)
    elif spec.kind == "midi":
        items, skips = midi_items(spec.path)
    else:
        items, skips = builtin_items()
    return sorted(items, key=lambda i: i.key), skips


def select(items: list[Item], split: str | list[str] | None = None,
           max_hours: float | None = None) -> list[Item]:
    """Items of the given split(s); with ``max_hours``, a deterministic pseudo-random subset of about
    that many hours (taken in a fixed hash order until the total reaches it, skipping files that
    would overshoot it by more than 10 %, unless it is the first), in key order."""
    if split is not None:
        splits = {split} if isinstance(split, str) else set(split)
        items = [i for i in items if i.split in splits]
    if max_hours is not None:
        budget = max_hours * 3600.0
        chosen, total = [], 0.0
        for item in sorted(items, key=lambda i: stable_unit("order:" + i.key)):
            if total >= budget:
                break
            if chosen and total + item.seconds > 1.1 * budget:  # a long piece would overshoot
                continue
            chosen.append(item)
            total += item.seconds
        items = sorted(chosen, key=lambda i: i.key)
    return items
