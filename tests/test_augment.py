"""ADA augmentations for spectrograms: shapes, range, exactness, probability, gradients."""

import dataclasses

import pytest
import torch

from pianogan.augment import AugmentParams, SpectrogramAugment, resample_time, shift_freq

NONE = AugmentParams(time_shift=0, time_stretch=0, freq_shift=0, gain=0, noise=0, time_mask=0,
                     freq_mask=0)


def only(**kw) -> AugmentParams:
    return dataclasses.replace(NONE, **kw)


def images(n=16, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, h, w, generator=g) * 2 - 1


def test_shapes_and_range_with_everything_on():
    torch.manual_seed(0)
    aug = SpectrogramAugment(AugmentParams(gain=1.0, noise=0.5), p=1.0)
    for x in (images(), torch.ones(8, 1, 32, 48), -torch.ones(8, 1, 32, 48), images(4, 64, 128)):
        y = aug(x)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert y.min() >= -1 and y.max() <= 1
        assert torch.isfinite(y).all()
    assert not torch.equal(aug(images()), images())


def test_p_zero_is_identity_and_draws_no_randomness():
    x = images()
    state = torch.get_rng_state()
    assert SpectrogramAugment(AugmentParams(), p=0.0)(x) is x
    assert torch.equal(torch.get_rng_state(), state)


def test_time_shift_is_an_exact_circular_roll():
    torch.manual_seed(0)
    x = images(32)
    y = SpectrogramAugment(only(time_shift=0.25), p=1.0)(x)
    w = x.shape[3]
    shifts = []
    for b in range(len(x)):
        match = [s for s in range(-w // 4, w // 4 + 1) if torch.equal(torch.roll(x[b], s, dims=2), y[b])]
        assert len(match) == 1
        shifts.append(match[0])
    assert len(set(shifts)) > 5  # per-sample amounts


def test_time_operations_never_mix_frequencies():
    """Stretch and shift act on time only: a time-constant image (each row one value) is kept."""
    torch.manual_seed(0)
    rows = torch.linspace(-1, 1, 32).view(1, 1, 32, 1).expand(8, 1, 32, 48)
    y = SpectrogramAugment(only(time_shift=0.2, time_stretch=0.5), p=1.0)(rows)
    torch.testing.assert_close(y, rows)


def test_resample_time_interpolates_linearly_and_wraps():
    x = torch.arange(6.0).view(1, 1, 1, 6)
    src = torch.tensor([[0.5, 1.25, 5.5, -1.0, 2.0, 6.0]])
    y = resample_time(x, src)
    torch.testing.assert_close(y.view(-1), torch.tensor([0.5, 1.25, 2.5, 5.0, 2.0, 0.0]))


def test_frequency_shift_moves_rows_and_repeats_edges():
    x = torch.arange(5.0).view(1, 1, 5, 1).expand(2, 1, 5, 3)
    y = shift_freq(x, torch.tensor([2, -1]))
    torch.testing.assert_close(y[0, 0, :, 0], torch.tensor([0.0, 0.0, 0.0, 1.0, 2.0]))
    torch.testing.assert_close(y[1, 0, :, 0], torch.tensor([1.0, 2.0, 3.0, 4.0, 4.0]))
    # the pipeline's shifts are small: at most 2% of the height, at least one row
    torch.manual_seed(0)
    ramp = torch.arange(64.0).view(1, 1, 64, 1).expand(64, 1, 64, 8) / 64
    z = SpectrogramAugment(only(freq_shift=0.02), p=1.0)(ramp)
    moved = (z[:, 0, 32, 0] - ramp[:, 0, 32, 0]) * 64
    assert set(moved.round().tolist()) <= {-1.0, 0.0, 1.0} and moved.abs().max() == 1


def test_masks_fill_with_the_floor():
    torch.manual_seed(0)
    x = torch.ones(64, 1, 32, 48)
    y = SpectrogramAugment(only(time_mask=0.5), p=1.0)(x)
    muted_cols = (y == -1).all(dim=2).squeeze(1)  # (n, W): whole columns
    assert muted_cols.any(dim=1).float().mean() > 0.8
    assert ((y == 1) | (y == -1)).all()
    y = SpectrogramAugment(only(freq_mask=0.5), p=1.0)(x)
    assert (y == -1).all(dim=3).any(dim=(1, 2)).float().mean() > 0.8


def test_gain_is_an_offset_applied_with_probability_p():
    torch.manual_seed(0)
    x = torch.zeros(4000, 1, 4, 4)
    y = SpectrogramAugment(only(gain=0.2), p=0.3)(x)
    offsets = y[:, 0, 0, 0]
    assert (y == offsets.view(-1, 1, 1, 1)).all()  # one offset per image
    changed = offsets != 0
    assert changed.float().mean().item() == pytest.approx(0.3, abs=0.03)
    assert offsets[changed].std().item() == pytest.approx(0.2, rel=0.1)


def test_noise_is_additive():
    torch.manual_seed(0)
    x = torch.zeros(256, 1, 16, 16)
    y = SpectrogramAugment(only(noise=0.1), p=1.0)(x)
    per = y.std(dim=(1, 2, 3))
    assert per.mean().item() == pytest.approx(0.1 * (2 / torch.pi) ** 0.5, rel=0.15)


def test_differentiable_and_twice_differentiable():
    """G learns through the augmentation, and R1 (a gradient of a gradient) passes through it."""
    torch.manual_seed(0)
    aug = SpectrogramAugment(AugmentParams(), p=1.0)
    conv = torch.nn.Conv2d(1, 4, 3, padding=1)
    x = images(4).requires_grad_(True)
    logits = conv(aug(x)).square().mean(dim=(1, 2, 3))
    (g,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    assert g.abs().sum() > 0
    g.square().sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
