"""Harmony plans whose windows change on the beat (``Config.plan_on_beats``): where the edges
fall, that the windows' sums, the plan gap and the generator's cue reduce to the plain 1 s
windows when the beat is the grid, and that the edges move with the beat."""

from __future__ import annotations

import math

import pytest
import torch

from pianogan.models import get_model
from pianogan.models.harmony_plan import beat_edges, frame_plans, plan_gap, window_shares, window_strength

LF = get_model("longform")
SMALL = dict(z_global=16, z_local=8, w_dim=32, g_channels=(32, 32, 24, 16), d_channels=(8, 16),
             d_width=32, log_rows=48, batch_size=8, sample_rate=8000, n_fft=256, hop_length=128,
             frames_per_latent=8, post_channels=16, harmony_plan=True, plan_bank_size=8, beat_clock=True)
SHAPE = (129, 64)


@pytest.mark.parametrize("period", [9.4, 19.0, 26.5, 32.0, 38.0, 47.0])
def test_edges_fall_on_the_beat_or_its_halves_and_keep_the_windows_pace(period):
    windows, frames = 12, 32
    phases = torch.linspace(0.0, 2 * math.pi, 7)[:-1]
    beats = torch.stack([torch.full_like(phases, period), phases], 1)
    edges = beat_edges(beats, windows, frames)
    assert edges.shape == (6, windows + 1) and edges.dtype == torch.long
    assert (edges[:, 0] == 0).all() and (edges[:, -1] == windows * frames).all()
    assert (edges.diff(dim=1) >= 1).all()
    step = period / 2 ** max(0, math.ceil(math.log2(period / frames)))  # a slow beat is halved
    for row, phase in zip(edges, phases):
        inner = row[1:-1].double()
        beat_pos = (inner - float(phase) / (2 * math.pi) * period) / step
        assert ((beat_pos - beat_pos.round()).abs() * step <= 0.5 + 1e-6).all()  # on a (sub)beat frame
        grid = torch.arange(1, windows, dtype=torch.float64) * frames
        assert ((inner - grid).abs() <= step / 2 + 1).all()  # no drift: each edge near its second


def test_on_the_grid_the_windows_the_gap_and_the_held_plan_are_the_plain_ones():
    torch.manual_seed(0)
    strikes = torch.rand(3, 88, 40) * (torch.rand(3, 88, 40) > 0.9)
    grid = torch.arange(0, 41, 8).expand(3, 6)
    assert torch.allclose(window_strength(strikes, 8, grid), window_strength(strikes, 8), atol=1e-5)
    plans = window_shares(torch.rand(3, 88, 40) * (torch.rand(3, 88, 40) > 0.9), 8)
    for rests in (False, True):
        assert torch.isclose(plan_gap(strikes, plans, 8, rests=rests, edges=grid), plan_gap(strikes, plans, 8, rests=rests))
    assert torch.equal(frame_plans(plans, grid, 40), plans.repeat_interleave(8, -1))
    # off the grid the windows are what lies between the edges
    moved = torch.tensor([[0, 5, 16, 21, 30, 40]])
    one = torch.zeros(1, 88, 40)
    one[0, 39, 4] = 0.5  # C4 (class 3) in frame 4: the first window here, and on the grid
    one[0, 43, 6] = 0.5  # E4 (class 7) in frame 6: the second window here, the first on the grid
    s = window_strength(one, 8, moved)[0]
    assert s[3].tolist() == [0.5, 0, 0, 0, 0] and s[7].tolist() == [0, 0.5, 0, 0, 0]


def test_a_generator_on_the_beat_hears_its_plan_change_where_the_beat_falls():
    from pianogan.errors import PianoGANError

    torch.manual_seed(0)
    grid_G, _ = LF.build(LF.Config(**SMALL), SHAPE)
    beat_G, _ = LF.build(LF.Config(**SMALL, plan_on_beats=True), SHAPE)
    with torch.no_grad():
        for m in grid_G.plan_in:  # zero at initialisation: make the plan heard
            m.weight.normal_(0, 0.5)
    beat_G.load_state_dict(grid_G.state_dict())
    grid_G.eval(), beat_G.eval()
    z = grid_G.sample_z(2, generator=torch.Generator().manual_seed(1), n_local=4)
    plans = torch.zeros(2, 12, 4)
    plans[:, 0, 0::2] = 1.0  # A, C#, A, C# second by second
    plans[:, 4, 1::2] = 1.0
    on_grid = torch.tensor([[8.0, 0.0], [8.0, 0.0]])  # a beat a window, on the window's start
    with torch.no_grad():
        a = grid_G.features(z, plans=plans, beats=on_grid)
        b = beat_G.features(z, plans=plans, beats=on_grid)
        assert torch.allclose(a, b, atol=1e-5)
        late = torch.tensor([[8.0, math.pi], [8.0, math.pi]])  # the beat half a window later
        c = beat_G.features(z, plans=plans, beats=late)
        d = grid_G.features(z, plans=plans, beats=late)
        assert not torch.allclose(c, d, atol=1e-3)  # the plan now changes off the grid
    with pytest.raises(PianoGANError, match="needs harmony_plan and beat_clock"):
        LF.Config(**{**SMALL, "beat_clock": False}, plan_on_beats=True)
