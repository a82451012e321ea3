"""What the trainer tests share: a small synthetic training set of spectrogram-like images
with horizontal harmonic stripes (partials k*f0 of a random fundamental f0, fading with k and, a
little, with time) on a dark noisy background; the image statistics and Fréchet distance the
learning tests judge a generator by; a free port for two-process runs."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import torch

from pianogan.config import Preset, get_preset
from pianogan.data.dataset import write_dataset
from pianogan.evaluate.frechet import frechet_distance
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


def image_features(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """(n, H, W) -> (n, H + W/4): the frequency profile (row means: where the partials are) and
    the time profile (column means: how they decay)."""
    x = torch.as_tensor(images, dtype=torch.float64)
    return torch.cat([x.mean(2), x.mean(1)[:, ::4]], 1).numpy()


def generated_features(G, n: int = 512) -> np.ndarray:
    """:func:`image_features` of ``n`` images of G from fixed latents."""
    z = G.sample_z(n, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return image_features(G(z).squeeze(1).float())


def distance_to_real(G, n: int = 512, preset: Preset = None) -> float:
    """Fréchet distance between G's images and ``n`` unseen real (synthetic) ones, in
    :func:`image_features` space."""
    preset = preset or SMALL
    real = image_features(harmonic_images(n, preset.image_shape, seed=99))
    return frechet_distance(real, generated_features(G, n))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_synthetic_dataset(root: str | Path, n: int = 256, seed: int = 0, preset: Preset | str = SMALL) -> Path:
    preset = get_preset(preset)
    images = harmonic_images(n, preset.image_shape, seed)
    return write_dataset(root, images, preset, Stats(mean=-4.0, std=2.0, count=1))
