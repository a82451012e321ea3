"""Piano rolls under a dataset's clips (data/rolls.py), the renderer that turns them into spectra
(its attack, release and supervised fit) and the roll critic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pianogan.data.render import Note
from pianogan.data.rolls import CARRY_SECONDS, carried, piece_roll, roll_to_notes
from pianogan.models.piano_render import PianoRenderer, attack_kernel, fit_to_rolls
from pianogan.models.roll_critic import RollCritic, fold_pitch_classes, roll_view

RATE = 8000 / 256  # frames per second of the 10s-8k preset


def test_piece_roll_marks_strikes_and_held_frames():
    notes = [Note(0.5, 1.5, 60, 100), Note(0.5, 0.7, 64, 40), Note(0.51, 0.6, 60, 120), Note(1.0, 1.2, 10, 50)]
    roll = piece_roll(notes, 64, RATE)
    a = int(round(0.5 * RATE))
    assert roll.shape == (2, 88, 64) and roll.dtype == np.uint8
    assert roll[0, 60 - 21, a] == 120  # the louder of two strikes in one frame
    assert roll[0, 64 - 21, a] == 40 and roll[0].sum() == 160
    assert roll[1, 60 - 21, a:int(round(1.5 * RATE))].all() and not roll[1, 60 - 21, int(round(1.5 * RATE))]
    assert not roll[1, 60 - 21, :a].any()


def test_a_clip_starting_mid_note_gets_a_decayed_strike():
    roll = piece_roll([Note(0.0, 5.0, 48, 100), Note(0.0, 0.5, 50, 100)], 200, RATE)
    frame = int(round(1.5 * RATE))
    v = carried(roll, frame, RATE)
    assert v[48 - 21] == round(100 * np.exp(-1.5 / CARRY_SECONDS * (frame / RATE / 1.5)))
    assert v[50 - 21] == 0  # released before the clip: nothing carried
    assert v.sum() == v[48 - 21]


def test_roll_to_notes_units():
    raw = np.zeros((1, 2, 88, 8), np.uint8)
    raw[0, 0, 3, 2], raw[0, 1, 3, 2:5] = 127, 1
    s, h = roll_to_notes(raw)
    assert s.shape == h.shape == (1, 88, 8) and s[0, 3, 2] == 1.0 and s.sum() == 1.0 and h.sum() == 3


def _renderer(**kw) -> PianoRenderer:
    return PianoRenderer(513, 8000, 1024, 256, -3.5, 2.3, 3.0, 1e-4, **kw)


def test_attack_kernel_spreads_an_onset_like_the_stft_window():
    k = attack_kernel(1024, 256, 3)
    assert k.shape == (7,) and abs(k.sum() - 1) < 1e-6
    assert np.allclose(k[2:6], k[2:6][::-1]) and k[3:5].sum() > 0.8  # centred between frames 0 and 1
    assert k[0] == k[1] == k[6] == 0  # nothing beyond the window's reach
    r = _renderer()
    s = torch.zeros(1, 88, 40)
    s[0, 40, 20] = 1.0
    with torch.no_grad():
        level = r.magnitude(s, torch.ones_like(s))[0].sum(0)
    quiet = level[:10].mean()
    assert level[19] > 2 * quiet  # heard a frame before its onset frame (centred windows)
    assert level[16] < 1.01 * quiet  # not earlier than the window reaches


def test_a_released_key_fades_instead_of_stopping():
    r = _renderer()
    s, g = torch.zeros(1, 88, 60), torch.zeros(1, 88, 60)
    s[0, 40, 5] = 1.0
    g[0, 40, 5:30] = 1.0
    with torch.no_grad():
        level = r.magnitude(s, g)[0].sum(0)
    floor = level[:2].mean()
    assert level[31] > 1.5 * floor and level[31] < level[29]  # fading after the release
    assert level[55] - floor < 0.05 * (level[29] - floor)  # and nearly gone later


def test_fit_to_rolls_learns_another_renderers_instrument():
    torch.manual_seed(0)
    teacher, student = _renderer(), _renderer()
    with torch.no_grad():
        teacher.log_tau.add_(0.7)
        teacher.log_gain.add_(1.0)
        teacher.log_templates.add_(0.5 * torch.randn_like(teacher.log_templates))
    s = (torch.rand(24, 88, 64) < 0.01).float() * torch.rand(24, 88, 64)
    g = torch.ones_like(s)
    with torch.no_grad():
        target = teacher(s, g, texture=False)
    info = fit_to_rolls(student, s, g, target, steps=150, batch=8)
    assert info["l1_after"] < 0.5 * info["l1_before"]
    assert not any(p.grad is not None and not p.requires_grad for p in student.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_fit_to_rolls_fits_a_renderer_on_the_gpu_to_cpu_data():
    # The trainer moves the generator to its device before the fit, while the rolls and images
    # come from the dataset on the CPU (this crashed the first GPU run's setup).
    torch.manual_seed(0)
    student = _renderer().cuda()
    s = (torch.rand(8, 88, 64) < 0.01).float() * torch.rand(8, 88, 64)
    g = torch.ones_like(s)
    with torch.no_grad():
        target = _renderer()(s, g, texture=False)
    info = fit_to_rolls(student, s, g, target, steps=20, batch=4)
    assert info["l1_after"] < info["l1_before"] and student.log_gain.is_cuda


def test_roll_critic_sees_pitch_classes_and_any_length():
    x = torch.zeros(1, 1, 88, 4)
    x[0, 0, [0, 12, 24], 0] = 1.0  # three A's
    pc = fold_pitch_classes(x)
    assert pc.shape == (1, 1, 12, 4) and pc[0, 0, 0, 0] == 3 and pc.sum() == 3
    c = RollCritic(32, n_styles=2)
    for t in (64, 320):
        s, h = torch.rand(4, 88, t), torch.rand(4, 88, t)
        out = c(c.view(s, h), torch.tensor([0, 1, 0, 1]))
        assert out.shape == (4,) and torch.isfinite(out).all()


def test_roll_critic_lifts_faint_strikes_above_its_noise():
    # Session 5's generator hid a haze of strikes ~0.015 under the critic's instance noise (0.01-0.05);
    # the square-root view must show them well above it, keep silence at 0 and keep gradients finite.
    s = torch.zeros(1, 88, 8)
    s[0, 40, 0], s[0, 41, 4] = 0.015, 0.25
    s.requires_grad_(True)
    x = roll_view(s, torch.zeros(1, 88, 8), 0.5)
    assert x[0, 0, 40, 0] > 0.1 and abs(x[0, 0, 41, 4] - 0.5) < 0.01
    assert x[0, 0, 0, 0] == 0 and x[0, 1].abs().sum() == 0
    x[:, 0].sum().backward()
    assert torch.isfinite(s.grad).all() and s.grad.max() <= 51
    linear = RollCritic(32).view(s.detach(), torch.zeros(1, 88, 8))  # the default: linear
    assert linear[0, 0, 40, 0] == pytest.approx(0.015)


def test_long_pieces_are_pooled_before_plotting():
    from pianogan.generate_files import MAX_PLOT_COLUMNS, for_display

    x = np.zeros((5, 18750), np.float32)
    x[2, 12345] = 7.0
    y = for_display(x)
    assert y.shape[0] == 5 and y.shape[1] <= MAX_PLOT_COLUMNS and y.max() == 7.0  # the peak survives
    small = np.ones((5, 320))
    assert for_display(small) is small or np.array_equal(for_display(small), small)


def test_roll_critic_energy_view_weighs_pitch_classes_by_loudness():
    # Session 8: the square-root view shows a faint and a loud strike alike, so a generator whose
    # loud strikes sat on few pitch classes looked like real music there. The energy view must
    # give the loud class almost all the share, ignore faint noise, and see harmony move.
    c = RollCritic(32, view_power=0.5, energy_frames=4)
    s, h = torch.zeros(2, 88, 16), torch.zeros(2, 88, 16)
    s[:, 40, 0] = 0.5  # one loud strike on key 40 (pitch class 4) ...
    s[:, 41:48, 1] = 0.02  # ... and faint ones on seven other classes
    s[1, 43, 8] = 0.5  # clip 1 moves: a second loud strike, on class 7, two windows later
    p = c.energy_profile(c.view(s, h))
    clip, spread = p[:, :12], p[:, 12:]
    assert p.shape == (2, 24) and clip[0, 4] > 0.99 and abs(clip[1, 4] - 0.5) < 0.01 and clip[0].sum() == pytest.approx(1, abs=1e-3)
    assert spread[0].max() < spread[1].max()  # clip 0 never moves; clip 1 changes class between windows
    assert c(c.view(s, h)).shape == (2,)
    short = c.view(s[..., :4], h[..., :4]).requires_grad_(True)  # one window: no spread, finite slope
    p = c.energy_profile(short)
    p.sum().backward()
    assert torch.all(p[:, 12:] < 1e-3) and torch.isfinite(short.grad).all()
    assert RollCritic(32).energy is None  # off by default for the bare critic


def test_scale_share_reads_how_much_of_the_sound_stays_in_one_scale():
    from pianogan.losses.longform import scale_share

    c_major = [39, 41, 43, 44, 46, 48, 50]  # C4 D E F G A B (key 39 = C4)
    clips = torch.zeros(3, 88, 32)
    clips[0, c_major, ::8] = 0.5  # all in one scale
    clips[1, 39:51, ::8] = 0.5  # all twelve classes alike: 7 of 12 in any scale
    clips[2, c_major, ::8] = 0.5
    clips[2, 40, ::8] = 0.6  # one chromatic note (C#), louder than each other (D major still has less)
    q = scale_share(clips)
    assert q[0] == pytest.approx(1.0, abs=1e-4) and q[1] == pytest.approx(7 / 12, abs=1e-4)
    assert q[2] == pytest.approx(1.75 / (1.75 + 0.36), abs=1e-4)  # energy: strike^2 per frame
    assert torch.allclose(scale_share(clips.roll(5, dims=1)), q, atol=1e-5)  # any key alike
    assert scale_share(torch.zeros(1, 88, 32)).item() == 0.0  # silence: no scale, no NaN
    # The gradient lowers the share by moving energy onto the chromatic note.
    x = clips[2:].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(scale_share(x).sum(), x)
    assert g[0, 40].sum() < 0 < g[0, 39].sum()


def test_strike_gap_is_the_distance_of_the_loudest_fake_strikes_to_the_real_onsets():
    from pianogan.losses.longform import STRIKE_LOG_OFFSET, strike_gap

    real = torch.tensor([0.1, 0.3, 0.5])
    fake = torch.zeros(2, 88, 16)
    fake[0, 3, 4], fake[1, 7, 9], fake[0, 9, 1] = 0.5, 0.3, 0.1
    fake[1, 2, 2] = 0.001  # a faint extra strike: not among the 3 loudest, free
    assert strike_gap(fake, real).item() == pytest.approx(0.0, abs=1e-6)
    soft = (fake * 0.25).requires_grad_(True)  # every note 4x too soft
    gap = strike_gap(soft, real)
    want = sum(abs(math.log(0.25 * v + STRIKE_LOG_OFFSET) - math.log(v + STRIKE_LOG_OFFSET)) for v in (0.1, 0.3, 0.5)) / 3
    assert gap.item() == pytest.approx(want, rel=1e-5)
    (g,) = torch.autograd.grad(gap, soft)
    assert g[0, 3, 4] < 0 and g[1, 7, 9] < 0 and g[1, 2, 2] == 0  # the loudest three are pushed up
    loud = fake.clone()
    loud[0, 3, 4] = 5.0  # louder than any key can be struck: pushed down
    x = loud.requires_grad_(True)
    (g,) = torch.autograd.grad(strike_gap(x, real), x)
    assert g[0, 3, 4] > 0
    assert strike_gap(fake, torch.zeros(0)).item() == 0.0  # a batch of silent reals: no term


def test_ghost_strikes_price_the_strikes_beyond_the_real_onset_count():
    from pianogan.losses.longform import STRIKE_LOG_OFFSET, ghost_strikes, strike_gap

    real = torch.tensor([0.1, 0.3, 0.5])
    fake = torch.zeros(2, 88, 16)
    fake[0, 3, 4], fake[1, 7, 9], fake[0, 9, 1] = 0.5, 0.3, 0.1
    assert ghost_strikes(fake, 3).item() == 0.0  # as many strikes as real onsets: nothing to pay
    fake[1, 2, 2], fake[0, 50, 8] = 0.02, 0.05  # two soft extra strikes
    x = fake.clone().requires_grad_(True)
    ghost = ghost_strikes(x, 3)
    want = (math.log1p(0.02 / STRIKE_LOG_OFFSET) + math.log1p(0.05 / STRIKE_LOG_OFFSET)) / 3
    assert ghost.item() == pytest.approx(want, rel=1e-5)
    (g,) = torch.autograd.grad(ghost, x)
    assert g[1, 2, 2] > 0 and g[0, 50, 8] > 0  # the extra ones are pushed down
    assert g[0, 3, 4] == 0 and g[1, 7, 9] == 0 and g[0, 9, 1] == 0  # the three loudest are left to strike_gap
    # Together at equal weight: the 1-D Wasserstein distance (per real onset) of every position's
    # strike to a real batch with the same positions, unstruck ones being 0.
    fake_all, real_all = fake.flatten().sort().values, torch.zeros(fake.numel())
    real_all[-3:] = real
    w1 = (torch.log(fake_all + STRIKE_LOG_OFFSET) - torch.log(real_all + STRIKE_LOG_OFFSET)).abs().sum() / 3
    assert (strike_gap(fake, real) + ghost_strikes(fake, 3)).item() == pytest.approx(w1.item(), rel=1e-5)
    assert ghost_strikes(fake, 0).item() == 0.0  # a batch of silent reals: no term


def test_pitch_class_spread_match_pulls_sound_off_the_dominant_class():
    from pianogan.losses.longform import pitch_class_spread

    real = torch.zeros(4, 88, 32)
    real[:, [39, 43, 46, 50], ::8] = 0.5  # four pitch classes, equally loud
    assert torch.allclose(pitch_class_spread(real)[0, :4], torch.full((4,), 0.25), atol=1e-4)
    assert pitch_class_spread(real)[:, 4:].abs().max() < 1e-6
    # Transposing changes nothing: only how the sound is spread over the classes counts.
    assert torch.allclose(pitch_class_spread(real.roll(5, dims=1)), pitch_class_spread(real), atol=1e-5)
    fake = torch.full((4, 88, 32), 0.05)
    fake[:, 39, ::8] = 1.0  # one class loud, a haze everywhere
    fake.requires_grad_(True)
    target = pitch_class_spread(real).mean(0)
    before = pitch_class_spread(fake)[:, 0].mean().item()
    for _ in range(20):
        loss = (pitch_class_spread(fake).mean(0) - target).abs().sum()
        (g,) = torch.autograd.grad(loss, fake)
        with torch.no_grad():
            fake -= 0.05 * g / g.abs().max()
    assert pitch_class_spread(fake)[:, 0].mean().item() < before - 0.05
