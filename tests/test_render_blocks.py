"""The renderer's correction net's reach, its block-wise rendering of long inputs, and the
memory helpers behind a long piece (sparse strike maps, heap trimming)."""

from __future__ import annotations

import pytest
import torch

import pianogan.models.piano_render as pr
from pianogan import heap
from pianogan.models.longform_dynamics import _map, _map_values


def _renderer(lookahead: int | None) -> pr.PianoRenderer:
    torch.manual_seed(0)
    r = pr.PianoRenderer(129, 8000, 256, 64, -3.5, 2.3, 3.0, 1e-4, n_partials=8, decay_seconds=0.5,
                         velocity_layers=True, post_channels=8, post_lookahead=lookahead)
    with torch.no_grad():  # a correction net that does something (it starts as the identity)
        r.post[-1].weight.normal_(0, 0.05)
    return r.eval()


def _notes(t: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    strikes = torch.rand(2, 88, t, generator=g) * (torch.rand(2, 88, t, generator=g) < 0.02)
    held = (torch.rand(2, 88, t, generator=g) < 0.3).float()
    return strikes, held


@pytest.mark.parametrize("lookahead", [None, 0, 1])
def test_post_net_sees_only_its_lookahead_ahead(lookahead):
    conv = pr.PostConv(3, 2, 5, dilation=2, lookahead=lookahead)
    x = torch.randn(1, 3, 40)
    later = x.clone()
    later[..., 25:] += 1.0  # change the input from frame 25 on
    ahead = 4 if lookahead is None else lookahead
    y, y2 = conv(x), conv(later)
    assert y.shape[-1] == x.shape[-1]  # length kept
    assert torch.equal(y[..., :25 - ahead], y2[..., :25 - ahead])  # untouched before its reach
    assert not torch.allclose(y[..., 25 - ahead], y2[..., 25 - ahead])  # and touched within it
    if lookahead is None:  # centred: what the renderer had before the parameter existed
        ref = torch.nn.functional.conv1d(x, conv.weight, conv.bias, padding=4, dilation=2)
        assert torch.equal(y, ref)


@pytest.mark.parametrize("lookahead", [None, 1])
def test_long_inputs_render_in_blocks_as_in_one_piece(monkeypatch, lookahead):
    r = _renderer(lookahead)
    strikes, held = _notes(700)
    with torch.no_grad():
        whole = r(strikes, held, texture=False)
        monkeypatch.setattr(pr, "RENDER_BLOCK_FRAMES", 128)
        blocks = r(strikes, held, texture=False)
    assert blocks.shape == whole.shape
    assert torch.allclose(blocks, whole, atol=1e-5)
    # the context is what it takes: with none, the block edges show
    monkeypatch.setattr(r, "context", lambda: (0, 0))
    with torch.no_grad():
        cut = r(strikes, held, texture=False)
    assert (cut - whole).abs().max() > 1e-3


def test_blocks_only_without_autograd(monkeypatch):
    r = _renderer(None)
    strikes, held = _notes(300)
    monkeypatch.setattr(pr, "RENDER_BLOCK_FRAMES", 64)
    calls = []
    monkeypatch.setattr(r, "_blocks", lambda *a: calls.append(1) or torch.zeros(2, 129, 300))
    r(strikes, held, texture=False)  # training path: gradients flow through one piece
    assert not calls
    with torch.no_grad():
        r(strikes, held, texture=False)
    assert calls


@pytest.mark.parametrize("first_knot", [0.01, 0.0])
def test_strike_map_of_the_struck_entries_equals_the_map_of_all(first_knot):
    strikes, _ = _notes(200)
    knots = (first_knot, 0.2, 0.5, 1.0, 0.02, 0.3, 0.6, 0.9)
    assert torch.equal(_map(strikes, knots, 0.5), _map_values(strikes, knots, 0.5))


def test_heap_trim_answers_without_failing():
    assert isinstance(heap.trim(), bool)
