"""A small synthetic training set for the trainer tests: spectrogram-like images with
horizontal harmonic stripes (partials k*f0 of a random fundamental f0, fading with k and, a
little, with time) on a dark noisy background."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pianogan.config import Preset, get_preset
from pianogan.data.dataset import write_dataset
from pianogan.spectrogram import Stats

# 2 s at 8 kHz like the "tiny" preset, but 32x64 images: four times cheaper to train on.
SMALL = Preset("test-32x64", 8_000, 256, 128, 2.0, 32, 64, description="tests: 32x64 images")


def harmonic_images(n: int, shape=(64, 128), seed: int = 0) -> np.ndarray:
    """(n, H, W) float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    h, w = shape
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    out = np.empty((n, h, w), dtype=np.float32)
    for i in range(n):
        f0 = rng.uniform(h / 16, h / 5)
        decay = np.exp(-cols / (w * rng.uniform(0.8, 2.0)))
        img = np.zeros((h, w))
        for k in range(1, 12):
            if k * f0 > h - 2:
                break
            img += (1.0 / k) * np.exp(-0.5 * ((rows - k * f0) / (h / 64 + 0.5)) ** 2) * decay
        out[i] = -0.8 + 1.6 * np.clip(img, 0, 1.1)
    out += rng.normal(0, 0.02, out.shape).astype(np.float32)
    return np.clip(out, -1, 1)


def write_synthetic_dataset(root: str | Path, n: int = 256, seed: int = 0, preset: Preset | str = SMALL) -> Path:
    preset = get_preset(preset)
    images = harmonic_images(n, preset.image_shape, seed)
    return write_dataset(root, images, preset, Stats(mean=-4.0, std=2.0, count=1))
