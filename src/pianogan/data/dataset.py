"""The prepared training set on disk, and :class:`PianoDataset` that reads it.

Layout of a dataset directory (written by ``pianogan prepare`` or :func:`write_dataset`)::

    DIR/preset.json        the spectrogram preset (config.Preset fields)
    DIR/stats.json         normalisation statistics (spectrogram.Stats) of the training split
    DIR/manifest.csv       one row per clip: MANIFEST_COLUMNS
    DIR/shards/NAME.npy    float16 images (n, H, W) in [-1, 1], memory-mapped on read
    DIR/skipped.tsv        inputs that were skipped, with the reason (prepare only)

A clip's image is ``shards/<shard>.npy[row]``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from ..config import Preset
from ..errors import PianoGANError
from ..spectrogram import Stats

MANIFEST_COLUMNS = ["shard", "row", "split", "composer", "title", "source", "offset_seconds",
                    "duration_seconds"]


def read_manifest(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_manifest(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def save_array(path: Path, array: np.ndarray) -> None:
    """np.save atomically (temp file + rename), so a crash never leaves half a shard."""
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)


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
    (out / "preset.json").write_text(json.dumps(preset.to_dict(), indent=2))
    stats.save(out / "stats.json")
    write_manifest(out / "manifest.csv", manifest)
    return out


class PianoDataset(torch.utils.data.Dataset):
    """Clips of a prepared dataset as float32 tensors (1, H, W) in [-1, 1].

    ``split`` ("train", "validation", "test" or a list of them) and ``composer`` (case-insensitive
    substring) filter the clips; by default all are used. Shards are memory-mapped, so the cost
    per item is one page-cache copy of H*W float16 values.
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
        rows = read_manifest(self.root / "manifest.csv")
        if split is not None:
            splits = {split} if isinstance(split, str) else set(split)
            rows = [r for r in rows if r["split"] in splits]
        if composer is not None:
            rows = [r for r in rows if composer.lower() in r["composer"].lower()]
        self.rows = rows
        self._shards: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def _shard(self, name: str) -> np.ndarray:
        arr = self._shards.get(name)
        if arr is None:
            arr = np.load(self.root / "shards" / f"{name}.npy", mmap_mode="r")
            self._shards[name] = arr
        return arr

    def image(self, index: int) -> np.ndarray:
        """Image (H, W) float32 of clip ``index``."""
        r = self.rows[index]
        return np.asarray(self._shard(r["shard"])[int(r["row"])], dtype=np.float32)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.image(index)).unsqueeze(0)

    def images(self, indices=None) -> np.ndarray:
        """(n, H, W) float32 array of the given clips (all by default)."""
        indices = range(len(self)) if indices is None else indices
        return np.stack([self.image(i) for i in indices]) if len(indices) else np.zeros(
            (0, *self.preset.image_shape), np.float32)
