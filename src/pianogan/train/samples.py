"""Sample output during training: a grid of spectrogram images with time and frequency axes
(PNG), and WAVs of the first few made with Griffin-Lim. Both come from the EMA generator and
a fixed set of latents, so successive grids show the same "voices" improving."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..config import Preset
from ..spectrogram import Stats


def row_to_hz(rows: np.ndarray, preset: Preset) -> np.ndarray:
    """Frequency (Hz) at image row positions (row 0 = lowest frequency)."""
    nyquist = preset.sample_rate / 2
    frac = np.asarray(rows, dtype=float) / max(preset.image_height - 1, 1)
    if preset.freq_scale == "log":
        return preset.fmin * (nyquist / preset.fmin) ** frac
    return frac * nyquist


def save_grid(images: np.ndarray, preset: Preset, path: str | Path, title: str = "") -> Path:
    """Write (n, H, W) images in [-1, 1] as a PNG grid; x axis time (s), y axis frequency (Hz)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(images)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    aspect = preset.image_width / preset.image_height
    fig = Figure(figsize=(cols * 2.2 * min(max(aspect, 1.0), 2.0) + 0.6, rows * 2.2 + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    h = preset.image_height
    ticks = np.linspace(0, h - 1, 5)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(images[i], origin="lower", aspect="auto", cmap="magma", vmin=-1, vmax=1,
                  extent=(0, preset.clip_seconds, -0.5, h - 0.5), interpolation="nearest")
        ax.set_yticks(ticks)
        ax.set_yticklabels([f"{f / 1000:.1f}k" if f >= 1000 else f"{f:.0f}"
                            for f in row_to_hz(ticks, preset)], fontsize=6)
        ax.tick_params(axis="x", labelsize=6)
        if i % cols == 0:
            ax.set_ylabel("frequency (Hz)", fontsize=7)
        if i // cols == rows - 1:
            ax.set_xlabel("time (s)", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def save_audio(images: np.ndarray, preset: Preset, stats: Stats, folder: str | Path, prefix: str,
               n_iter: int = 32, seed: int = 0) -> list[Path]:
    """Griffin-Lim each (H, W) image to a WAV ``folder/prefix-<i>.wav``; returns the paths."""
    from ..audio import write_audio
    from ..spectrogram import image_to_audio

    if len(images) == 0:
        return []
    audio = image_to_audio(torch.as_tensor(images, dtype=torch.float32), preset, stats,
                           n_iter=n_iter, seed=seed).cpu().numpy()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, clip in enumerate(audio):
        path = folder / f"{prefix}-{i}.wav"
        write_audio(path, clip, preset.sample_rate)
        paths.append(path)
    return paths
