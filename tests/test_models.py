"""DCGAN and SpecGAN networks: shapes at any preset size, latents, the architecture rules the
paper's code broke (activation before tanh, giant dense layer, batch norm in D)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from pianogan.errors import PianoGANError
from pianogan.models import MODELS, get_model

SHAPES = [(64, 128), (128, 64), (256, 256), (512, 512), (100, 80)]


def test_registry():
    assert set(MODELS) == {"dcgan", "specgan", "stylegan2", "longform"}
    assert get_model("dcgan").__name__ == "pianogan.models.dcgan"
    with pytest.raises(PianoGANError, match="unknown model 'gan'"):
        get_model("gan")


@pytest.mark.parametrize("name", ["dcgan", "specgan"])
@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_any_size(name, shape):
    m = get_model(name)
    torch.manual_seed(0)
    G, D = m.build(m.CONFIGS["tiny"], shape)
    assert G.image_shape == shape and G.z_dim == 100
    z = G.sample_z(3)
    assert z.shape == (3, 100)
    x = G(z, truncation_psi=0.5)  # unknown keyword arguments are ignored
    assert x.shape == (3, 1, *shape)
    assert x.abs().max() <= 1.0 and x.std() > 0
    assert D(x).shape == (3,)


@pytest.mark.parametrize("name", ["dcgan", "specgan"])
def test_config_round_trip_and_presets(name):
    m = get_model(name)
    assert {"default", "tiny"} <= set(m.CONFIGS)
    for cfg in m.CONFIGS.values():
        d = dataclasses.asdict(cfg)
        assert m.Config(**d) == cfg
        assert m.Config(**json.loads(json.dumps(d))) == cfg  # betas come back as a list
    c = m.CONFIGS["default"]
    assert (c.z_dim, c.lr_g, c.lr_d, c.betas) == (100, 1e-4, 1e-4, (0.5, 0.9))


def test_paper_hyperparameters():
    dc, sg = get_model("dcgan").CONFIGS["default"], get_model("specgan").CONFIGS["default"]
    assert (dc.batch_size, dc.grad_clip, dc.n_critic) == (32, 1.0, 1)
    assert dc.label_flip_prob > 0 and dc.label_smoothing > 0 and dc.instance_noise > 0
    assert (sg.batch_size, sg.n_critic, sg.gp_weight, sg.d, sg.kernel_size) == (64, 5, 10.0, 64, 5)


def test_latent_distributions():
    torch.manual_seed(0)
    G_dc, _ = get_model("dcgan").build(get_model("dcgan").CONFIGS["tiny"], (64, 128))
    G_sg, _ = get_model("specgan").build(get_model("specgan").CONFIGS["tiny"], (64, 128))
    assert G_dc.latent == "normal" and G_sg.latent == "uniform"
    z = G_sg.sample_z(4000)
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.99 and abs(z.mean()) < 0.02
    z = G_dc.sample_z(4000)
    assert abs(z.std() - 1) < 0.02 and z.min() < -3
    # Seeded generators give the same latents.
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(G_sg.sample_z(3, generator=g1), G_sg.sample_z(3, generator=g2))


@pytest.mark.parametrize("name", ["dcgan", "specgan"])
def test_paper_defects_absent(name):
    m = get_model(name)
    G, D = m.build(m.CONFIGS["default"], (512, 512))
    # The generator's last layers: a (transposed) convolution straight into tanh.
    last = list(G.body)
    assert isinstance(last[-1], nn.Tanh) and isinstance(last[-2], (nn.Conv2d, nn.ConvTranspose2d))
    # No giant dense layer (the paper's code: 100 -> 512*512, 26 M weights).
    assert G.fc.out_features <= 1024 * 7 * 7 and G.fc.weight.numel() < 2_000_000
    # SpecGAN's critic has no batch statistics at all (they would break the per-sample penalty).
    if name == "specgan":
        assert not any(isinstance(mod, nn.modules.batchnorm._NormBase) for mod in D.modules())
    # 5x5 kernels for SpecGAN, 4x4 for DCGAN; no batch norm at all in SpecGAN.
    convs = [mod for mod in D.modules() if isinstance(mod, nn.Conv2d)]
    assert {c.kernel_size for c in convs} == ({(5, 5)} if name == "specgan" else {(4, 4)})
    if name == "specgan":
        assert not any(isinstance(mod, nn.modules.batchnorm._NormBase) for mod in G.modules())


def test_specgan_matches_donahue_at_128():
    """At 128x128 the default SpecGAN is Donahue et al.'s d=64 model: 5 stages, 1024 at 4x4."""
    m = get_model("specgan")
    G, D = m.build(m.CONFIGS["default"], (128, 128))
    assert G.seed == (4, 4) and G.c0 == 1024
    chans = [c.out_channels for c in D.modules() if isinstance(c, nn.Conv2d)]
    assert chans == [64, 128, 256, 512, 1024]
    assert D.fc.in_features == 1024 * 16


def test_too_small_shape_is_a_clear_error():
    m = get_model("dcgan")
    with pytest.raises(PianoGANError, match="not supported"):
        m.build(m.CONFIGS["tiny"], (4, 128))
    with pytest.raises(PianoGANError, match="g_norm"):
        m.Config(g_norm="layer")


def test_dcgan_batch_norm_never_mixes_real_and_fake():
    m = get_model("dcgan")
    torch.manual_seed(0)
    G, D = m.build(m.CONFIGS["default"], (64, 128))
    bns = [mod for mod in D.modules() if isinstance(mod, nn.BatchNorm2d)]
    assert bns  # Radford et al.'s discriminator
    seen = []
    for bn in bns:
        bn.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].shape[0]))
    loss = m.make_loss(m.CONFIGS["default"], G, D)
    real = torch.rand(3, 1, 64, 128) * 2 - 1
    loss.d_loss(real, G.sample_z(3), step=0)
    assert seen and set(seen) == {3}  # real and fake went through D in separate batches of 3
    # Without batch norm one pass over both is the same function, and cheaper.
    G2, D2 = m.build(m.Config(d_norm="none"), (64, 128))
    assert not m.make_loss(m.Config(d_norm="none"), G2, D2).separate_passes
