"""Key finding on piano rolls and the key calibration of generated notes (pianogan/keys.py)."""

from __future__ import annotations

import numpy as np
import torch

from pianogan.keys import KEY_NAMES, calibration_shifts, key_shares, keys_of_notes, style_key_shares, transpose

C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]  # MIDI
A_MINOR = [57, 59, 60, 62, 64, 65, 68, 69]  # harmonic minor: G sharp


def roll(*scales, frames: int = 40) -> torch.Tensor:
    """(n, 88, frames) strikes: clip i plays scale i, one note every 5 frames, the tonic twice."""
    out = torch.zeros(len(scales), 88, frames)
    for i, scale in enumerate(scales):
        for j, midi in enumerate([*scale, scale[0]]):
            if midi is not None:
                out[i, midi - 21, (5 * j) % frames] += 0.5
    return out


def test_keys_of_scales_and_silence():
    x = roll(C_MAJOR, A_MINOR, [m + 2 for m in C_MAJOR])
    keys = keys_of_notes(torch.cat([x, torch.zeros(1, 88, 40)]))
    assert [KEY_NAMES[k] for k in keys[:3]] == ["C major", "A minor", "D major"] and keys[3] == -1
    assert key_shares(x).tolist() == [1 / 3 if k in (0, 2, 21) else 0.0 for k in range(24)]


def test_transpose_moves_keys_and_drops_the_ones_off_the_keyboard():
    x = torch.zeros(2, 88, 3)
    x[0, 0, 0] = 1.0  # A0
    x[0, 87, 1] = 1.0  # C8
    x[1, 40, 2] = 1.0
    y = transpose(x, torch.tensor([2, -3]))
    assert y[0, 2, 0] == 1.0 and y[0].sum() == 1.0  # C8 went off the top
    assert y[1, 37, 2] == 1.0 and y[1].sum() == 1.0


def test_calibration_draws_keys_from_the_shares_within_the_clips_mode():
    x = roll(C_MAJOR, C_MAJOR, A_MINOR, A_MINOR)
    shares = np.zeros(24)
    shares[[0, 7]] = 0.4  # C and G major
    shares[12 + 2] = 0.2  # D minor
    u = torch.tensor([0.2, 0.7, 0.1, 0.9])
    shifts = calibration_shifts(x, shares, u)
    assert shifts.tolist() == [0, -5, 5, 5]  # C stays; C -> G (down a fourth); A minor -> D minor
    moved = torch.stack([transpose(x[i:i + 1], shifts[i:i + 1])[0] for i in range(4)])
    assert [KEY_NAMES[k] for k in keys_of_notes(moved)] == ["C major", "G major", "D minor", "D minor"]
    # A mode without shares, and silence, stay where they are.
    only_major = np.zeros(24)
    only_major[0] = 1.0
    silent = torch.zeros(1, 88, 40)
    assert calibration_shifts(torch.cat([x[2:3], silent]), only_major, torch.tensor([0.5, 0.5])).tolist() == [0, 0]


def test_each_style_keeps_its_own_key_shares_and_a_row_per_clip_draws_from_them():
    d_major = [m + 2 for m in C_MAJOR]
    x = roll(C_MAJOR, C_MAJOR, d_major, A_MINOR, d_major)
    labels = np.array([0, 0, 1, 1, 1])
    by_style = style_key_shares(x, labels, 2, prior=0.0)
    assert by_style[0].tolist() == [1.0 if k == 0 else 0.0 for k in range(24)]  # style 0: C major only
    assert by_style[1][2] == 2 / 3 and by_style[1][21] == 1 / 3  # style 1: D major, A minor
    smoothed = style_key_shares(x, labels, 2, prior=5.0)  # a rare style leans on the corpus's keys
    assert smoothed[0][0] == (2 + 5 * 0.4) / 7 and smoothed[0][2] == 5 * 0.4 / 7
    assert np.allclose(smoothed.sum(1), 1.0)
    # one row of shares per clip: two C major clips, one of each style, go where their style's keys are
    rows = np.stack([by_style[0], by_style[1]])
    y = roll(C_MAJOR, C_MAJOR)
    shifts = calibration_shifts(y, rows, torch.tensor([0.5, 0.5]))
    assert shifts.tolist() == [0, 2]  # style 0 stays in C, style 1 goes to D major (its only major key)


def test_key_names_parse_and_bad_ones_fail_in_one_line():
    import pytest

    from pianogan.errors import PianoGANError
    from pianogan.keys import parse_key

    names = {"C": "C major", "d minor": "D minor", "F#m": "F# minor", "Bb major": "Bb major",
             "eb": "Eb major", "A min": "A minor", "Db": "C# major"}
    for text, want in names.items():
        assert KEY_NAMES[parse_key(text)] == want, text
    with pytest.raises(PianoGANError, match="unknown key 'H minor'"):
        parse_key("H minor")


def test_a_requested_key_keeps_the_clips_mode_by_going_to_the_relative_key():
    from pianogan.keys import parse_key, shifts_to_key

    x = roll(C_MAJOR, A_MINOR, [None] * 9)
    moved = transpose(x, shifts_to_key(x, parse_key("D minor")))
    keys = keys_of_notes(moved)
    assert [KEY_NAMES[k] for k in keys[:2]] == ["F major", "D minor"] and keys[2] == -1
    moved = transpose(x, shifts_to_key(x, parse_key("G")))
    assert [KEY_NAMES[k] for k in keys_of_notes(moved)[:2]] == ["G major", "E minor"]
