"""StyleGAN2 networks and loss: layer maths, shapes at 64×128 … 512², latents, truncation, R1."""

import dataclasses
import math

import pytest
import torch

from pianogan.errors import PianoGANError
from pianogan.models import stylegan2 as sg
from pianogan.models.stylegan2_layers import (EqualConv2d, EqualLinear, ModulatedConv2d,
                                              downsample2x, minibatch_stddev, upsample2x)

SMALL = dict(z_dim=16, w_dim=16, mapping_layers=1, channel_base=128, channel_max=16)


def small_cfg(**kw) -> sg.Config:
    return dataclasses.replace(sg.CONFIGS["tiny"], **{**SMALL, **kw})


# ---------------------------------------------------------------- layers

def test_demodulated_conv_keeps_unit_variance():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 32, 3, w_dim=8, demodulate=True)
    x = torch.randn(16, 64, 24, 24)
    w = torch.randn(16, 8) * 3  # styles far from 1, per sample
    y = conv(x, w)[:, :, 1:-1, 1:-1]  # interior (zero padding lowers the border)
    assert y.var().item() == pytest.approx(1.0, abs=0.06)
    # per sample and channel, not only on average
    per = y.var(dim=(2, 3))
    assert per.min().item() > 0.75 and per.max().item() < 1.3


def test_modulation_without_demodulation_scales_variance():
    """The check above can fail: without demodulation the styles change the output scale."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 32, 3, w_dim=8, demodulate=False)
    x = torch.randn(8, 64, 16, 16)
    w = torch.zeros(8, 8)
    v1 = conv(x, w)[:, :, 1:-1, 1:-1].var().item()
    with torch.no_grad():
        conv.affine.bias.fill_(3.0)  # styles 3 instead of 1
    v3 = conv(x, w)[:, :, 1:-1, 1:-1].var().item()
    assert v3 / v1 == pytest.approx(9.0, rel=0.1)


def test_modulated_conv_equals_per_sample_weights():
    """The shared-weight formulation equals convolving each sample with its own w''."""
    torch.manual_seed(1)
    conv = ModulatedConv2d(6, 5, 3, w_dim=4)
    x, w = torch.randn(3, 6, 8, 8), torch.randn(3, 4)
    y = conv(x, w)
    s = conv.affine(w)
    for b in range(3):
        wb = conv.weight * conv.weight_gain * s[b].view(1, -1, 1, 1)
        wb = wb / wb.square().sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        ref = torch.nn.functional.conv2d(x[b:b + 1], wb, padding=1)
        torch.testing.assert_close(y[b:b + 1], ref, atol=1e-5, rtol=1e-5)


def test_equalised_linear_and_conv_keep_unit_scale():
    torch.manual_seed(0)
    lin = EqualLinear(512, 256, lr_mul=0.01)
    assert lin(torch.randn(4096, 512)).var().item() == pytest.approx(1.0, abs=0.05)
    # stored weights are N(0, 1/lr_mul²): the run-time gain brings them back
    assert lin.weight.std().item() == pytest.approx(100.0, rel=0.05)
    conv = EqualConv2d(32, 32, 3)
    assert conv(torch.randn(8, 32, 16, 16))[:, :, 1:-1, 1:-1].var().item() == pytest.approx(1.0, abs=0.1)


def test_resampling_is_centred_and_keeps_constants():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 12)
    flip = lambda t: t.flip(-1).flip(-2)  # noqa: E731
    for f in (downsample2x, upsample2x):
        torch.testing.assert_close(f(flip(x)), flip(f(x)))
    ones = torch.ones(1, 1, 8, 8)
    assert torch.allclose(downsample2x(ones)[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))
    # up- and down-sampling convolutions are symmetric for symmetric kernels
    up = ModulatedConv2d(3, 2, 3, w_dim=4, up=True, demodulate=False)
    down = EqualConv2d(3, 2, 3, down=True)
    with torch.no_grad():
        up.weight.copy_(up.weight + flip(up.weight))
        down.weight.copy_(down.weight + flip(down.weight))
    w = torch.randn(2, 4)
    assert up(x, w).shape == (2, 2, 16, 24) and down(x).shape == (2, 2, 4, 6)
    torch.testing.assert_close(up(flip(x), w), flip(up(x, w)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(down(flip(x)), flip(down(x)), atol=1e-5, rtol=1e-5)


def test_minibatch_stddev_groups():
    x = torch.zeros(6, 4, 2, 2)
    x[1] = 2.0  # group {0,1} (contiguous) has std 1 per feature; {2,3}, {4,5} have 0
    y = minibatch_stddev(x, group_size=2)
    assert y.shape == (6, 5, 2, 2)
    torch.testing.assert_close(y[:2, 4], torch.ones(2, 2, 2), atol=1e-3, rtol=0)
    torch.testing.assert_close(y[2:, 4], torch.zeros(4, 2, 2), atol=1e-3, rtol=0)
    assert minibatch_stddev(torch.randn(5, 4, 2, 2), group_size=4).shape == (5, 5, 2, 2)


# ---------------------------------------------------------------- networks

@pytest.mark.parametrize("shape", [(64, 128), (256, 256), (512, 512), (96, 128), (100, 72)])
def test_shapes(shape):
    torch.manual_seed(0)
    cfg = small_cfg(channel_max=8) if shape[0] >= 256 else small_cfg()
    G, D = sg.build(cfg, shape)
    assert G.image_shape == shape and G.z_dim == 16 and G.latent == "normal"
    z = G.sample_z(2)
    x = G(z)
    assert x.shape == (2, 1, *shape) and torch.isfinite(x).all()
    assert D(x).shape == (2,)
    G.eval()
    x = G(z)
    assert x.min() >= -1 and x.max() <= 1


def test_constant_input_has_image_aspect():
    G, _ = sg.build(small_cfg(), (64, 128))
    assert tuple(G.const.shape[1:]) == (4, 8)
    assert G.num_ws == 2 * 5  # levels 4×8, 8×16, 16×32, 32×64, 64×128


def test_sample_z():
    G, _ = sg.build(small_cfg(), (64, 128))
    z = G.sample_z(1000)
    assert z.shape == (1000, 16)
    assert z.mean().abs() < 0.05 and z.std().item() == pytest.approx(1.0, abs=0.05)
    a = G.sample_z(3, generator=torch.Generator().manual_seed(7))
    b = G.sample_z(3, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)


def test_truncation_zero_gives_w_avg_image():
    torch.manual_seed(0)
    G, _ = sg.build(small_cfg(), (64, 128))
    G.eval()
    with torch.no_grad():
        G.w_avg.normal_()
        x = G(G.sample_z(4), truncation_psi=0.0, clamp=False)
        ref = G.synthesis(G.w_avg.view(1, 1, -1).expand(1, G.num_ws, -1), noise_mode="const")
    torch.testing.assert_close(x, ref.expand(4, -1, -1, -1), atol=1e-5, rtol=1e-5)
    y = G(G.sample_z(4), truncation_psi=0.5)
    assert not torch.allclose(y, x.clamp(-1, 1))


def test_w_avg_tracks_mapping_output():
    torch.manual_seed(0)
    G, _ = sg.build(small_cfg(w_avg_beta=0.5), (64, 128))
    z = G.sample_z(64)
    with torch.no_grad():
        target = G.mapping(z).mean(0)
        for _ in range(30):
            G.map(z, update_w_avg=True)
    torch.testing.assert_close(G.w_avg, target, atol=1e-4, rtol=1e-4)
    before = G.w_avg.clone()
    with torch.no_grad():
        G(G.sample_z(8))
    torch.testing.assert_close(G.w_avg, before)  # only when asked


def test_style_mixing_cutoffs():
    torch.manual_seed(0)
    G, _ = sg.build(small_cfg(), (64, 128))
    G.eval()
    z1, z2 = G.sample_z(2), G.sample_z(2)
    with torch.no_grad():
        a, b = G(z1), G(z2)
        torch.testing.assert_close(G(z1, mix_z=z2, mixing_cutoff=G.num_ws), a)
        torch.testing.assert_close(G(z1, mix_z=z2, mixing_cutoff=0), b)
        ws = G.map(z1, mix_z=z2, mixing_cutoff=3)
        torch.testing.assert_close(ws[:, :3], G.map(z1)[:, :3])
        torch.testing.assert_close(ws[:, 3:], G.map(z2)[:, 3:])
    with pytest.raises(PianoGANError):
        G(z1, mix_z=z2, mixing_cutoff=G.num_ws + 1)


def test_noise_modes():
    torch.manual_seed(0)
    G, _ = sg.build(small_cfg(), (64, 128))
    with torch.no_grad():
        for layer in G.convs:
            layer.noise_strength.fill_(0.5)
        z = G.sample_z(2)
        assert not torch.allclose(G(z, noise_mode="random"), G(z, noise_mode="random"))
        torch.testing.assert_close(G(z, noise_mode="const"), G(z, noise_mode="const"))
        G.eval()  # eval defaults to the saved constant noise: deterministic generation
        torch.testing.assert_close(G(z), G(z))


def test_generator_ignores_unknown_kwargs_and_gets_gradients():
    G, D = sg.build(small_cfg(), (64, 128))
    x = G(G.sample_z(2), some_other_models_option=3)
    D(x).sum().backward()
    assert all(p.grad is not None for n, p in G.named_parameters() if "noise_strength" not in n)


def test_config_round_trip_and_presets():
    for name in ("default", "tiny"):
        cfg = sg.CONFIGS[name]
        d = dataclasses.asdict(cfg)
        assert sg.Config(**d) == cfg
    with pytest.raises(PianoGANError):
        sg.Config(augment="rotate")
    assert sg.CONFIGS["default"].n_critic == 1


def test_adam_lazy_correction():
    cfg = sg.Config(lr_g=0.0025, lr_d=0.0025, betas=(0.0, 0.99), r1_interval=16, pl_interval=4)
    d, g = cfg.adam("D"), cfg.adam("G")
    assert d["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert d["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    assert g["lr"] == pytest.approx(0.0025 * 4 / 5)
    assert g["betas"] == pytest.approx((0.0, 0.99 ** 0.8))
    raw = dataclasses.replace(cfg, lazy_adam_correction=False).adam("G")
    assert raw["lr"] == 0.0025 and raw["betas"] == (0.0, 0.99)
    assert dataclasses.replace(cfg, pl_weight=0.0).adam("G")["lr"] == 0.0025
    assert cfg.ema_decay() == pytest.approx(0.5 ** (64 / 20000))
    assert math.isclose(0.5, cfg.ema_decay() ** (20000 / 64))
