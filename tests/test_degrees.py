"""The scale-degree term (losses/degrees.py): what it reads and which way it pushes."""

import pytest
import torch

from pianogan.losses.degrees import EPS, SCALE, bank, degree_gap, degree_profiles
from pianogan.losses.longform import LongformLoss

MAJOR = {0: 4.0, 2: 1.0, 4: 3.0, 5: 1.0, 7: 3.0, 9: 1.0, 11: 1.5}  # degree: weight (tonic, third, fifth loudest)
MINOR = {0: 4.0, 2: 1.0, 3: 3.0, 5: 1.0, 7: 3.0, 8: 1.0, 11: 1.5}


def _clip(tonic: int, degrees: dict[int, float], frames: int = 40) -> torch.Tensor:
    """(88, frames) strikes: each degree struck once in the octave above C4 (MIDI 60 + tonic),
    at a strength whose square is its weight (strike energy), softer than a real strike's
    maximum."""
    s = torch.zeros(88, frames)
    for i, (d, w) in enumerate(degrees.items()):
        s[60 + tonic + d - 21, 2 + 5 * i] = 0.2 * w ** 0.5
    return s


def test_profiles_read_each_clip_in_its_own_key():
    clips = torch.stack([_clip(0, MAJOR), _clip(7, MAJOR), _clip(9, MINOR), _clip(2, MINOR)])
    prof, minor = degree_profiles(clips)
    assert prof.shape == (4, 12) and minor.tolist() == [False, False, True, True]
    assert torch.allclose(prof[0], prof[1], atol=1e-6)  # C major and G major alike
    assert torch.allclose(prof[2], prof[3], atol=1e-6)  # A minor and D minor alike
    assert prof.sum(1).tolist() == pytest.approx([1.0] * 4, abs=1e-5)
    weights = torch.tensor([MAJOR.get(d, 0.0) for d in range(12)])
    assert torch.allclose(prof[0], weights / weights.sum(), atol=1e-5)  # energy shares, tonic first
    assert prof[2, 3] > 0.1 and prof[2, 4] == 0  # the minor third, not the major one


def test_a_strike_above_a_real_ones_maximum_counts_as_one():
    loud = _clip(0, MAJOR)
    loud[60 - 21, 2] = 50.0  # the tonic, far above velocity 127
    capped = _clip(0, MAJOR)
    capped[60 - 21, 2] = 1.0
    assert torch.equal(degree_profiles(loud[None])[0], degree_profiles(capped[None])[0])


def test_the_gap_is_zero_for_the_reals_own_values_and_pays_for_the_other_modes_third():
    reals = torch.stack([_clip(t, MAJOR if t % 2 else MINOR) for t in range(12)])
    real = degree_profiles(reals)
    perm = torch.randperm(12)
    assert degree_gap(degree_profiles(reals[perm]), real).item() == pytest.approx(0.0, abs=1e-6)
    blurred = reals.clone()
    for i in range(1, 12, 2):  # every major clip also sounds its flat third
        blurred[i, 60 + i + 3 - 21, 30] = 0.2
    fake = degree_profiles(blurred)
    assert fake[1][1::2].eq(False).all()  # still read as major
    gap = degree_gap(fake, real)
    assert gap.item() > 0.2
    # the flat third of the major clips is pushed down
    prof = fake[0].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(degree_gap((prof, fake[1]), real), prof)
    assert (g[1::2, 3] > 0).all()


def test_silent_clips_are_left_out_on_both_sides():
    reals = torch.stack([_clip(t, MAJOR) for t in range(4)])
    with_silence = torch.cat([reals, torch.zeros(2, 88, 40)])
    prof, minor = degree_profiles(with_silence)
    assert prof[4:].abs().max() == 0
    assert degree_gap((prof, minor), degree_profiles(reals)).item() == pytest.approx(0.0, abs=1e-6)
    assert degree_gap(degree_profiles(reals), (prof, minor)).item() == pytest.approx(0.0, abs=1e-6)


def test_the_gap_leaves_out_a_mode_one_side_lacks_and_weights_modes_by_the_generated_clips():
    major = degree_profiles(torch.stack([_clip(t, MAJOR) for t in range(4)]))
    minor = degree_profiles(torch.stack([_clip(t, MINOR) for t in range(4)]))
    assert degree_gap(minor, major).item() == 0.0  # no mode on both sides: nothing to compare
    both = (torch.cat([major[0], minor[0]]), torch.cat([major[1], minor[1]]))
    shifted = (both[0].roll(1, dims=1), both[1])  # every degree one semitone off
    per_mode = [degree_gap((shifted[0][sel], shifted[1][sel]), (both[0][sel], both[1][sel])).item()
                for sel in (slice(0, 4), slice(4, 8))]
    assert degree_gap(shifted, both).item() == pytest.approx(sum(per_mode) / 2, rel=1e-5)
    assert per_mode[0] == pytest.approx(
        ((major[0].roll(1, 1) + EPS).sqrt() - (major[0] + EPS).sqrt()).abs().mean().item() / SCALE, rel=1e-5)


def test_the_bank_keeps_the_last_clips_in_order():
    a = (torch.arange(6.0)[:, None].repeat(1, 12), torch.tensor([0, 1, 0, 1, 0, 1]).bool())
    held = bank(None, a, 4)
    assert held[0][:, 0].tolist() == [2, 3, 4, 5] and held[1].tolist() == [False, True, False, True]
    b = (torch.full((3, 12), 9.0), torch.ones(3).bool())
    held = bank(held, b, 4)
    assert held[0][:, 0].tolist() == [5, 9, 9, 9] and held[1].tolist() == [True] * 4


def test_the_loss_saves_its_bank_so_a_resumed_run_reads_the_same_reals():
    loss = LongformLoss(type("Cfg", (), {"n_critic": 1, "degree_match_weight": 1.0})(), None, None)
    assert loss.state_dict() == {}
    loss.degree_real = degree_profiles(torch.stack([_clip(0, MAJOR), _clip(9, MINOR)]))
    again = LongformLoss(type("Cfg", (), {"n_critic": 1, "degree_match_weight": 1.0})(), None, None)
    again.load_state_dict(loss.state_dict())
    assert torch.equal(again.degree_real[0], loss.degree_real[0])
    assert torch.equal(again.degree_real[1], loss.degree_real[1])
