"""Musical consistency of clips, measured on their STFT magnitude (no phase, no audio needed).

All functions take ``mag``: linear |STFT| (batch, freq, frames) on the preset's STFT grid (as
returned by :func:`pianogan.spectrogram.image_to_magnitude`) and return one number per clip.

- **Key clarity**: the chroma of the clip, averaged over time, correlated (Pearson) with the 24
  Krumhansl-Kessler key profiles (12 major, 12 minor); the clarity is the best correlation, the
  key is the best profile (the Krumhansl-Schmuckler key finder). In [-1, 1]; music in one key
  scores high (~0.6-0.9), white noise only reaches the level a random 12-vector gets (~0.45-0.5).
- **Key agreement / consistency** between the first and second half of a clip (the paper's
  "harmonic and consistent" claim made measurable): ``key_agreement`` is 1 where both halves
  get the same key, ``key_consistency`` the correlation of the halves' 24 key strengths (robust
  where the argmax flips between relative keys; ~0 for noise or for a key change by a tritone).
- **Onset density**: note onsets per second (librosa's onset detector on a log-mel flux).
- **Harmonic share**: fraction of the energy in the harmonic part of a median-filter HPSS.

The chroma is computed only from bins the image resolves: a semitone must span at least one
frequency bin of the *image* (tiny's 64 rows over 0-4 kHz resolve semitones only above ~1 kHz),
between C3 (130.8 Hz) and C8 (4186 Hz). Each chroma filter is normalised to unit sum, so a flat
(white) spectrum gives a flat chroma and noise has no preferred key.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..config import Preset
from ..keys import FLAT_CV, KEY_NAMES, KK_MAJOR, KK_MINOR, PITCH_CLASSES, key_profiles, key_strengths  # noqa: F401
from ..keys import row_corr as _row_corr

CHROMA_FMIN = 130.81  # Hz, C3
CHROMA_FMAX = 4186.0  # Hz, C8
MUSIC_METRICS = ["key_clarity", "key_agreement", "key_consistency", "onset_density", "harmonic_share"]
SEMITONE = 2 ** (1 / 12) - 1  # relative width of a semitone


def effective_bin_hz(preset: Preset) -> float:
    """Frequency resolution (Hz) of a linear-frequency image: the STFT bin, or the row if coarser.

    (For ``freq_scale="log"`` the row spacing grows with frequency; see :func:`chroma_band`.)
    """
    stft_bin = preset.sample_rate / preset.n_fft
    if preset.freq_scale == "linear" and preset.image_height < preset.n_freq:
        return max(stft_bin, (preset.sample_rate / 2) / max(1, preset.image_height - 1))
    return stft_bin


def chroma_band(preset: Preset) -> tuple[float, float]:
    """(fmin, fmax) Hz of the bins used for the chroma: semitones resolved, C3..C8, below Nyquist.

    Linear axis: a semitone must span at least one bin of the image. Log axis: rows are spaced
    by a constant ratio, so they resolve semitones everywhere or nowhere; the band then starts
    where the STFT resolves semitones and not below the axis' fmin (lower bins share row 0).
    """
    nyquist = preset.sample_rate / 2
    fmax = min(CHROMA_FMAX, 0.95 * nyquist)
    resolved = effective_bin_hz(preset) / SEMITONE
    if preset.freq_scale == "log":
        resolved = max(resolved, preset.fmin)
    fmin = max(CHROMA_FMIN, resolved)
    if fmin >= fmax / 2:  # fewer than an octave resolved: use the top octave anyway
        fmin = fmax / 2
    return fmin, fmax


@lru_cache(maxsize=8)
def chroma_filterbank(preset: Preset) -> np.ndarray:
    """(12, n_freq) filters from |STFT| bins to pitch classes C..B, each summing to 1."""
    import librosa

    fb = librosa.filters.chroma(sr=preset.sample_rate, n_fft=preset.n_fft, n_chroma=12,
                                octwidth=None, norm=None)
    freqs = librosa.fft_frequencies(sr=preset.sample_rate, n_fft=preset.n_fft)
    fmin, fmax = chroma_band(preset)
    fb = fb * ((freqs >= fmin) & (freqs <= fmax))[None, :]
    fb = fb / np.maximum(fb.sum(axis=1, keepdims=True), 1e-12)
    return fb.astype(np.float32)


def chroma(mag: np.ndarray, preset: Preset) -> np.ndarray:
    """|STFT| (batch, freq, frames) -> chroma (batch, 12, frames), linear magnitude units."""
    return np.einsum("cf,nft->nct", chroma_filterbank(preset), np.asarray(mag, np.float32))


def key_metrics(mag: np.ndarray, preset: Preset) -> dict[str, np.ndarray]:
    """Per clip: key (index into KEY_NAMES), key_clarity, key_agreement, key_consistency."""
    ch = chroma(mag, preset)
    t = ch.shape[-1]
    whole = key_strengths(ch.mean(-1))
    first = key_strengths(ch[..., : t // 2].mean(-1))
    second = key_strengths(ch[..., t // 2:].mean(-1))
    return {
        "key": whole.argmax(-1),
        "key_clarity": whole.max(-1),
        "key_agreement": ((first.argmax(-1) == second.argmax(-1)) & first.any(-1) & second.any(-1)
                          ).astype(np.float64),
        "key_consistency": _row_corr(first, second),
        "chroma_mean": ch.mean(-1) / np.maximum(ch.mean(-1).sum(-1, keepdims=True), 1e-12),
    }


HPSS_BIN_HZ = 20.0  # HPSS runs on bins of about this width (Hz): finer bins are pooled
HPSS_HARMONIC_S = 0.2  # seconds, median filter along time (harmonic part)
HPSS_PERCUSSIVE_HZ = 400.0  # Hz, median filter along frequency (percussive part)


def hpss_grid(preset: Preset) -> tuple[int, int, int]:
    """(frequency pooling factor, harmonic kernel frames, percussive kernel bins) for the HPSS.

    Kernels are fixed in seconds and Hz (so the measure means the same for every preset), odd
    and >= 3. Bins finer than ~20 Hz are pooled (energy summed) first: the median filters are
    the cost of the whole evaluation, and 20 Hz still separates piano partials from clicks.
    """
    bin_hz = preset.sample_rate / preset.n_fft
    pool = max(1, int(round(HPSS_BIN_HZ / bin_hz)))
    odd = lambda v: max(3, int(v) // 2 * 2 + 1)  # noqa: E731
    frames = odd(HPSS_HARMONIC_S * preset.sample_rate / preset.hop_length)
    bins = odd(HPSS_PERCUSSIVE_HZ / (bin_hz * pool))
    return pool, frames, bins


def harmonic_share(mag: np.ndarray, preset: Preset) -> np.ndarray:
    """(batch,) energy of the HPSS harmonic part / energy of harmonic + percussive parts."""
    import librosa

    pool, frames, bins = hpss_grid(preset)
    power = np.asarray(mag, np.float32) ** 2
    if pool > 1:
        n, f, t = power.shape
        f_cut = f // pool * pool
        power = power[:, :f_cut].reshape(n, f_cut // pool, pool, t).sum(2)
    h, p = librosa.decompose.hpss(np.sqrt(power), kernel_size=(frames, bins))
    eh = (h.astype(np.float64) ** 2).sum(axis=(-2, -1))
    ep = (p.astype(np.float64) ** 2).sum(axis=(-2, -1))
    return np.where(eh + ep > 0, eh / np.maximum(eh + ep, 1e-30), 0.0)


ONSET_MIN_DB = 0.1  # an onset envelope (mean positive log-mel flux, dB) flatter than this has no onsets


def onset_density(onset_env: np.ndarray, preset: Preset) -> np.ndarray:
    """(batch, frames) onset strength -> (batch,) detected onsets per second."""
    import librosa

    seconds = onset_env.shape[-1] * preset.hop_length / preset.sample_rate
    out = np.zeros(len(onset_env))
    for i, env in enumerate(onset_env):
        if np.ptp(env) < ONSET_MIN_DB:  # (near) constant: no onsets (the detector would normalise
            continue                     # rounding noise up to peaks)
        out[i] = len(librosa.onset.onset_detect(onset_envelope=env, sr=preset.sample_rate,
                                                hop_length=preset.hop_length)) / seconds
    return out
