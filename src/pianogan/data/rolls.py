"""Piano rolls aligned with a prepared dataset's clips, from the performances it was rendered from.

``pianogan prepare`` keeps each built-in piece's performance as ``midi/NAME.mid`` (NAME = the
shard of its clips) and each clip's offset in the manifest, so the notes under every image are
known exactly. The ``longform`` model uses them twice: to fit its note renderer to the real
spectra (supervised: these notes -> this image), and as the real side of a critic that judges
what the generator plays. Datasets made from audio recordings have no rolls (:func:`clip_rolls`
returns None) and the model trains on the images alone.

A roll of one clip is (2, 88, T) uint8 on the clip's STFT frames (frame t is centred at
``offset + t * hop / sample_rate`` seconds, as :func:`pianogan.spectrogram.stft_magnitude`):
channel 0 = the MIDI velocity of a key struck in that frame (0 = no strike), channel 1 = 1 while
the key sounds (held, or sustained by the pedal). A clip that starts while keys sound (struck in
the clip before) gets a strike for each of them in its first frame, with the velocity reduced by
the time since the real strike (``CARRY_SECONDS`` per factor e): without it the renderer would
play those notes' sound from nowhere, and its fit measured a silent gap at most clip starts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import PianoGANError
from .render import PIANO_RANGE

PIANO_LOW, N_KEYS = PIANO_RANGE[0], PIANO_RANGE[1] - PIANO_RANGE[0] + 1  # A0 and the 88 keys
CARRY_SECONDS = 1.5
STRIKE_POWER = 2.0  # strike strength = (velocity / 127) ** 2: amplitude grows faster than velocity


def piece_roll(notes, n_frames: int, frame_rate: float) -> np.ndarray:
    """(2, 88, n_frames) uint8 roll of a note list (``Note`` start/end s, pitch, velocity), from 0 s."""
    roll = np.zeros((2, N_KEYS, n_frames), np.uint8)
    for n in notes:
        k = int(n.pitch) - PIANO_LOW
        if not 0 <= k < N_KEYS:
            continue
        a = int(round(n.start * frame_rate))
        b = max(a + 1, int(round(n.end * frame_rate)))
        if a >= n_frames:
            continue
        roll[0, k, a] = max(roll[0, k, a], int(n.velocity))
        roll[1, k, a:min(b, n_frames)] = 1
    return roll


def has_rolls(dataset) -> bool:
    """Whether every piece of ``dataset`` has its performance MIDI (so :func:`clip_rolls` works)."""
    root = Path(dataset.root)
    names = {r["shard"] for r in dataset.rows}
    return bool(names) and all((root / "midi" / f"{s}.mid").is_file() for s in names)


def clip_rolls(dataset) -> np.ndarray | None:
    """(n_clips, 2, 88, T) uint8 rolls of every clip of ``dataset`` (a PianoDataset), in its order;
    None when any of its pieces has no performance MIDI (audio data)."""
    from .render import load_midi, notes_from_midi

    if not has_rolls(dataset):
        return None
    preset = dataset.preset
    rate = preset.sample_rate / preset.hop_length
    width = preset.image_width
    root = Path(dataset.root)
    pieces = {}
    for s in sorted({r["shard"] for r in dataset.rows}):
        notes = notes_from_midi(load_midi(root / "midi" / f"{s}.mid"))
        end = max((n.end for n in notes), default=0.0)
        pieces[s] = piece_roll(notes, int(end * rate) + width + 2, rate)
    out = np.zeros((len(dataset.rows), 2, N_KEYS, width), np.uint8)
    for i, r in enumerate(dataset.rows):
        roll = pieces[r["shard"]]
        start = int(round(float(r["offset_seconds"]) * rate))
        seg = roll[:, :, start:start + width]
        out[i, :, :, :seg.shape[2]] = seg
        if start > 0:
            out[i, 0, :, 0] = np.maximum(out[i, 0, :, 0], carried(roll, start, rate))
    if out.shape[0] and not out[:, 0].any():
        raise PianoGANError(f"{root}: the performance MIDI files hold no notes for any clip")
    return out


def carried(roll: np.ndarray, frame: int, frame_rate: float) -> np.ndarray:
    """(88,) uint8 velocities of the keys still sounding at ``frame`` of a piece roll, struck
    before it: the last strike's velocity times exp(-elapsed / CARRY_SECONDS), at least 1."""
    out = np.zeros(N_KEYS, np.uint8)
    look = max(0, frame - int(8 * CARRY_SECONDS * frame_rate))
    for k in np.flatnonzero(roll[1, :, frame]):
        hits = np.flatnonzero(roll[0, k, look:frame])
        if len(hits):
            last = look + int(hits[-1])
            v = float(roll[0, k, last]) * np.exp(-(frame - last) / (CARRY_SECONDS * frame_rate))
            out[k] = max(1, int(round(v)))
    return out


def roll_to_notes(raw: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 rolls (n, 2, 88, T) -> (strikes (n, 88, T) float32 in [0, 1], held (n, 88, T) in {0, 1}):
    the units of the ``longform`` generator's note head."""
    x = torch.as_tensor(raw).float()
    return (x[:, 0] / 127.0) ** STRIKE_POWER, x[:, 1]
