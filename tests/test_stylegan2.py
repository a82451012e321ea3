"""StyleGAN2 networks and loss: layer maths, shapes at 64×128 … 512², latents, truncation, R1."""

import dataclasses
import math

import pytest
import torch

import _train_data as td
from pianogan.augment import AugmentParams
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


def test_adam_correction_only_where_regularisers_take_steps_of_their_own():
    from pianogan.losses.stylegan2 import SEPARATE_REGULARISER_STEPS, lazy_adam
    from pianogan.models import config_from_dict

    cfg = sg.Config(lr_g=0.0025, lr_d=0.0025, betas=(0.0, 0.99), r1_interval=16, pl_interval=4)
    # This loss adds each regulariser to its minibatch's loss: no extra optimiser steps, so the
    # optimisers get the paper's settings unchanged.
    assert SEPARATE_REGULARISER_STEPS is False
    for net in ("G", "D"):
        assert cfg.adam(net) == {"lr": 0.0025, "betas": (0.0, 0.99), "eps": 1e-8}
    # The paper's schedule (a separate step every k minibatches) gets lr·c, β^c, c = k/(k+1).
    lr, betas = lazy_adam(0.0025, (0.0, 0.99), 16, separate_steps=True)
    assert lr == pytest.approx(0.0025 * 16 / 17) and betas == pytest.approx((0.0, 0.99 ** (16 / 17)))
    lr, betas = lazy_adam(0.0025, (0.5, 0.99), 4, separate_steps=True)
    assert lr == pytest.approx(0.002) and betas == pytest.approx((0.5 ** 0.8, 0.99 ** 0.8))
    assert lazy_adam(0.0025, (0.5, 0.99), 0, separate_steps=True) == (0.0025, (0.5, 0.99))
    # A configuration stored by an older version (with its retired switch) still loads.
    old = {**dataclasses.asdict(sg.CONFIGS["tiny"]), "lazy_adam_correction": True}
    assert config_from_dict("stylegan2", old) == sg.CONFIGS["tiny"]


def test_trainer_optimisers_get_the_papers_learning_rate(tmp_path):
    """The regularisers ride in the main step (R1 on step 0 is in loss/D), and the trainer's
    Adam runs at the configured lr and betas: 0.0025, (0, 0.99) for paper256."""
    from pianogan.train.trainer import Trainer

    data = td.write_synthetic_dataset(tmp_path / "ds", n=16, preset=td.SMALL)
    t = Trainer("stylegan2", data, tmp_path / "run", config={"base": "default", "model": {
        "channel_base": 256, "channel_max": 16, "z_dim": 16, "w_dim": 16, "mapping_layers": 1,
        "batch_size": 4}}, overrides={"sample_images": 0}, progress=False)
    t._setup()
    for opt in (t.opt_G, t.opt_D):
        assert opt.param_groups[0]["lr"] == 0.0025 and opt.param_groups[0]["betas"] == (0.0, 0.99)
    calls = []
    step = type(t.opt_D).step
    t.opt_D.step = lambda *a, **k: (calls.append(1), step(t.opt_D, *a, **k))[1]
    stats = t.train_step(0)
    assert "loss/r1" in stats and len(calls) == 1  # R1 added to the one D step of the minibatch


def test_paper256_minibatch_stddev_group():
    # StyleGAN2-ADA's paper256/paper512 configurations: mbstd group 8; tiny follows "auto" (4).
    assert sg.CONFIGS["default"].mbstd_group == sg.CONFIGS["paper512"].mbstd_group == 8
    assert sg.CONFIGS["tiny"].mbstd_group == 4
    # The aug_* defaults are AugmentParams' own.
    assert sg.Config().augment_params() == AugmentParams()


# ---------------------------------------------------------------- loss

class CubeD(torch.nn.Module):
    """D(x) = Σ x³ per sample: ∇D = 3x², so R1 = 9 Σ x⁴ (an independent closed form)."""

    def forward(self, x):
        return x.pow(3).sum(dim=(1, 2, 3))


class ConstD(torch.nn.Module):
    """D that always answers ``value`` (still a function of x, so autograd works)."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return self.value + 0.0 * x.sum(dim=(1, 2, 3))


def make(cfg_kw=None, D=None, shape=(64, 128)):
    cfg = small_cfg(**(cfg_kw or {}))
    G, D0 = sg.build(cfg, shape)
    return cfg, G, D or D0, sg.make_loss(cfg, G, D or D0)


def test_r1_equals_closed_form():
    from pianogan.losses.stylegan2 import r1_penalty

    torch.manual_seed(0)
    real = (torch.rand(3, 1, 8, 16) * 2 - 1).requires_grad_(True)
    r1 = r1_penalty(real, CubeD()(real))
    torch.testing.assert_close(r1, 9 * real.detach().pow(4).sum(dim=(1, 2, 3)))


@pytest.mark.parametrize("augment", ["none", "time_shift"])
def test_d_loss_adds_lazy_r1(augment):
    """d_loss = softplus terms + interval·γ/2·mean R1 on R1 steps only; R1 is taken w.r.t. the
    un-augmented reals, and a circular time shift (a permutation) leaves it unchanged."""
    kw = dict(r1_gamma=0.7, r1_interval=16, style_mixing_prob=0.0)
    if augment == "none":
        kw["augment"] = "none"
    else:  # time shifts only, always
        kw.update(augment="fixed", aug_p=1.0, aug_time_stretch=0.0, aug_freq_shift=0.0, aug_gain=0.0,
                  aug_noise=0.0, aug_time_mask=0.0, aug_freq_mask=0.0)
    cfg, G, D, loss = make(kw, D=CubeD(), shape=(8, 16))
    torch.manual_seed(1)
    real = torch.rand(4, 1, 8, 16) * 2 - 1
    z = G.sample_z(4)
    with torch.no_grad():
        fake = G(z)  # noise draws differ from the loss's; recompute its D term from its stats

    total, stats = loss.d_loss(real, z, step=32)
    r1_ref = 9 * real.pow(4).sum(dim=(1, 2, 3)).mean()
    assert stats["loss/r1"] == pytest.approx(r1_ref.item(), rel=1e-5)
    main = stats["loss/D_real"] + stats["loss/D_fake"]
    assert total.item() == pytest.approx(main + 16 * 0.35 * r1_ref.item(), rel=1e-5)
    if augment == "none":  # D/real is the exact logit mean without augmentation
        assert stats["loss/D_real"] == pytest.approx(
            torch.nn.functional.softplus(-CubeD()(real)).mean().item(), rel=1e-5)
    total, stats = loss.d_loss(real, z, step=33)  # not an R1 step
    assert "loss/r1" not in stats
    assert total.item() == pytest.approx(stats["loss/D_real"] + stats["loss/D_fake"], rel=1e-6)
    assert fake.shape == real.shape


def test_one_step_of_each_loss_trains():
    torch.manual_seed(0)
    cfg, G, D, loss = make({"pl_weight": 2.0, "pl_interval": 1, "aug_p": 0.5})
    real = torch.rand(4, 1, 64, 128) * 2 - 1
    d, st = loss.d_loss(real, G.sample_z(4), step=0)
    d.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())
    assert "loss/r1" in st and 0 <= st["ada/p"] <= 1
    G.zero_grad()
    w_avg = G.w_avg.clone()
    g, st = loss.g_loss(G.sample_z(4), step=0)
    g.backward()
    assert {"loss/G", "loss/pl", "pl/mean"} <= set(st) and loss.pl_mean > 0
    assert G.mapping.layers[0].weight.grad.abs().sum() > 0
    assert not torch.equal(G.w_avg, w_avg)  # g_loss tracks the average w


class LinearG(torch.nn.Module):
    """img = (Σ_layers ws) A, reshaped: J_wᵀ y = Aᵀ-products known in closed form."""

    z_dim, num_ws, latent = 3, 2, "normal"

    def __init__(self):
        super().__init__()
        self.A = torch.nn.Parameter(torch.randn(3, 8 * 16))

    def sample_z(self, n, generator=None, device=None):
        return torch.randn(n, 3)

    def forward(self, z, return_ws=False, **kw):
        ws = z.unsqueeze(1).repeat(1, self.num_ws, 1).requires_grad_(True)
        img = (ws.sum(1) @ self.A).view(-1, 1, 8, 16)
        return (img, ws) if return_ws else img


def test_path_length_equals_closed_form():
    from pianogan.losses.stylegan2 import StyleGAN2Loss

    cfg = small_cfg(style_mixing_prob=0.0, pl_batch_shrink=1, pl_decay=0.5)
    G = LinearG()
    loss = StyleGAN2Loss(cfg, G, CubeD())
    z = torch.randn(5, 3)
    torch.manual_seed(3)
    pen, batch_mean = loss._path_length(z)
    torch.manual_seed(3)
    y = torch.randn(5, 1, 8, 16) / math.sqrt(8 * 16)
    lengths = (y.view(5, -1) @ G.A.detach().t()).norm(dim=1)  # |A y| for every layer's w
    assert batch_mean == pytest.approx(lengths.mean().item(), rel=1e-5)
    a = 0.5 * lengths.mean().item()  # running mean from 0 with decay 0.5
    assert loss.pl_mean == pytest.approx(a, rel=1e-5)
    assert pen.item() == pytest.approx((lengths - a).square().mean().item(), rel=1e-4)


def test_ada_p_rises_when_d_overfits_and_falls_when_not():
    kw = dict(ada_kimg=0.1, ada_interval=4, ada_target=0.6, r1_gamma=0.0, style_mixing_prob=0.0)
    real = torch.rand(8, 1, 64, 128) * 2 - 1
    # D is always sure the reals are real: sign(D(real)) = +1 > 0.6 -> p rises, by 32/100 per 4 steps
    _, G, _, loss = make(kw, D=ConstD(5.0))
    ps = []
    for step in range(16):
        loss.d_loss(real, G.sample_z(8), step)
        ps.append(loss.augment.p)
    assert ps[2] == 0.0 and ps[3] == pytest.approx(0.32) and ps[7] == pytest.approx(0.64)
    assert ps[15] == 1.0  # clamped
    # D no better than chance (signs average 0) or wrong (-1): p falls back to 0
    for value in (torch.tensor([1.0, -1.0] * 4), -1.0):
        _, G, _, loss = make({**kw, "aug_p": 0.5}, D=ConstD(value))
        for step in range(8):
            loss.d_loss(real, G.sample_z(8), step)
        assert loss.augment.p == 0.0 and loss.ada.last_rt <= 0.0
    # fixed and none do not adapt
    _, G, _, loss = make({**kw, "augment": "fixed", "aug_p": 0.3}, D=ConstD(5.0))
    for step in range(8):
        loss.d_loss(real, G.sample_z(8), step)
    assert loss.augment.p == 0.3


def test_loss_state_round_trip_resumes_exactly():
    kw = dict(ada_kimg=0.5, ada_interval=4, r1_gamma=0.0, pl_weight=1.0, pl_interval=1)
    real = torch.rand(4, 1, 64, 128) * 2 - 1
    _, G, _, loss = make(kw, D=ConstD(3.0))
    for step in range(6):  # stops mid-interval: the accumulator holds 2 steps
        loss.d_loss(real, G.sample_z(4), step)
    loss.g_loss(G.sample_z(4), 0)
    state = loss.state_dict()
    state = torch.load(_roundtrip(state), weights_only=True)  # plain values only
    _, _, _, other = make(kw, D=ConstD(3.0))
    other.load_state_dict(state)
    assert other.state_dict() == loss.state_dict()
    for step in range(6, 10):
        loss.d_loss(real, G.sample_z(4), step)
        other.d_loss(real, G.sample_z(4), step)
        assert other.augment.p == loss.augment.p
    assert loss.augment.p > 0


def _roundtrip(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


# ---------------------------------------------------------------- with the trainer

def test_trainer_resume_is_exact(tmp_path):
    """Interrupted + resumed = uninterrupted: weights, EMA, losses, ADA p and path-length mean."""
    from pianogan.train.checkpoint import latest_checkpoint
    from pianogan.train.trainer import train

    data = td.write_synthetic_dataset(tmp_path / "ds", n=64, preset=td.SMALL)
    config = {"base": "tiny", "model": {"batch_size": 8, "r1_interval": 3, "pl_weight": 2.0,
                                         "pl_interval": 2, "ada_interval": 2, "ada_kimg": 0.2}}
    kw = dict(config=config, sample_every=0, sample_images=0, progress=False, log_every=1)
    train("stylegan2", data, tmp_path / "a", steps=8, ckpt_every=8, **kw)
    train("stylegan2", data, tmp_path / "b", steps=5, ckpt_every=5, **kw)
    train("stylegan2", data, tmp_path / "b", steps=8, ckpt_every=8, resume=True, **kw)
    a, b = (torch.load(latest_checkpoint(tmp_path / r), weights_only=True) for r in "ab")
    assert a["step"] == b["step"] == 8
    assert a["loss_state"] == b["loss_state"] and a["loss_state"]["ada"]["p"] > 0
    assert a["loss_state"]["pl_mean"] > 0
    for key in ("G", "D", "G_ema"):
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), f"{key}.{name}"
    assert torch.count_nonzero(a["G_ema"]["w_avg"]) > 0  # the EMA generator carries w_avg


@pytest.mark.slow
def test_tiny_run_moves_generated_images_towards_real(tmp_path):
    """A real learning test (as the trainer's for dcgan/specgan): a short CPU run of the tiny
    configuration brings the EMA generator's images far closer to unseen real ones."""
    from pianogan.train.checkpoint import load_generator
    from pianogan.train.config import resolve_config
    from pianogan.train.trainer import train

    steps = 150
    data = td.write_synthetic_dataset(tmp_path / "ds", n=512, preset=td.SMALL)
    summary = train("stylegan2", data, tmp_path / "run", config="tiny", steps=steps, ckpt_every=steps,
                    sample_every=0, sample_images=0, progress=False)
    G, info = load_generator(tmp_path / "run")
    assert info["step"] == steps and info["model"] == "stylegan2"
    torch.manual_seed(0)
    G0, _ = sg.build(resolve_config("stylegan2", "tiny")[0], td.SMALL.image_shape)
    G0.eval()
    fd0, fd1 = td.distance_to_real(G0), td.distance_to_real(G)  # unseen clips
    print(f"stylegan2 tiny ({summary['amp']}): FD untrained {fd0:.3f} -> trained {fd1:.3f}")
    assert fd1 < fd0 / 5


def _ddp_worker(rank: int, port: int, data: str, tmp: str) -> None:
    import os

    torch.set_num_threads(1)
    from pianogan.train.trainer import Trainer

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"})
    t = Trainer("stylegan2", data, f"{tmp}/run",
                config={"base": "tiny", "model": {"r1_interval": 2, "pl_weight": 2.0, "pl_interval": 2,
                                                   "ada_interval": 2, "ada_kimg": 0.1}},
                overrides={"steps": 4, "batch_size": 8, "ckpt_every": 4, "sample_every": 0,
                           "sample_images": 0, "device": "cpu"}, progress=False)
    t.run()
    torch.save({"G": t.G.state_dict(), "D": t.D.state_dict(), "loss": t.loss.state_dict()},
               f"{tmp}/rank{rank}.pt")


def test_two_process_run_keeps_ranks_identical(tmp_path):
    """DDP (gloo, as torchrun starts it): ADA's r_t and the path-length mean are averaged over
    the processes, so p, pl_mean, w_avg and all weights stay identical on both ranks."""
    import torch.multiprocessing as mp

    data = td.write_synthetic_dataset(tmp_path / "ds", n=32, preset=td.SMALL)
    mp.spawn(_ddp_worker, args=(td.free_port(), str(data), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert r0["loss"] == r1["loss"] and r0["loss"]["ada"]["p"] > 0 and r0["loss"]["pl_mean"] > 0
    for part in ("G", "D"):
        for k in r0[part]:
            assert torch.equal(r0[part][k], r1[part][k]), (part, k)
