"""The loudness-movement term (losses/movement.py): what it measures and which way it pushes."""

import dataclasses

import pytest
import torch

from pianogan.errors import PianoGANError
from pianogan.evaluate.features import N_MELS as N_BANDS
from pianogan.losses.movement import SCALE_DB, band_movement, movement_gap
from pianogan.models.longform_config import CONFIGS

# A 129-bin STFT (n_fft 256) at 8 kHz, in the default normalisation.
CFG = dataclasses.replace(CONFIGS["default"], sample_rate=8000, n_fft=256, hop_length=128)


def _clips(n: int = 4, frames: int = 64, level: float = 0.2) -> torch.Tensor:
    return torch.full((n, 1, 129, frames), level)


def test_a_steady_clip_does_not_move_and_a_clip_that_falls_silent_moves_in_every_band():
    steady = _clips()
    assert band_movement(steady, CFG).shape == (4, N_BANDS)
    assert band_movement(steady, CFG).abs().max() < 1e-3
    assert torch.equal(band_movement(steady[:, 0], CFG), band_movement(steady, CFG))  # (n, F, T) alike
    halves = _clips()
    halves[..., 32:] = -1.0  # the second half at the floor
    m = band_movement(halves, CFG)
    assert (m > 20).all()  # half the frames tens of dB above the other half: std = half the difference
    louder = _clips(level=0.6)
    louder[..., 32:] = -1.0
    assert (band_movement(louder, CFG) > m).all()  # a larger fall moves more


def test_the_movement_is_computed_in_float32_under_bf16_autocast():
    x = _clips()
    x[..., ::2] = -0.5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m = band_movement(x, CFG)
    assert m.dtype == torch.float32
    assert torch.allclose(m, band_movement(x, CFG), rtol=1e-5)


def test_the_movement_needs_the_stft_grid():
    with pytest.raises(PianoGANError, match="STFT"):
        band_movement(torch.zeros(2, 1, 100, 64), CFG)


def test_the_gap_is_zero_for_the_reals_own_values_and_pays_for_a_narrow_spread():
    real = torch.linspace(2.0, 30.0, 16)[:, None].repeat(1, N_BANDS)  # a long tail, like the corpus's
    assert movement_gap(real[torch.randperm(16)], real).item() == pytest.approx(0.0, abs=1e-6)
    narrow = real.mean(0, keepdim=True) + 0.5 * (real - real.mean(0, keepdim=True))  # same mean, half the spread
    gap = movement_gap(narrow, real)
    assert gap.item() == pytest.approx(0.5 * (real - real.mean(0)).abs().mean().item() / SCALE_DB, rel=1e-5)
    # the fake clip that moves most is pushed to move more, the one that moves least to move less
    x = narrow.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(movement_gap(x, real), x)
    assert (g[-1] < 0).all() and (g[0] > 0).all()
    # batches of other sizes are compared at the same quantiles
    fewer = torch.linspace(2.0, 30.0, 8)[:, None].repeat(1, N_BANDS)  # the same spread, 8 clips
    assert movement_gap(fewer, real).item() == pytest.approx(0.0, abs=1e-5)


def test_the_longform_loss_pays_for_the_movement_only_when_asked():
    from pianogan.losses.longform import LongformLoss

    class Stub(torch.nn.Module):  # a generator that returns its latent as a flat, steady image
        def forward(self, z, labels=None, **cond):  # keys, beats, plans: none of them used
            return z.reshape(-1, 1, 1, 1).expand(-1, 1, 129, 64).tanh()

    class Critic(torch.nn.Module):
        def forward(self, x, labels=None, keys=None):
            return x.mean(dim=(1, 2, 3))

    cfg = dataclasses.replace(CFG, roll_weight=0.0, r1_gamma=0.0)
    z = torch.zeros(4, 1)
    real = _clips()
    real[..., 32:] = -1.0
    off = LongformLoss(cfg, Stub(), Critic())
    off.d_loss(real, z, step=1)
    assert "loss/G_movement" not in off.g_loss(z, step=1)[1]
    on = LongformLoss(dataclasses.replace(cfg, movement_match_weight=2.0), Stub(), Critic())
    assert "loss/G_movement" not in on.g_loss(z, step=0)[1]  # no critic batch seen yet: no reals to match
    on.d_loss(real, z, step=1)
    loss, stats = on.g_loss(z, step=1)
    base, _ = off.g_loss(z, step=1)
    gap = movement_gap(band_movement(_clips(level=0.0), cfg), band_movement(real, cfg)).item()
    assert stats["loss/G_movement"] == pytest.approx(gap, rel=1e-5) and gap > 1
    assert loss.item() == pytest.approx(base.item() + 2.0 * gap, rel=1e-5)
