"""Griffin-Lim over a magnitude of any length, block by block, in bounded memory.

:func:`griffin_lim_stream` takes the magnitude as an iterable of (freq, frames) blocks of any
sizes (a long piece being generated, a fully-convolutional generator's output, a file being
read) and yields the audio in order, as soon as it is final. Memory depends on ``block_frames``,
not on the length of the piece; a piece that fits into one block gives exactly
:func:`pianogan.phase.griffin_lim`'s result.

How the blocks join (frames are STFT frames, ``E = ceil(n_fft / hop)``)::

    segment k      [a_k ........................... b_k)
    segment k+1                          [a_k+1 ............................ b_k+1)
                                          | E |  crossfade  | E |
                                          overlap = b_k - a_k+1 frames

* Each segment is one :func:`~pianogan.phase.griffin_lim` run over ``block_frames`` frames;
  neighbours share ``overlap`` frames.
* The start phase of segment k+1 in the shared frames is the *final* phase of segment k there
  (the STFT of its output), so both segments converge to nearly the same signal in the
  overlap; the new frames start from the peak-locked phase integrated across the block border
  (:func:`~pianogan.phase.peak_locked_phase_from`), as if the whole magnitude were one piece.
* Frames within E of a segment's cut edge saw the zero padding past the cut, so the audio of
  the two segments is crossfaded (raised cosine, amplitude: the two signals are nearly equal
  and in phase) over the shared frames minus E at each end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from .errors import PianoGANError
from .heap import trim
from .phase import GLSettings, griffin_lim, peak_locked_phase_from

# Frames per Griffin-Lim run: as many as make one complex (freq, frames) spectrum of this size:
# 8128 frames = 130 s of the tiny preset, 2044 = 52 s of 20s-512; a run's working set is ~15 such
# arrays. Smaller blocks cost more CPU per frame (on a loaded 2-core machine 4096 tiny frames took
# 1.8x the CPU per frame of 8192, each op paying its thread barrier on less work).
BLOCK_BYTES = 8 << 20
CROSSFADE_FRAMES = 16  # frames of audio crossfade between two segments (plus the edge frames)


def edge_frames(n_fft: int, hop_length: int) -> int:
    """E: frames next to a segment's cut whose windows reach past it (and those next to them)."""
    return -(-n_fft // hop_length)


def default_overlap(n_fft: int, hop_length: int) -> int:
    """Shared frames of two segments: E + crossfade + E + 1."""
    return 2 * edge_frames(n_fft, hop_length) + CROSSFADE_FRAMES + 1


def default_block_frames(n_fft: int, hop_length: int) -> int:
    """Frames per Griffin-Lim run: :data:`BLOCK_BYTES` of complex64 spectrum (at least 2 overlaps)."""
    return max(2 * default_overlap(n_fft, hop_length), BLOCK_BYTES // ((n_fft // 2 + 1) * 8))


class _Frames:
    """A queue of magnitude frames fed from the blocks iterator; frame indices are global."""

    def __init__(self, blocks: Iterable) -> None:
        self.blocks = iter(blocks)
        self.parts: list[torch.Tensor] = []
        self.first = 0  # global index of the first frame held
        self.held = 0
        self.done = False
        self.n_freq: int | None = None

    def fill(self, upto: int) -> None:
        """Read blocks until frames [.., upto) are held or the input ends."""
        while not self.done and self.first + self.held < upto:
            try:
                block = next(self.blocks)
            except StopIteration:
                self.done = True
                return
            block = torch.as_tensor(block)
            if block.ndim != 2:
                raise PianoGANError(f"griffin_lim_stream: blocks must be (freq, frames), got "
                                    f"shape {tuple(block.shape)}")
            if self.n_freq is None:
                self.n_freq = block.shape[0]
            elif block.shape[0] != self.n_freq:
                raise PianoGANError("griffin_lim_stream: blocks differ in their number of bins")
            if block.shape[1]:
                self.parts.append(block)
                self.held += block.shape[1]

    @property
    def end(self) -> int:
        return self.first + self.held

    def take(self, a: int, b: int) -> torch.Tensor:
        """Frames [a, b) (all held); frames before ``a`` are dropped for good."""
        whole = torch.cat(self.parts, dim=1) if len(self.parts) != 1 else self.parts[0]
        whole = whole[:, a - self.first:]
        self.parts, self.first, self.held = [whole], a, whole.shape[1]
        return whole[:, :b - a]


def _segments(blocks, n_fft: int, hop_length: int, gl: GLSettings, length: int | None,
              block_frames: int, overlap: int | None) -> Iterator[np.ndarray]:
    """The work of :func:`griffin_lim_stream` (which cuts its output to ``length``)."""
    e = edge_frames(n_fft, hop_length)
    overlap = default_overlap(n_fft, hop_length) if overlap is None else int(overlap)
    if overlap < 2 * e + 2:
        raise PianoGANError(f"griffin_lim_stream: overlap must be >= {2 * e + 2} frames")
    if block_frames < 2 * overlap:
        raise PianoGANError(f"griffin_lim_stream: block_frames must be >= {2 * overlap}")
    frames = _Frames(blocks)
    window = None
    psi_start = None  # peak-locked integrated phase before the segment (init "peaks")
    gen = torch.Generator(device="cpu").manual_seed(int(gl.seed))
    carried = None  # (freq, overlap) final phase of the previous segment in the shared frames
    pending = np.zeros(0, np.float32)  # audio of the previous segment from sample ``pos`` on
    pos = 0  # global sample index of pending[0]; everything before it has been yielded
    a = 0  # first frame of the current segment
    while True:
        frames.fill(a + block_frames + 1)  # one frame more: know whether this is the last segment
        last = frames.done and frames.end <= a + block_frames
        b = frames.end if last else a + block_frames
        if b <= a:
            if a == 0:
                raise PianoGANError("griffin_lim_stream: the magnitude has no frames")
            break
        mag = frames.take(a, b)
        n_seg = b - a
        total = hop_length * (frames.end - 1) if length is None else int(length)
        seg_len = hop_length * (n_seg - 1)
        if last:  # up to ``length`` like griffin_lim; past the crossfade of a later segment
            seg_len = max(0, total) if a == 0 else max(total - a * hop_length, hop_length * overlap)
        # start phase: the previous segment's result in the shared frames, then the default start
        if gl.init == "peaks":
            phase, psi = peak_locked_phase_from(mag, n_fft, hop_length, psi_start)
            if not last:
                psi_start = psi[:, b - overlap - a - 1]
            phase = phase.float()
        elif gl.init == "random":
            phase = torch.rand((1, mag.shape[0], n_seg), generator=gen)[0] * (2 * math.pi)
        else:
            phase = torch.zeros(mag.shape)
        if carried is not None:
            phase[:, :carried.shape[1]] = carried
        y = griffin_lim(mag, n_fft, hop_length, n_iter=gl.n_iter, momentum=gl.momentum,
                        length=seg_len, init=phase).numpy()
        del phase
        start = a * hop_length  # global sample of y[0]
        if carried is not None:  # crossfade the previous segment's tail into this one
            c0, c1 = (a + e) * hop_length, (a + overlap - 1 - e) * hop_length
            yield pending[:c0 - pos]
            u = (np.arange(c1 - c0, dtype=np.float32) + 0.5) / (c1 - c0)
            t = 0.5 - 0.5 * np.cos(np.pi * u)
            prev = pending[c0 - pos:c1 - pos]
            new = y[c0 - start:c1 - start]
            yield ((1 - t[:len(prev)]) * prev + t[:len(prev)] * new).astype(np.float32)
            pending, pos = y[c1 - start:], c1
        else:
            pending, pos = y, start
        if last:
            yield pending[:max(0, total - pos)]
            return
        # this segment's final phase in the frames the next one shares
        if window is None:
            window = torch.hann_window(n_fft, periodic=True)
        spec = torch.stft(torch.from_numpy(y), n_fft, hop_length, window=window, center=True,
                          pad_mode="constant", return_complex=True)
        carried = spec[:, n_seg - overlap:n_seg].angle()
        del spec
        trim()  # this segment's buffers go back to the OS, not only to the heap (heap.py)
        a = b - overlap


def griffin_lim_stream(blocks: Iterable[torch.Tensor | np.ndarray], n_fft: int, hop_length: int,
                       gl: GLSettings | None = None, length: int | None = None,
                       block_frames: int | None = None,
                       overlap: int | None = None) -> Iterator[np.ndarray]:
    """Invert a long magnitude given in blocks; yields float32 audio chunks in order.

    Args:
        blocks: (freq, frames) linear |STFT| blocks, ``freq = n_fft // 2 + 1``, of any sizes,
            on the preset's STFT grid (periodic Hann, centred frames) - together one magnitude
            of T frames.
        gl: Griffin-Lim settings (default :data:`pianogan.phase.DEFAULT_GL`).
        length: output samples in all; default ``hop_length * (T - 1)`` (as griffin_lim).
        block_frames: frames per Griffin-Lim run (memory is about that of one run of this size);
            default :func:`default_block_frames`.
        overlap: frames shared by neighbouring runs (default :func:`default_overlap`).

    The chunks, concatenated, are the audio: (length,) float32 at the magnitude's rate. A
    magnitude of at most ``block_frames`` frames gives exactly ``griffin_lim``'s result.
    """
    left = math.inf if length is None else int(length)
    block_frames = default_block_frames(n_fft, hop_length) if block_frames is None else int(block_frames)
    for chunk in _segments(blocks, n_fft, hop_length, GLSettings.of(gl), length, block_frames, overlap):
        chunk = chunk[:max(0, min(len(chunk), left))] if left < len(chunk) else chunk
        left -= len(chunk)
        if len(chunk):
            yield np.ascontiguousarray(chunk, dtype=np.float32)
        if left <= 0:
            return
