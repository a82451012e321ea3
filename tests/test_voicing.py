"""Sampling-time voicing of a longform model's notes: semitone clusters (clusters.py), the
other mode's third and the leading tone (modes.py)."""

from __future__ import annotations

import pytest
import torch

from pianogan.clusters import clash_rival, drop_clashes
from pianogan.modes import local_keys, raise_leading_tones, snap_modes, struck_ahead
from test_longform import LF, play, small_cfg


def _key(midi: int) -> int:
    return midi - 21  # key 0 of a roll is A0


def test_the_softer_of_two_keys_struck_a_semitone_apart_is_dropped_and_consonances_stay():
    s = torch.zeros(1, 88, 12)
    s[0, _key(64), 1], s[0, _key(65), 1] = 0.6, 0.3  # E4 and F4 together: F4 goes
    s[0, _key(60), 1] = 0.2  # C4 a major third below E4: stays, though softer
    s[0, _key(71), 5], s[0, _key(60), 6] = 0.2, 0.5  # B4 a frame before C4's next strike, a major 7th up: B4 goes
    s[0, _key(48), 9], s[0, _key(61), 9] = 0.4, 0.4  # a minor ninth struck equally hard: a tie keeps both
    s[0, _key(40), 3], s[0, _key(41), 5] = 0.5, 0.2  # two frames apart: not struck together
    out = drop_clashes(s)
    kept = {(k + 21, t) for k, t in out[0].nonzero().tolist()}
    assert kept == {(64, 1), (60, 1), (60, 6), (48, 9), (61, 9), (40, 3), (41, 5)}
    assert torch.equal(out[out > 0], s[out > 0])  # what stays is untouched
    rival = clash_rival(s)
    assert rival[0, _key(65), 1] == 0.6 and rival[0, _key(67), 1] == 0  # G4 clashes with nothing here


def _c_major_passage(t: int = 64) -> torch.Tensor:
    """(1, 88, t): C major triads and scale tones, a strike every 4 frames."""
    s = torch.zeros(1, 88, t)
    for i, m in enumerate([60, 64, 67, 72, 65, 69, 62, 71] * (t // 32)):
        s[0, _key(m), 4 * i] = 0.5
    s[0, _key(48), ::8] = 0.3  # a C bass
    return s


def test_a_flat_third_in_a_major_passage_moves_up_with_its_damper_and_a_minor_passage_keeps_its_own():
    s = _c_major_passage()
    g = torch.zeros_like(s)
    s[0, _key(63), 20] = 0.4  # E-flat 4 in C major
    g[0, _key(63), 20:30] = 1.0  # held for 10 frames
    g[0, _key(63), 30:] = 0.0
    assert set(local_keys(s, 64)[0].tolist()) == {0}  # C major throughout
    out_s, out_g = snap_modes(s, g, 64)
    assert out_s[0, _key(63)].sum() == 0 and out_s[0, _key(64), 20] == 0.4
    assert out_g[0, _key(64), 20:30].eq(1).all() and out_g[0, _key(64), 30:].eq(0).all()  # rings as long as before
    assert torch.equal(out_s[0, _key(64), 21:], s[0, _key(64), 21:])  # the passage's own E is untouched
    # In an A minor passage a C# (the major third) moves down to C.
    a_minor = torch.zeros(1, 88, 64)
    for i, m in enumerate([57, 60, 64, 69, 62, 65, 69, 64, 71, 67, 69, 57] * 2):
        a_minor[0, _key(m), 2 * i + 4] = 0.5
    a_minor[0, _key(45), ::6] = 0.4  # an A bass
    a_minor[0, _key(61), 28] = 0.2  # C#4, the major third
    keys = local_keys(a_minor, 64)[0]
    assert set(keys.tolist()) == {12 + 9}  # A minor
    moved, _ = snap_modes(a_minor, torch.ones_like(a_minor), 64)
    assert moved[0, _key(61)].sum() == 0 and moved[0, _key(60), 28] == 0.2
    silent = torch.zeros(1, 88, 16)
    assert local_keys(silent, 8).eq(-1).all() and torch.equal(snap_modes(silent, silent, 8)[0], silent)


def test_a_flat_seventh_that_steps_up_to_the_tonic_becomes_the_leading_tone_and_others_stay():
    s = _c_major_passage()
    g = torch.zeros_like(s)
    s[0, _key(58), 21], s[0, _key(60), 25] = 0.4, 0.5  # B-flat 3, then C4 four frames later: raised
    g[0, _key(58), 21:26] = 1.0  # its damper open until the C
    s[0, _key(70), 45] = 0.3  # B-flat 4 a frame after C5 (44), none in the four after it: stays
    s[0, _key(70), 12] = 0.3  # B-flat 4 struck with C5 (12): not a step up after it, stays
    assert set(local_keys(s, 64)[0].tolist()) == {0}
    ahead = struck_ahead(s, 4, 2)
    assert ahead[0, _key(58), 21] and not ahead[0, _key(58), 20] and not ahead[0, _key(70), 45]
    out_s, out_g = raise_leading_tones(s, g, 64, reach=4)
    assert out_s[0, _key(58), 21] == 0 and out_s[0, _key(59), 21] == 0.4
    assert out_g[0, _key(59), 21:26].eq(1).all() and out_g[0, _key(59), 26:].eq(0).all()
    assert out_s[0, _key(70), 45] == 0.3 and out_s[0, _key(71), 45] == 0
    assert out_s[0, _key(70), 12] == 0.3
    assert torch.equal(out_s[0, _key(60)], s[0, _key(60)])  # the tonic it resolves to is untouched
    # In A minor the same step (G to A) gives G-sharp, the leading tone of harmonic minor.
    a_minor = torch.zeros(1, 88, 64)
    for i, m in enumerate([57, 60, 64, 69, 62, 65, 69, 64, 71, 67, 69, 57] * 2):
        a_minor[0, _key(m), 2 * i + 4] = 0.5
    a_minor[0, _key(45), ::6] = 0.4
    a_minor[0, _key(67), 30], a_minor[0, _key(69), 32] = 0.2, 0.5  # G4 then A4
    raised, _ = raise_leading_tones(a_minor, torch.ones_like(a_minor), 64, reach=4)
    assert raised[0, _key(67), 30] == 0 and raised[0, _key(68), 30] == 0.2


def test_the_model_drops_clashes_and_snaps_modes_only_when_sampling_and_asked():
    G, _ = LF.build(small_cfg(strike_gain=4.0), (129, 64))
    z = G.sample_z(4, generator=torch.Generator().manual_seed(0))
    every = dict(drop_clashes=True, mode_snap_seconds=2.0, leading_tone_seconds=0.5)
    _, (raw, raw_gate) = play(G, z, strike_gain=4.0)
    _, (dropped, _) = play(G, z, strike_gain=4.0, drop_clashes=True)
    _, (snapped, snapped_gate) = play(G, z, strike_gain=4.0, mode_snap_seconds=2.0)
    _, (led, led_gate) = play(G, z, strike_gain=4.0, leading_tone_seconds=0.5)
    _, (trained, _) = play(G, z, training=True, strike_gain=4.0, **every)
    assert torch.equal(dropped, drop_clashes(raw)) and (dropped > 0).sum() < (raw > 0).sum()
    window = round(2.0 * G.frames_per_second)
    want_s, want_g = snap_modes(raw, raw_gate, window)
    assert torch.equal(snapped, want_s) and torch.equal(snapped_gate, want_g)
    from pianogan.modes import KEY_WINDOW_SECONDS

    want_s, want_g = raise_leading_tones(raw, raw_gate, round(KEY_WINDOW_SECONDS * G.frames_per_second),
                                         round(0.5 * G.frames_per_second))
    assert torch.equal(led, want_s) and torch.equal(led_gate, want_g)
    assert torch.equal(trained, raw)  # training sees the notes as played
    from pianogan.models.longform_config import SAMPLING_FIELDS

    assert {"drop_clashes", "mode_snap_seconds", "leading_tone_seconds"} <= set(SAMPLING_FIELDS)


def test_the_clash_price_lowers_only_the_softer_note_of_a_pair():
    from pianogan.losses.longform import clash_share

    s = torch.zeros(1, 88, 5)
    s[0, 40, 1], s[0, 41, 1], s[0, 50, 3] = 0.6, 0.3, 0.5  # a semitone pair and a lone note
    s.requires_grad_(True)
    share = clash_share(s)
    share.backward()
    assert share.item() == pytest.approx(0.6 / 1.4)  # the softer 0.3, counted from both sides
    assert s.grad[0, 41, 1] > 0 and s.grad[0, 40, 1] < 0  # descent lowers the softer note only
    apart = s.detach().clone()
    apart[0, 41, 1] = 0.0
    assert clash_share(apart) == 0  # no pair: no price
