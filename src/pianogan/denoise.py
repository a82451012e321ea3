"""Optional noise reduction after phase retrieval (off by default everywhere).

Griffin-Lim leaves a faint "phasey" noise floor, and GAN output adds its own hiss; the paper
ran ``noisereduce`` on StyleGAN output. This is a thin wrapper around
``noisereduce.reduce_noise`` (non-stationary spectral gating) so that every caller uses the same
settings. It can also take away real sound (note tails, quiet passages): measure before use -
``pianogan reconstruct --denoise`` prints SC and LSD with it.
"""

from __future__ import annotations

import numpy as np

from .errors import PianoGANError


def denoise(audio: np.ndarray, sample_rate: int, strength: float = 1.0) -> np.ndarray:
    """Spectral-gating noise reduction of (samples,) or (batch, samples) float audio.

    ``strength`` in [0, 1] is noisereduce's ``prop_decrease`` (1 = remove the gated noise fully).
    Returns float32 audio of the same shape; silence stays silence.
    """
    import noisereduce

    if not 0.0 <= strength <= 1.0:
        raise PianoGANError(f"denoise strength must be in [0, 1], got {strength}")
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim not in (1, 2):
        raise PianoGANError(f"denoise: expected (samples,) or (batch, samples), got {x.shape}")
    if x.shape[-1] == 0 or not np.any(x):
        return x.copy()
    n_fft = 1 << max(8, int(np.log2(sample_rate * 0.05)))  # ~50 ms windows at any rate
    rows = x[None] if x.ndim == 1 else x
    out = np.stack([
        noisereduce.reduce_noise(y=row, sr=int(sample_rate), stationary=False, prop_decrease=strength,
                                 n_fft=n_fft, n_jobs=1, use_tqdm=False).astype(np.float32)
        if np.any(row) else row.copy()
        for row in rows])
    out = np.nan_to_num(out)
    return out[0] if x.ndim == 1 else out
