"""Audio files as a stream of fixed-length clips, in bounded memory.

A file is decoded in blocks (soundfile), mixed to mono and resampled with a streaming soxr
resampler, so memory does not grow with the file's length and the working set stays in cache
(whole-file reads of long 44.1 kHz stereo recordings were ~3x slower here, mostly page faults).
The stream resampler gives the same samples as a one-shot ``soxr.resample`` of the whole file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..audio import NON_FINITE
from ..errors import PianoGANError

BLOCK_SECONDS = 5.0  # decode block; small enough to stay in cache


class Resampler:
    """Streaming mono resampler (soxr, HQ) from ``in_rate`` to ``out_rate`` Hz."""

    def __init__(self, in_rate: int, out_rate: int):
        self.passthrough = int(in_rate) == int(out_rate)
        if not self.passthrough:
            import soxr

            self._rs = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if self.passthrough:
            return block.copy()
        return self._rs.resample_chunk(block, last=last)


def resample_blocks(blocks: Iterable[np.ndarray], in_rate: int, out_rate: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks at in_rate -> mono float32 blocks at out_rate (streaming)."""
    rs = Resampler(in_rate, out_rate)
    for block in blocks:
        y = rs(block)
        if len(y):
            yield y
    tail = rs(np.zeros(0, np.float32), last=True)
    if len(tail):
        yield tail


def _decoded_blocks(f, block: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks of an open soundfile.SoundFile at its own rate."""
    # 16-bit PCM is read as int16 into a reused buffer: ~6x faster than libsndfile's float path.
    as_int16 = f.subtype == "PCM_16"
    buf = np.empty((block, f.channels), np.int16 if as_int16 else np.float32)
    scale = np.float32(1 / 32768 / f.channels) if as_int16 else np.float32(1 / f.channels)
    while True:
        data = f.read(out=buf)
        if len(data) == 0:
            return
        mono = data[:, 0].astype(np.float32)
        for c in range(1, f.channels):
            mono += data[:, c]
        mono *= scale
        if not as_int16 and not np.all(np.isfinite(mono)):
            raise PianoGANError(NON_FINITE)
        yield mono


def audio_blocks(path: str | Path, sample_rate: int,
                 block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Mono float32 blocks of an audio file at ``sample_rate`` Hz (decoded and resampled in a stream).

    Files libsndfile cannot open (e.g. m4a) are read whole with :func:`pianogan.audio.load_audio`.
    Raises :class:`PianoGANError` with a one-line reason for missing, empty or undecodable files.
    """
    import soundfile as sf

    from ..audio import load_audio

    path = Path(path)
    if not path.is_file():
        raise PianoGANError("file not found")
    if path.stat().st_size == 0:
        raise PianoGANError("empty file (0 bytes)")
    try:
        f = sf.SoundFile(str(path))
    except Exception:
        try:
            data, _ = load_audio(path, sample_rate)
        except PianoGANError as e:
            raise PianoGANError(str(e).replace(f"{path}: ", "")) from None
        yield data
        return
    with f:
        if f.frames == 0:
            raise PianoGANError("contains no audio samples")
        try:
            yield from resample_blocks(_decoded_blocks(f, max(1, int(block_seconds * f.samplerate))),
                                       f.samplerate, sample_rate)
        except sf.LibsndfileError as e:
            raise PianoGANError(f"decoding failed ({e})") from None


def cut_clips(blocks: Iterable[np.ndarray], n_samples: int,
              hop: int) -> Iterator[tuple[int, np.ndarray]]:
    """Consecutive clips of exactly ``n_samples`` from a block stream, one every ``hop`` samples.

    Yields ``(start sample, clip (n_samples,) float32)``; the last partial clip is dropped.
    """
    if hop <= 0 or n_samples <= 0:
        raise PianoGANError("clip length and hop must be positive")
    pending = np.zeros(0, np.float32)
    pending_start = 0  # absolute sample index of pending[0]
    next_start = 0
    for block in blocks:
        pending = np.concatenate([pending, block]) if len(pending) else np.asarray(block, np.float32)
        while next_start + n_samples <= pending_start + len(pending):
            i = next_start - pending_start
            yield next_start, pending[i:i + n_samples].copy()
            next_start += hop
        drop = min(max(0, next_start - pending_start), len(pending))
        pending = pending[drop:]
        pending_start += drop


class Counted:
    """Wraps a block iterator and counts the samples that went through it."""

    def __init__(self, blocks: Iterable[np.ndarray]):
        self._blocks = blocks
        self.samples = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for b in self._blocks:
            self.samples += len(b)
            yield b


def split_clips(audio: np.ndarray, n_samples: int, hop: int | None = None) -> np.ndarray:
    """(samples,) -> (clips, n_samples) float32: :func:`cut_clips` of one array, so a file gives the
    same clips everywhere (``prepare``, ``evaluate``, ``reconstruct``). The last partial clip is
    dropped; a caller that must keep every sample pads the audio first (:func:`pad_to_clips`)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise PianoGANError(f"expected mono audio (samples,), got shape {audio.shape}")
    clips = [clip for _, clip in cut_clips([audio], n_samples, hop or n_samples)]
    return np.stack(clips) if clips else np.zeros((0, n_samples), np.float32)


def pad_to_clips(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """(samples,) -> (k * n_samples,) float32, zero-padded to a whole number of clips (k >= 1)."""
    audio = np.asarray(audio, dtype=np.float32)
    k = max(1, -(-audio.size // n_samples))
    return np.pad(audio, (0, k * n_samples - audio.size))
