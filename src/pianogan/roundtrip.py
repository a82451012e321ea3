"""Audio -> image -> audio round trip of a whole file, with the losses of each step measured apart.

Used by ``pianogan reconstruct`` and the benchmarks. A file is cut into consecutive clips of the
preset's length (the last one zero-padded), all clips go through the transform as one batch, and
the outputs are joined and cut back to the input's length. Clips are phase-retrieved
independently, so a long file may have small discontinuities at clip joins (every
``preset.clip_seconds``).

Three variants are measured against the input, so each loss shows on its own:

* ``image``      - the full round trip: STFT -> log -> normalise/clip -> resize to the image ->
  back -> Griffin-Lim. What a generated image goes through.
* ``no_resize``  - the same without the resize (normalise/clip on the STFT grid only): the gap to
  ``image`` is the resize loss. Equal to ``image`` for presets that need no resize.
* ``phase_only`` - the true magnitude -> Griffin-Lim: the phase-retrieval loss alone.

Each gives spectral convergence and log-spectral distance of the output audio (dB, on the preset's
own STFT, see :mod:`pianogan.quality`) and ``magnitude_sc_db``: SC of the magnitude handed to
Griffin-Lim, before any phase loss (-inf when exact, as for ``phase_only``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .config import Preset
from .errors import PianoGANError
from .phase import GLSettings
from .quality import lsd_from_magnitudes, sc_from_magnitudes
from .spectrogram import (Stats, audio_to_logmag, image_to_magnitude, normalize, normalized_to_magnitude, stats_of,
                          stft_magnitude, to_image)

VARIANTS = ("image", "no_resize", "phase_only")


@dataclass
class RoundTrip:
    """Result of :func:`round_trip`: output audio (samples,) at the preset rate, images
    (clips, H, W) in [-1, 1], and per-variant metrics."""

    audio: np.ndarray
    images: np.ndarray
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    clipped_fraction: float = 0.0  # share of STFT values beyond +-clip_sigma (lost to clipping)


def split_clips(audio: np.ndarray, preset: Preset, first_clip: bool = False) -> np.ndarray:
    """(samples,) -> (clips, preset.n_samples): the whole file (the last clip zero-padded, so no
    sample is lost), or only its first clip. The cutting is :func:`pianogan.data.stream.split_clips`,
    the same as ``prepare`` and ``evaluate``; the padding is the round trip's own choice."""
    from .data.stream import pad_to_clips
    from .data.stream import split_clips as cut

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise PianoGANError("expected non-empty mono audio")
    n = preset.n_samples
    return cut(pad_to_clips(audio[:n] if first_clip else audio, n), n)


def file_stats(audio: np.ndarray, preset: Preset) -> Stats:
    """Normalisation statistics of one file as if it were a one-file dataset (all its clips)."""
    return stats_of(audio_to_logmag(torch.from_numpy(split_clips(audio, preset)), preset))


def _retrieve(mag: torch.Tensor, preset: Preset, gl: GLSettings, denoise: bool, device: str) -> np.ndarray:
    from .phase import griffin_lim

    out = griffin_lim(mag.to(device), n_fft=preset.n_fft, hop_length=preset.hop_length,
                      length=preset.n_samples, **gl.kwargs())
    audio = out.cpu().numpy().reshape(-1)
    if denoise:
        from .denoise import denoise

        audio = denoise(audio, preset.sample_rate)
    return audio


def _measure(reference: np.ndarray, estimate: np.ndarray, preset: Preset) -> dict[str, float]:
    """SC and LSD (dB) of estimate vs reference audio (same length), on the preset's STFT."""
    n = max(reference.size, preset.n_fft)
    ref = torch.from_numpy(np.pad(reference, (0, n - reference.size)))
    est = torch.from_numpy(np.pad(estimate, (0, n - estimate.size)))
    r, e = (stft_magnitude(x, preset.n_fft, preset.hop_length) for x in (ref, est))
    return {"sc_db": float(sc_from_magnitudes(r, e)), "lsd_db": float(lsd_from_magnitudes(r, e))}


def round_trip(audio: np.ndarray, preset: Preset, stats: Stats | None = None, gl: GLSettings | None = None,
               first_clip: bool = False, variants: tuple[str, ...] = VARIANTS, denoise: bool = False,
               device: str = "cpu") -> RoundTrip:
    """Round-trip (samples,) audio at ``preset.sample_rate`` through the preset's image.

    ``stats``: normalisation statistics (default: :func:`file_stats` of this audio); ``gl``:
    Griffin-Lim (default :data:`pianogan.phase.DEFAULT_GL`), run on ``device``, followed by
    noise reduction when ``denoise``. Returns the
    ``image`` variant's audio, cut to the input's length (one clip's length with ``first_clip``).
    """
    gl = GLSettings.of(gl)
    unknown = set(variants) - set(VARIANTS)
    if unknown or "image" not in variants:
        raise PianoGANError(f"variants must include 'image' and be among {VARIANTS}")
    clips = split_clips(audio, preset, first_clip)
    stats = stats or file_stats(audio, preset)
    n_out = min(np.asarray(audio).size, clips.size)
    reference = clips.reshape(-1)[:n_out]
    with torch.no_grad():
        clip_t = torch.from_numpy(clips)
        logmag = audio_to_logmag(clip_t, preset)
        true_mag = stft_magnitude(clip_t, preset.n_fft, preset.hop_length)
        norm = normalize(logmag, stats, preset.clip_sigma)
        clipped = float((norm.abs() >= 1).double().mean())  # values at or beyond ±clip_sigma
        images = to_image(norm, preset)
        mags = {"image": image_to_magnitude(images, preset, stats)}
        if "no_resize" in variants:
            if preset.needs_resize:
                mags["no_resize"] = normalized_to_magnitude(norm, stats, preset.clip_sigma, preset.eps)
            else:
                mags["no_resize"] = mags["image"]
        if "phase_only" in variants:
            mags["phase_only"] = true_mag
        result = RoundTrip(audio=np.zeros(0, np.float32), images=images.numpy(), clipped_fraction=clipped)
        done: dict[int, dict] = {}
        for name in VARIANTS:
            if name not in mags:
                continue
            key = id(mags[name])
            if key not in done:
                out = _retrieve(mags[name], preset, gl, denoise, device)[:n_out]
                metrics = _measure(reference, out, preset)
                whole = lambda m: m.permute(1, 0, 2).reshape(m.shape[1], -1)  # noqa: E731  all clips
                metrics["magnitude_sc_db"] = float(sc_from_magnitudes(whole(true_mag), whole(mags[name])))
                done[key] = {"audio": out, "metrics": metrics}
            result.metrics[name] = dict(done[key]["metrics"])
            if name == "image":
                result.audio = done[key]["audio"].astype(np.float32)
    return result
