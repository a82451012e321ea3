"""Audio file I/O: read any file soundfile/librosa can decode as mono float32 at a given rate."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import PianoGANError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".m4a", ".opus")
NON_FINITE = "non-finite samples (inf or NaN): not valid audio"


class CapturedText:
    """What :func:`captured_stderr` caught: ``text`` (set when the block ends)."""

    text = ""

    def summary(self, max_chars: int = 300) -> str:
        """The first line, and how many more there were: one line for a report."""
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        if not lines:
            return ""
        more = f" (+{len(lines) - 1} more lines)" if len(lines) > 1 else ""
        return lines[0][:max_chars] + more


@contextmanager
def captured_stderr() -> Iterator[CapturedText]:
    """Catch what C libraries (libmpg123 inside libsndfile) print on file descriptor 2 during the
    block, so that it does not break a progress bar; the text is kept for the report.

    File descriptors are process-wide: use it where no other thread writes to stderr meanwhile
    (``prepare``'s per-file work, in worker processes or between progress-bar updates).
    """
    import tempfile

    caught = CapturedText()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield caught
        finally:
            try:
                sys.stderr.flush()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            tmp.seek(0)
            caught.text = tmp.read().decode("utf-8", errors="replace")


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(samples,) or (samples, channels) -> (samples,) float32, channels averaged."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    elif audio.ndim != 1:
        raise PianoGANError(f"audio must be 1-D or (samples, channels), got shape {audio.shape}")
    return audio


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """(samples,) at orig_sr Hz -> (samples',) at target_sr Hz (soxr, high quality)."""
    if orig_sr == target_sr:
        return np.ascontiguousarray(audio, dtype=np.float32)
    import soxr

    return soxr.resample(audio, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def load_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32 in [-1, 1].

    Returns ``(audio (samples,), sample_rate Hz)``; resampled to ``sample_rate`` when given.
    Raises :class:`PianoGANError` with a one-line reason for missing, empty or undecodable files.
    """
    path = Path(path)
    if not path.exists():
        raise PianoGANError(f"{path}: file not found")
    if path.is_dir():
        raise PianoGANError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise PianoGANError(f"{path}: empty file")
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as sf_err:  # libsndfile cannot decode it: try librosa's audioread path
        try:
            import warnings

            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data, sr = librosa.load(str(path), sr=None, mono=True)
        except Exception:
            raise PianoGANError(f"{path}: not a readable audio file ({sf_err})") from None
    data = to_mono(data)
    if data.size == 0:
        raise PianoGANError(f"{path}: contains no audio samples")
    if not np.all(np.isfinite(data)):
        raise PianoGANError(f"{path}: {NON_FINITE}")
    if sample_rate is not None:
        data = resample(data, int(sr), int(sample_rate))
        sr = sample_rate
    return data, int(sr)


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write (samples,) float audio as 16-bit PCM WAV, atomically (temp file + rename)."""
    import soundfile as sf

    from .atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32)), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), audio, int(sample_rate), subtype="PCM_16", format="WAV")
