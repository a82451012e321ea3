"""Sample audio during training: WAVs of the EMA generator's images for a fixed set of
latents, made with Griffin-Lim, so successive rounds play the same "voices" improving. (The
sample grid PNG is ``pianogan.generate_files.save_grid_png`` with time and frequency axes.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import Preset
from ..spectrogram import Stats


def save_audio(images: np.ndarray, preset: Preset, stats: Stats, folder: str | Path, prefix: str,
               n_iter: int | None = None) -> list[Path]:
    """Griffin-Lim each (H, W) image to a WAV ``folder/prefix-<i>.wav``; returns the paths.

    Griffin-Lim is :data:`pianogan.phase.DEFAULT_GL`, with ``n_iter`` iterations when given."""
    from ..audio import write_audio
    from ..spectrogram import image_to_audio

    if len(images) == 0:
        return []
    audio = image_to_audio(torch.as_tensor(images, dtype=torch.float32), preset, stats,
                           n_iter=n_iter).cpu().numpy()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, clip in enumerate(audio):
        path = folder / f"{prefix}-{i}.wav"
        write_audio(path, clip, preset.sample_rate)
        paths.append(path)
    return paths
