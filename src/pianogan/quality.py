"""Objective round-trip quality: spectral convergence and log-spectral distance (dB).

Both compare a reference and an estimate on |STFT| of one fixed STFT (a preset's n_fft and hop,
Hann window, centred frames: :func:`pianogan.spectrogram.stft_magnitude`), so figures of
different presets are comparable when they are measured on the same reference preset.

* Spectral convergence (SC) = 20 log10(||S_ref - S_est||_F / ||S_ref||_F), per clip. Lower is
  better; 0 dB means the error is as large as the signal. It is energy weighted: loud partials
  dominate it.
* Log-spectral distance (LSD) = mean over frames of the RMS over frequency of
  20 log10(S_ref) - 20 log10(S_est), per clip, with both magnitudes floored at
  ``top_db`` (80 dB) below the reference clip's peak, so silence and near-silence do not
  dominate it. Lower is better; it weights quiet and loud bins alike.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import Preset
from .errors import PianoGANError

TOP_DB = 80.0  # LSD floor: magnitudes below (reference peak - 80 dB) count as the floor


def _mags(x) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3:
        raise PianoGANError(f"expected magnitudes (batch, freq, frames) or (freq, frames), got {tuple(t.shape)}")
    return t.double()


def _result(values: torch.Tensor, batched: bool) -> float | np.ndarray:
    out = values.numpy()
    return out if batched else float(out[0])


def sc_from_magnitudes(reference, estimate) -> float | np.ndarray:
    """Spectral convergence (dB) of |STFT| estimate vs reference, each (batch, freq, frames) or
    (freq, frames); a float for 2-D input, else one value per clip. A silent reference gives
    -inf for a silent estimate and +inf otherwise."""
    ref, est = _mags(reference), _mags(estimate)
    if ref.shape != est.shape:
        raise PianoGANError(f"magnitude shapes differ: {tuple(ref.shape)} vs {tuple(est.shape)}")
    err = torch.linalg.vector_norm((ref - est).flatten(1), dim=1)
    den = torch.linalg.vector_norm(ref.flatten(1), dim=1)
    sc = 20 * torch.log10(err / den)
    sc = torch.where(den > 0, sc, torch.where(err > 0, torch.inf, -torch.inf))
    return _result(sc, torch.as_tensor(reference).ndim == 3)


def lsd_from_magnitudes(reference, estimate, top_db: float = TOP_DB) -> float | np.ndarray:
    """Log-spectral distance (dB) of |STFT| estimate vs reference, shapes as
    :func:`sc_from_magnitudes`. Both are floored at ``top_db`` dB below each reference clip's peak
    (an all-zero reference uses an absolute floor of 1e-10)."""
    ref, est = _mags(reference), _mags(estimate)
    if ref.shape != est.shape:
        raise PianoGANError(f"magnitude shapes differ: {tuple(ref.shape)} vs {tuple(est.shape)}")
    peak = ref.flatten(1).amax(dim=1).clamp_min(1e-10 * 10 ** (top_db / 20))
    floor = (peak * 10 ** (-top_db / 20))[:, None, None]
    diff = 20 * (torch.log10(torch.maximum(ref, floor)) - torch.log10(torch.maximum(est, floor)))
    lsd = diff.pow(2).mean(dim=1).sqrt().mean(dim=1)  # RMS over frequency, mean over frames
    return _result(lsd, torch.as_tensor(reference).ndim == 3)


def _audio_mags(reference, estimate, preset: Preset) -> tuple[torch.Tensor, torch.Tensor, bool]:
    from .spectrogram import stft_magnitude

    ref, est = (x.detach().float().cpu() if isinstance(x, torch.Tensor)
                else torch.from_numpy(np.asarray(x, dtype=np.float32)) for x in (reference, estimate))
    if ref.shape != est.shape:
        raise PianoGANError(f"audio shapes differ: {tuple(ref.shape)} vs {tuple(est.shape)}")
    if ref.ndim not in (1, 2) or ref.shape[-1] == 0:
        raise PianoGANError(f"expected audio (samples,) or (batch, samples), got {tuple(ref.shape)}")
    batched = ref.ndim == 2
    if not batched:
        ref, est = ref[None], est[None]
    return (stft_magnitude(ref, preset.n_fft, preset.hop_length),
            stft_magnitude(est, preset.n_fft, preset.hop_length), batched)


def spectral_convergence(reference, estimate, preset: Preset) -> float | np.ndarray:
    """SC (dB) of estimate vs reference audio, (samples,) or (batch, samples) at
    ``preset.sample_rate``, measured on the preset's STFT (see module docstring)."""
    ref, est, batched = _audio_mags(reference, estimate, preset)
    sc = sc_from_magnitudes(ref, est)
    return sc if batched else float(sc[0])


def log_spectral_distance(reference, estimate, preset: Preset, top_db: float = TOP_DB) -> float | np.ndarray:
    """LSD (dB) of estimate vs reference audio, shapes as :func:`spectral_convergence`."""
    ref, est, batched = _audio_mags(reference, estimate, preset)
    lsd = lsd_from_magnitudes(ref, est, top_db)
    return lsd if batched else float(lsd[0])
