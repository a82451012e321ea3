"""The prepared training set on disk, and :class:`PianoDataset` that reads it.

Layout of a dataset directory (written by ``pianogan prepare`` or :func:`write_dataset`)::

    DIR/preset.json        the spectrogram preset (config.Preset fields)
    DIR/stats.json         normalisation statistics (spectrogram.Stats) of the training split
    DIR/manifest.csv       one row per clip: MANIFEST_COLUMNS
    DIR/shards/NAME.npy    float16 images (n, H, W), memory-mappable .npy files
    DIR/dataset.json       format information (optional; absent = format 1)
    DIR/skipped.tsv        inputs that were skipped, with the reason (prepare only)

A clip's image is ``shards/<shard>.npy[row]``. Two formats, both read by :class:`PianoDataset`:

- format 1 (:func:`write_dataset`, and any dataset without dataset.json): shards hold
  normalised images in [-1, 1];
- format 2 (``pianogan prepare``, dataset.json ``"normalized": false``): shards hold the
  resized log-magnitude ``to_image(log(|STFT| + eps))`` before normalisation, and the reader
  normalises with stats.json (see :mod:`pianogan.data.features` for why).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import torch

from ..config import Preset
from ..errors import PianoGANError
from ..spectrogram import Stats, normalize

MANIFEST_COLUMNS = ["shard", "row", "split", "composer", "title", "source", "offset_seconds",
                    "duration_seconds"]


def read_manifest(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_manifest(path: Path, rows: list[dict]) -> None:
    from ..atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def save_array(path: Path, array: np.ndarray) -> None:
    """np.save atomically (pianogan.atomic), so a crash never leaves half a shard."""
    from ..atomic import atomic_path

    with atomic_path(path) as tmp:
        np.save(tmp, array)


def write_dataset(out: str | Path, images: np.ndarray, preset: Preset, stats: Stats,
                  rows: list[dict] | None = None, shard_size: int = 1024) -> Path:
    """Write images (n, H, W) in [-1, 1] as a dataset directory; ``rows`` give per-clip metadata."""
    out = Path(out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    images = np.asarray(images)
    if images.ndim != 3 or tuple(images.shape[1:]) != preset.image_shape:
        raise PianoGANError(f"images must be (n, {preset.image_height}, {preset.image_width}), "
                            f"got {images.shape}")
    rows = rows if rows is not None else [{} for _ in range(len(images))]
    manifest = []
    for start in range(0, len(images), shard_size):
        name = f"shard-{start // shard_size:05d}"
        save_array(out / "shards" / f"{name}.npy", images[start:start + shard_size].astype(np.float16))
        for i in range(start, min(start + shard_size, len(images))):
            row = {"split": "train", "composer": "", "title": "", "source": "", "offset_seconds": 0.0,
                   "duration_seconds": preset.clip_seconds, **rows[i]}
            manifest.append({**row, "shard": name, "row": i - start})
    from ..atomic import write_text

    write_text(out / "preset.json", json.dumps(preset.to_dict(), indent=2))
    stats.save(out / "stats.json")
    write_text(out / "dataset.json", json.dumps({"format_version": 1, "normalized": True}, indent=2))
    write_manifest(out / "manifest.csv", manifest)
    return out


def _pread(fd: int, size: int, offset: int) -> bytes:
    """os.pread, or seek + read where it does not exist (Windows)."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size)


class _Shard:
    """Rows of one .npy shard, read with positioned reads: no open file or mmap is kept, so a
    data set may have thousands of shards, and DataLoader worker processes share nothing."""

    def __init__(self, path: Path):
        self.path = path
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
        if fortran or len(shape) != 3:
            raise PianoGANError(f"{path}: not a (n, H, W) C-ordered image shard")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_bytes = int(np.prod(shape[1:])) * self.dtype.itemsize

    def rows(self, index: np.ndarray) -> np.ndarray:
        """(len(index), H, W) array of the given rows, read in runs of consecutive rows."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), *self.shape[1:]), self.dtype)
        if len(index) == 0:
            return out
        if index.min() < 0 or index.max() >= self.shape[0]:
            raise PianoGANError(f"{self.path}: row out of range")
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            order = np.argsort(index, kind="stable")
            i = 0
            while i < len(order):
                j = i + 1
                while j < len(order) and index[order[j]] == index[order[j - 1]] + 1:
                    j += 1
                start = int(index[order[i]])
                buf = _pread(fd, (j - i) * self.row_bytes, self.offset + start * self.row_bytes)
                out[order[i:j]] = np.frombuffer(buf, self.dtype).reshape(j - i, *self.shape[1:])
                i = j
        finally:
            os.close(fd)
        return out


class PianoDataset(torch.utils.data.Dataset):
    """Clips of a prepared dataset as float32 tensors (1, H, W) in [-1, 1].

    ``split`` ("train", "validation", "test" or a list of them) and ``composer`` (case-insensitive
    substring) filter the clips; by default all are used. Each item is one positioned read of H*W
    float16 values (from the page cache once read), plus the normalisation for format-2 data.
    """

    def __init__(self, root: str | Path, split: str | list[str] | None = None,
                 composer: str | None = None):
        self.root = Path(root)
        for name in ("preset.json", "stats.json", "manifest.csv"):
            if not (self.root / name).is_file():
                raise PianoGANError(f"{self.root}: not a prepared dataset (missing {name}); "
                                    f"run `pianogan prepare` first")
        self.preset = Preset.from_dict(json.loads((self.root / "preset.json").read_text()))
        self.stats = Stats.load(self.root / "stats.json")
        info_path = self.root / "dataset.json"
        self.info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        self.normalized = bool(self.info.get("normalized", True))  # False: normalise on read
        rows = read_manifest(self.root / "manifest.csv")
        if split is not None:
            splits = {split} if isinstance(split, str) else set(split)
            rows = [r for r in rows if r["split"] in splits]
        if composer is not None:
            rows = [r for r in rows if composer.lower() in r["composer"].lower()]
        self.rows = rows
        self._shards: dict[str, _Shard] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def _shard(self, name: str) -> _Shard:
        shard = self._shards.get(name)
        if shard is None:
            path = self.root / "shards" / f"{name}.npy"
            if not path.is_file():
                raise PianoGANError(f"{self.root}: shard {name}.npy is missing; prepare the data again")
            shard = self._shards[name] = _Shard(path)
        return shard

    def _finish(self, raw: np.ndarray) -> np.ndarray:
        """Stored float16 values -> float32 images in [-1, 1]."""
        x = raw.astype(np.float32)
        if self.normalized:
            return x
        return normalize(torch.from_numpy(x), self.stats, self.preset.clip_sigma).numpy()

    def image(self, index: int) -> np.ndarray:
        """Image (H, W) float32 of clip ``index``."""
        r = self.rows[index]
        return self._finish(self._shard(r["shard"]).rows([int(r["row"])]))[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.image(index)).unsqueeze(0)

    def images(self, indices=None) -> np.ndarray:
        """(n, H, W) float32 array of the given clips (all by default); reads each shard once."""
        indices = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), *self.preset.image_shape), np.float32)
        groups: dict[str, list[int]] = {}
        for k, i in enumerate(indices):
            groups.setdefault(self.rows[int(i)]["shard"], []).append(k)
        for name, ks in groups.items():
            rows = [int(self.rows[int(indices[k])]["row"]) for k in ks]
            out[ks] = self._finish(self._shard(name).rows(rows))
        return out
