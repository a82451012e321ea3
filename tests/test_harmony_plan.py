"""The harmony plan of the ``longform`` family: what a plan reads from a roll, what G pays for
leaving it, how plans are strung for a piece, and that the generator follows its condition."""

from __future__ import annotations

import pytest
import torch

from pianogan.models import get_model
from pianogan.models.harmony_plan import (REST_STRIKE, chain_plans, plan_gap, plan_scales, rest_channel, rest_strength,
                                          window_shares)

LF = get_model("longform")
SMALL = dict(z_global=16, z_local=8, w_dim=32, g_channels=(32, 32, 24, 16), d_channels=(8, 16),
             d_width=32, log_rows=48, batch_size=8, sample_rate=8000, n_fft=256, hop_length=128,
             frames_per_latent=8, post_channels=16, harmony_plan=True, plan_bank_size=8,
             styles=("chorale", "keyboard"))
SHAPE = (129, 64)
C4, E4, G4 = 39, 43, 46  # roll keys (key 0 = A0): C4 is MIDI 60


def roll(notes: dict[int, list[int]], windows: int = 3, frames: int = 8, strike: float = 0.5) -> torch.Tensor:
    """(1, 88, windows * frames) strikes: each window's keys struck once at its start."""
    r = torch.zeros(1, 88, windows * frames)
    for w, keys in notes.items():
        r[0, keys, w * frames] = strike
    return r


def major_plan(tonic_key: int, windows: int = 4) -> torch.Tensor:
    """(12, windows) plan of a major triad on roll key ``tonic_key``, the same every window."""
    return window_shares(roll({w: [tonic_key, tonic_key + 4, tonic_key + 7] for w in range(windows)}, windows), 8)[0]


def scale_plan(tonic_key: int, windows: int = 4, steps=(0, 2, 4, 5, 7, 9, 11, 12)) -> torch.Tensor:
    """(12, windows) plan of the scale (``steps``: major) on roll key ``tonic_key``, two notes a
    window (a triad alone lies in three diatonic scales)."""
    return window_shares(roll({w: [tonic_key + steps[(2 * w) % 8], tonic_key + steps[(2 * w + 1) % 8]]
                               for w in range(windows)}, windows), 8)[0]


def test_a_plan_holds_each_windows_pitch_class_shares_and_nothing_for_silence():
    p = window_shares(roll({0: [C4, E4], 1: [G4, G4 + 12]}), 8)  # a silent third window
    assert p.shape == (1, 12, 3)
    c, e, g = (k % 12 for k in (C4, E4, G4))  # classes counted from A
    assert torch.allclose(p[0, [c, e], 0], torch.tensor([0.5, 0.5]), atol=1e-4)
    assert p[0, g, 1] > 0.999  # two octaves of G: one class
    assert p[0, :, 2].sum() == 0
    # strength, not counts: a strike twice as hard weighs twice as much, and a strike above a
    # real one's maximum counts as one
    loud = roll({0: [C4]}, 1, strike=0.25) + roll({0: [E4]}, 1, strike=0.5) + roll({0: [G4]}, 1, strike=3.0)
    q = window_shares(loud, 8)[0, :, 0]
    assert torch.allclose(q[[c, e, g]], torch.tensor([0.25, 0.5, 1.0]) / 1.75, atol=1e-4)


def test_the_plan_gap_is_zero_on_plan_one_off_it_and_free_where_the_plan_is_silent():
    r = roll({0: [C4, E4], 1: [G4]})
    plan = window_shares(r, 8)
    assert plan_gap(r, plan, 8).item() < 1e-4
    off = roll({0: [C4 + 1], 1: [G4 + 1]})  # every strike a semitone up: none of the planned classes
    assert abs(plan_gap(off, plan, 8).item() - 1.0) < 1e-3
    silent = torch.zeros_like(r)
    assert abs(plan_gap(silent, plan, 8).item() - 0.5) < 1e-3  # silence where the plan sounds
    # the third window is silent in the plan: anything played there is free
    extra = r + roll({2: [C4 + 1]}, strike=0.9)
    assert plan_gap(extra, plan, 8).item() < 1e-4
    # the gradient moves energy from the wrong class to the planned ones
    x = (r + roll({0: [C4 + 1]}, strike=0.3)).requires_grad_(True)
    plan_gap(x, plan, 8).backward()
    assert x.grad[0, C4 + 1, 0] > 0 and x.grad[0, C4, 0] < 0


def test_with_rests_a_silent_window_of_the_plan_prices_what_is_struck_in_it():
    r = roll({0: [C4, E4], 1: [G4]})  # the plan's third window is silent
    plan = window_shares(r, 8)
    assert plan_gap(r, plan, 8, rests=True).item() < 1e-4  # resting where the plan rests is free
    one = r + roll({2: [C4 + 1]}, strike=REST_STRIKE)  # one mezzo-forte strike in the rest: 0.5 of 3 windows
    assert abs(plan_gap(one, plan, 8, rests=True).item() - 0.5 / 3) < 1e-3
    assert plan_gap(one, plan, 8).item() < 1e-4  # without rests it stays free
    busy = r + roll({2: [C4, C4 + 3, C4 + 5, C4 + 8]}, strike=1.0)
    assert plan_gap(busy, plan, 8, rests=True).item() > plan_gap(one, plan, 8, rests=True).item()
    # the sounding windows keep their price: all three windows count now
    off = roll({0: [C4 + 1], 1: [G4 + 1]})
    assert abs(plan_gap(off, plan, 8, rests=True).item() - 2.0 / 3) < 1e-3
    # the gradient takes the strikes out of the rest, and a faint one too
    x = (r + roll({2: [C4 + 1]}, strike=0.05)).requires_grad_(True)
    plan_gap(x, plan, 8, rests=True).backward()
    assert x.grad[0, C4 + 1, 16] > 0.5  # 0.25 / 0.3² over 3 windows
    assert rest_strength(r, plan, 8) == 0.0 and rest_strength(busy, plan, 8) > 1.0
    assert rest_strength(r, window_shares(roll({0: [C4], 1: [C4], 2: [C4]}), 8), 8) is None  # no rest planned
    # a batch whose plans are all silent is still priced
    assert plan_gap(one, torch.zeros_like(plan), 8, rests=True).item() > 0


def test_a_generator_told_its_rests_reads_a_13th_plan_channel():
    from pianogan.errors import PianoGANError

    plans = window_shares(roll({0: [C4, E4], 1: [G4]}), 8)
    assert rest_channel(plans)[0, 12].tolist() == [0.0, 0.0, 1.0] and torch.equal(rest_channel(plans)[:, :12], plans)
    torch.manual_seed(0)
    G, _ = LF.build(LF.Config(**SMALL, plan_rests=True), SHAPE)
    assert all(m.in_channels == 13 for m in G.plan_in)
    G.eval()
    z = G.sample_z(1, generator=torch.Generator().manual_seed(1), n_local=3)
    with torch.no_grad():
        for m in G.plan_in:
            m.weight.zero_()
            m.weight[:, 12].normal_(0, 0.5)  # only the rest channel is read
        sounding = torch.full((1, 12, 3), 1.0 / 12)
        rest_last = sounding.clone()
        rest_last[..., 2] = 0
        a, b = G.features(z, plans=sounding), G.features(z, plans=rest_last)
        assert not torch.allclose(a[..., 16:], b[..., 16:], atol=1e-4)  # the rest is heard where it is
    with pytest.raises(PianoGANError, match="needs harmony_plan"):
        LF.Config(**{**SMALL, "harmony_plan": False}, plan_rests=True)


def test_the_hellinger_gap_asks_for_a_plans_weak_class_harder_than_l1():
    def second(c: float, e: float) -> torch.Tensor:  # one window: C and E struck at these strengths
        return roll({0: [C4]}, 1, strike=c) + roll({0: [E4]}, 1, strike=e)

    weak, even = window_shares(second(0.9, 0.1), 8), window_shares(second(0.5, 0.5), 8)
    assert plan_gap(second(0.9, 0.1), weak, 8, "hellinger") < 1e-3
    assert 0.9 < plan_gap(roll({0: [C4 + 1]}, 1), weak, 8, "hellinger") <= 1.0  # about the L1 gap's 0-1 scale
    # two misses the L1 gap prices alike (0.1): dropping a weak class, and 0.6 / 0.4 for 0.5 / 0.5
    dropped, misshared = second(0.9, 0.0), second(0.6, 0.4)
    assert abs(plan_gap(dropped, weak, 8) - plan_gap(misshared, even, 8)) < 1e-3
    assert plan_gap(dropped, weak, 8, "hellinger") > 5 * plan_gap(misshared, even, 8, "hellinger")


def test_plan_scales_read_the_key_signature_of_a_plan():
    c_major = scale_plan(C4)
    a_minor = scale_plan(C4 - 3, steps=(0, 2, 3, 5, 7, 8, 10, 12))
    d_major = scale_plan(C4 + 2)
    assert list(plan_scales(torch.stack([c_major, a_minor, d_major]))) == [0, 0, 2]  # A minor: C major's scale


def test_chained_plans_keep_the_style_asked_for_and_one_key_for_the_piece():
    bank = torch.stack([scale_plan(C4), scale_plan(C4 + 7), scale_plan(C4 + 2)])  # C, G, D major
    styles = torch.tensor([0, 0, 1])
    out = chain_plans(bank, styles, 3, torch.tensor([0, 0, 1]), [1, 2, 3], n_steps=10)
    assert out.shape == (3, 12, 10)
    for piece in out:  # each 4-window part transposed to the first part's key
        parts = [piece[:, i:i + 4] for i in (0, 4)]
        assert len(set(plan_scales(torch.stack(parts)))) == 1
    assert torch.equal(out[2, :, :4], bank[2])  # the keyboard piece can only draw the D major plan
    again = chain_plans(bank, styles, 3, torch.tensor([0, 0, 1]), [1, 2, 3], n_steps=10)
    assert torch.equal(out, again)
    # only the first ``count`` plans are drawn from (the rest of the bank is empty)
    only = chain_plans(bank, styles, 1, None, [5, 6], n_steps=4)
    assert torch.equal(only[0], bank[0]) and torch.equal(only[1], bank[0])


def test_the_generator_follows_its_plan_and_samples_plans_from_its_bank():
    torch.manual_seed(0)
    G, _ = LF.build(LF.Config(**SMALL), SHAPE)
    bank = torch.stack([major_plan(C4, 8), major_plan(C4 + 5, 8), major_plan(C4 + 2, 8)])
    assert G.fill_plan_bank(bank, torch.tensor([0, 1, 0])) == 3 and int(G.plan_count) == 3
    G.eval()
    z = G.sample_z(2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = G(z, notes=True)[1][0]
        assert torch.equal(a, G(z, notes=True)[1][0])  # default plans are a function of z
        # the plan starts silent (its input layers are zero) ...
        b = G(z, notes=True, plans=bank[[1, 2]])[1][0]
        assert torch.equal(a, b)
        for m in G.plan_in:  # ... and once learned, another plan plays other notes
            m.weight.normal_(0, 0.5)
        c = G(z, notes=True, plans=bank[[1, 2]])[1][0]
        d = G(z, notes=True, plans=bank[[0, 0]])[1][0]
        assert not torch.allclose(c, d)
        for n_local in (3, 8, 20):  # any length, plans strung from the bank
            zz = G.sample_z(2, n_local=n_local)
            assert G(zz).shape == (2, 1, 129, 8 * n_local)
    # the bank travels with the weights
    H, _ = LF.build(LF.Config(**SMALL), SHAPE)
    H.load_state_dict(G.state_dict())
    H.eval()
    with torch.no_grad():
        assert torch.equal(H.default_plans(z, torch.tensor([0, 1]), 8), G.default_plans(z, torch.tensor([0, 1]), 8))


def scale_clip(tonic_key: int, frames: int = 32) -> torch.Tensor:
    """(88, frames) strikes: the major scale on roll key ``tonic_key``, one note every 4 frames."""
    r = torch.zeros(88, frames)
    for i, step in enumerate([0, 2, 4, 5, 7, 9, 11, 12]):
        r[tonic_key + step, 4 * i] = 0.6
    return r


def test_key_steps_read_how_consecutive_clips_of_a_piece_move_and_chains_follow_them():
    from pianogan.models.harmony_plan import key_steps

    strikes = torch.stack([scale_clip(C4), scale_clip(C4 + 7), scale_clip(C4 + 7), scale_clip(C4 + 2)])
    rows = [{"shard": "a", "offset_seconds": 10.0 * i, "duration_seconds": 10.0} for i in range(3)]
    rows.append({"shard": "b", "offset_seconds": 0.0, "duration_seconds": 10.0})  # another piece: no pair
    steps = key_steps(strikes, rows)
    assert len(steps) == 12 and abs(steps[7] - 0.5) < 1e-9 and abs(steps[0] - 0.5) < 1e-9
    assert key_steps(strikes, [{**r, "shard": str(i)} for i, r in enumerate(rows)]) == ()
    # a piece strung with "always up a fifth" moves C -> G -> D
    bank = torch.stack([scale_plan(C4), scale_plan(C4 + 3)])
    up_a_fifth = tuple(1.0 if k == 7 else 0.0 for k in range(12))
    piece = chain_plans(bank, torch.tensor([0, 0]), 2, None, [4], n_steps=12, steps=up_a_fifth)[0]
    scales = plan_scales(torch.stack([piece[:, i:i + 4] for i in (0, 4, 8)]))
    assert [int(x - scales[0]) % 12 for x in scales] == [0, 7, 2]
    # held fully, the same steps keep the first plan's scale
    held = chain_plans(bank, torch.tensor([0, 0]), 2, None, [4], n_steps=12, steps=up_a_fifth, hold=1.0)[0]
    assert len(set(plan_scales(torch.stack([held[:, i:i + 4] for i in (0, 4, 8)])))) == 1


@pytest.mark.parametrize("rests,beats", [(False, False), (True, False), (True, True)])
def test_a_trained_plan_model_exports_with_its_bank_and_plays_any_length(tmp_path, rests, beats):
    from pianogan.pretrained import export, load_pretrained
    from pianogan.train.checkpoint import load_generator
    from pianogan.train.trainer import train
    from tests.test_longform import QUIET, SMALL as LF_SMALL, _dataset

    data = _dataset(tmp_path, n=16, midi=True)
    cfg = {"base": "tiny", "model": {**LF_SMALL, "render_fit_steps": 4, "harmony_plan": True, "plan_rests": rests,
                                                                 "beat_clock": beats, "plan_on_beats": beats}}
    train("longform", data, tmp_path / "r", config=cfg, steps=1, progress=False, **QUIET)
    trained, _ = load_generator(tmp_path / "r")
    assert int(trained.plan_count) == 16  # every training clip (fewer than the bank holds)
    assert (trained.plan_bank[:16].sum(1) > 0.5).any()
    logged = (tmp_path / "r" / "metrics.jsonl").read_text()
    assert "loss/G_plan" in logged
    entry = export(tmp_path / "r", "plan-test", folder=tmp_path / "shipped", level_from=data, level_n=16, drift_n=8)
    G, _ = load_pretrained("plan-test", folder=tmp_path / "shipped")
    assert G.cfg.plan_rests == rests and G.plan_in[0].in_channels == 12 + rests and G.cfg.plan_on_beats == beats
    assert int(G.plan_count) == 16 and torch.allclose(G.plan_bank.float(), trained.plan_bank, atol=1e-3)
    assert len(G.cfg.plan_key_steps) in (0, 12) and entry["file"] == "plan-test.safetensors"
    # the plans, not the global latent, carry its key: the hold is calibrated, and no drift
    assert set(entry["drift"]["agreement"]) == {"0", "0.25", "0.5", "0.75", "1"}
    assert G.cfg.plan_key_hold == entry["drift"]["plan_key_hold"] and G.cfg.drift_seconds == 0
    from pianogan.pretrained import with_settings  # a user may ask for more or fewer key changes

    assert with_settings(G.cfg, "longform", {"plan_key_hold": "0.25"}).plan_key_hold == 0.25
    with torch.no_grad():
        for n_local in (4, 8, 24):
            assert G(G.sample_z(2, n_local=n_local)).shape == (2, 1, 129, 8 * n_local)


def test_recombined_plans_take_only_steps_the_bank_took_in_any_key():
    from pianogan.models.harmony_plan import recombine_plans

    c, f, g = (major_plan(k, 1)[:, 0] for k in (C4, C4 + 5, C4 + 7))
    # one plan in C: C F G C; recombined with k = 1 on one window of context, C is always
    # followed by F, F by G, G by C
    bank = torch.stack([torch.stack([c, f, g, c], -1)])
    out = recombine_plans(bank, torch.tensor([0]), 1, None, [0, 1], n_steps=9, k=1, context=1)
    assert out.shape == (2, 12, 9)
    for piece in out:
        for t in range(8):
            here, nxt = piece[:, t], piece[:, t + 1]
            # the step C -> F, F -> G or G -> C, in some key
            assert any(torch.allclose(nxt, b.roll(r, 0), atol=1e-5) and torch.allclose(here, a.roll(r, 0), atol=1e-5)
                       for a, b in ((c, f), (f, g), (g, c)) for r in range(12)), t
    # a bank of another key gives the same steps, transposed
    up = recombine_plans(bank.roll(2, dims=1), torch.tensor([0]), 1, None, [0], n_steps=9, k=1, context=1)
    assert torch.allclose(up[0], out[0].roll(2, dims=0), atol=1e-5)
    # with more context a step matches the last windows, not only the last one: after C F G the
    # bank's continuation is C, however many runs end on a G
    two = torch.stack([torch.stack([c, f, g, c], -1), torch.stack([f, c, g, f], -1)])
    more = recombine_plans(two, torch.tensor([0, 0]), 2, None, [3], n_steps=4, k=1, context=3)
    assert torch.allclose(more[0], two[0], atol=1e-5) or torch.allclose(more[0], two[1], atol=1e-5)


def test_the_hold_is_read_where_the_agreement_meets_the_real_one():
    from pianogan.models.longform_drift import pick_hold

    assert pick_hold({0.0: 0.3, 0.5: 0.5, 1.0: 0.7}, 0.6) == pytest.approx(0.75)
    assert pick_hold({0.0: 0.3, 0.5: 0.5, 1.0: 0.55}, 0.6) == 1.0  # never reached: hold fully
    assert pick_hold({0.0: 0.3, 0.5: 0.5, 1.0: 0.7}, 0.2) == 0.0
    assert 0.25 <= pick_hold({0.0: 0.3, 0.25: 0.52, 0.5: 0.48, 0.75: 0.6, 1.0: 0.7}, 0.55) <= 0.75  # noise evened out
