"""Long pieces: how many clip images a length needs, and their magnitudes joined into one.

Neighbouring clip images overlap: each loses the edge frames whose STFT windows saw the zero
padding past its end (:func:`edge_frames`), then the two are crossfaded over
:func:`overlap_frames` frames in the power domain. :func:`magnitude_blocks` does this lazily, one
clip image at a time, for :func:`pianogan.phase_stream.griffin_lim_stream`.
"""

from __future__ import annotations

import math

import torch

from .config import Preset
from .errors import PianoGANError
from .spectrogram import Stats, image_to_magnitude


def edge_frames(preset: Preset) -> int:
    """Frames to drop where a clip meets a neighbour in a long piece.

    Centred STFT frames within n_fft/2 of a clip's edge saw the zero padding past it; in the
    training images they carry a broadband "edge" (the signal starting from silence), which
    generators learn and smear over a few more columns. So drop twice the padded frames, and at
    least 2% of the clip.
    """
    padded = math.ceil((preset.n_fft // 2) / preset.hop_length)
    return max(2 * padded, math.ceil(0.02 * preset.n_frames))


def overlap_frames(preset: Preset, overlap_seconds: float | None = None) -> int:
    """Crossfade length in frames: ``overlap_seconds`` or (None) min(1 s, clip / 4)."""
    s = overlap_seconds
    if s is None:
        s = min(1.0, preset.clip_seconds / 4)
    usable = preset.n_frames - 2 * edge_frames(preset)
    return int(min(round(s * preset.sample_rate / preset.hop_length), usable // 2))


def chain_length(preset: Preset, seconds: float, overlap_seconds: float | None = None) -> int:
    """Number of clip images a piece of ``seconds`` needs (1 when it fits in one clip), with
    crossfades of ``overlap_seconds`` (:func:`overlap_frames`)."""
    need = preset.frames_for(seconds)
    e, t0 = edge_frames(preset), preset.n_frames
    if need <= t0:
        return 1
    step = (t0 - 2 * e) - overlap_frames(preset, overlap_seconds)
    if step <= 0:
        raise PianoGANError(f"preset {preset.name!r}: clip too short to chain")
    return 1 + math.ceil((need - (t0 - e)) / step)


def join_magnitude_blocks(mags, k: int, overlap: int, trim: int, joins: list[int] | None = None):
    """Clip magnitudes (an iterable of k (freq, frames) tensors) -> the joined magnitude, in blocks.

    Each clip loses ``trim`` edge frames where it meets a neighbour (their STFT windows saw
    the zero padding past the clip's end); neighbours then overlap by ``overlap`` frames with an
    equal-power crossfade: power = (1 - t) a² + t b², with t rising from 0 to 1 across the
    overlap along a raised cosine (no corner in the level where the fade starts or ends).
    Yields (freq, frames) blocks, about one per clip, as the clips arrive; appends the frame at
    the centre of each join's crossfade to ``joins``.
    """
    joins = [] if joins is None else joins
    done = 0  # frames yielded
    tail = None  # the last frames so far, which the next clip may still fade into
    for i, mag in enumerate(mags):
        t0 = mag.shape[1]
        if i == 0:
            tail = mag[:, :t0 - trim] if k > 1 else mag
            continue
        nxt = mag[:, trim:t0 - trim] if i < k - 1 else mag[:, trim:]
        if overlap > 0:
            u = (torch.arange(overlap, dtype=mag.dtype, device=mag.device) + 0.5) / overlap
            t = 0.5 - 0.5 * torch.cos(math.pi * u)
            mixed = torch.sqrt((1 - t) * tail[:, -overlap:] ** 2 + t * nxt[:, :overlap] ** 2)
            joins.append(done + tail.shape[1] - overlap // 2 - 1)
            head = tail[:, :-overlap]
            yield head
            done += head.shape[1]
            tail = torch.cat([mixed, nxt[:, overlap:]], dim=1)
        else:
            joins.append(done + tail.shape[1])
            yield tail
            done += tail.shape[1]
            tail = nxt
    if tail is not None:
        yield tail


def join_magnitudes(mags: torch.Tensor, overlap: int, trim: int) -> tuple[torch.Tensor, list[int]]:
    """Clip magnitudes (k, freq, frames) -> one (freq, total) magnitude and the join frames
    (:func:`join_magnitude_blocks` at once)."""
    joins: list[int] = []
    out = torch.cat(list(join_magnitude_blocks(mags, len(mags), overlap, trim, joins)), dim=1)
    return out, joins


def magnitude_blocks(images, preset: Preset, stats: Stats, seconds: float, overlap: int, trim: int,
                     joins: list[int] | None = None):
    """Clip images (k, H, W) -> the (freq, frames) magnitude of ``seconds``, in blocks, lazily
    (one clip image at a time); appends the join frames to ``joins``."""
    need = preset.frames_for(seconds)
    mags = (image_to_magnitude(torch.as_tensor(img), preset, stats) for img in images)
    got = 0
    for block in join_magnitude_blocks(mags, len(images), overlap, trim, joins):
        block = block[:, :max(0, need - got)]
        if block.shape[1]:
            got += block.shape[1]
            yield block
    if got < need:  # cannot happen with chain_length's count; guard for hand-made input
        raise PianoGANError(f"{len(images)} clip image(s) cover fewer than {seconds} s")
