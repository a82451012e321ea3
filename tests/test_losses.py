"""WGAN-GP's per-sample gradient penalty and the BCE loss's tricks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pianogan.losses.bce import BCELoss
from pianogan.losses.wgan_gp import WGANGPLoss, gradient_penalty
from pianogan.models import get_model, layers


class LinearCritic(nn.Module):
    """D(x) = <w, x> + b: its input gradient is w for every sample."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1) + 0.5


def test_gp_known_linear_case():
    torch.manual_seed(0)
    w = torch.randn(1, 4, 4) * 0.3
    D = LinearCritic(w)
    real, fake = torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4)
    gp, norms = gradient_penalty(D, real, fake, weight=10.0)
    wn = w.norm()
    assert torch.allclose(norms, wn.expand(5), atol=1e-6)
    assert gp.item() == pytest.approx(10 * (wn.item() - 1) ** 2, rel=1e-5)
    # The paper's version took one norm over the whole batch: sqrt(B) * |w| instead.
    whole = 10 * (torch.sqrt(torch.tensor(5.0)) * wn - 1) ** 2
    assert abs(whole.item() - gp.item()) > 1.0


def test_gp_equals_independent_per_sample_computation():
    torch.manual_seed(0)
    m = get_model("specgan")
    G, D = m.build(m.CONFIGS["tiny"], (64, 64))
    real = torch.rand(4, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        fake = G(G.sample_z(4))
    eps = torch.rand(4)
    gp, norms = gradient_penalty(D, real, fake, weight=10.0, eps=eps)
    # Independently: each interpolate through D alone, its own gradient, its own norm.
    ref_norms = []
    for i in range(4):
        x = (eps[i] * real[i:i + 1] + (1 - eps[i]) * fake[i:i + 1]).requires_grad_(True)
        (g,) = torch.autograd.grad(D(x).sum(), x)
        ref_norms.append(torch.sqrt((g.double() ** 2).sum()))
    ref_norms = torch.stack(ref_norms)
    ref_gp = 10 * ((ref_norms - 1) ** 2).mean()
    assert torch.allclose(norms.double(), ref_norms, rtol=1e-4)
    assert gp.item() == pytest.approx(ref_gp.item(), rel=1e-4)
    # ... and not the whole-batch norm of the paper's code.
    whole = 10 * (torch.sqrt((ref_norms ** 2).sum()) - 1) ** 2
    assert abs(whole.item() - gp.item()) > 1e-3 * max(1.0, gp.item())
    # The penalty trains D: it has a gradient with respect to D's weights.
    gp.backward()
    assert D.fc.weight.grad is not None and D.fc.weight.grad.abs().sum() > 0


def test_wgan_gp_loss_values():
    torch.manual_seed(0)
    m = get_model("specgan")
    G, D = m.build(m.CONFIGS["tiny"], (64, 64))
    loss = WGANGPLoss(G, D, n_critic=5, gp_weight=10.0)
    real = torch.rand(4, 1, 64, 64) * 2 - 1
    d, st = loss.d_loss(real, G.sample_z(4), step=0)
    assert d.item() == pytest.approx(st["D/fake"] - st["D/real"] + st["loss/gp"], rel=1e-4, abs=1e-5)
    assert st["loss/gp"] >= 0 and loss.n_critic == 5
    g, st = loss.g_loss(G.sample_z(4), step=0)
    assert st["loss/G"] == pytest.approx(g.item())


def test_bce_targets_and_noise():
    loss = BCELoss(nn.Identity(), nn.Identity(), label_flip_prob=0.0, label_smoothing=0.1,
                   instance_noise=0.2, instance_noise_steps=100)
    t_real, t_fake = loss.targets(8, "cpu")
    assert torch.allclose(t_real, torch.full((8,), 0.9)) and torch.equal(t_fake, torch.zeros(8))
    assert loss.noise_std(0) == pytest.approx(0.2) and loss.noise_std(50) == pytest.approx(0.1)
    assert loss.noise_std(200) == 0.0
    torch.manual_seed(0)
    loss.label_flip_prob = 0.3
    t_real, t_fake = loss.targets(10000, "cpu")
    flipped = (t_real == 0)
    assert 0.27 < flipped.float().mean() < 0.33
    assert torch.all(t_fake[flipped] == 0.9) and torch.all(t_fake[~flipped] == 0)


def test_bce_loss_values():
    torch.manual_seed(0)
    m = get_model("dcgan")
    G, D = m.build(m.CONFIGS["tiny"], (64, 64))
    loss = m.make_loss(m.CONFIGS["tiny"], G, D)
    real = torch.rand(4, 1, 64, 64) * 2 - 1
    d, st = loss.d_loss(real, G.sample_z(4), step=0)
    # An untrained D is unsure: both BCE terms near log 2.
    assert st["loss/D"] == pytest.approx(d.item())
    assert 0.3 < st["loss/D_real"] < 1.2 and 0.3 < st["loss/D_fake"] < 1.2
    assert 0 < st["D/real"] < 1 and 0 < st["D/fake"] < 1
    g, st = loss.g_loss(G.sample_z(4), step=0)
    assert st["loss/G"] == pytest.approx(g.item()) and g.requires_grad


class _AutogradOnly(nn.Module):
    """``net`` without its ``input_gradient``: the penalty then takes autograd's double backward."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def test_fast_layers_give_the_same_critic_gradients():
    """SpecGAN's speed-ups (GEMM convolutions on small maps, a LeakyReLU without the wasted
    double-backward pass, the written-out critic gradient) change speed only: the same loss
    and weight gradients as stock layers under autograd's double backward."""
    import copy

    torch.manual_seed(0)
    m = get_model("specgan")
    G, D = m.build(m.Config(d=4, max_channels=16), (32, 32))
    G, D = G.double(), D.double()
    # The GEMM path is taken: G's first layer reads and D's last layer writes a 4x4 map.
    assert G.seed == (4, 4) and 16 <= layers.GEMM_MAX_PIXELS
    D_plain = _AutogradOnly(layers.to_stock(copy.deepcopy(D)))
    assert not any(type(x).__module__.startswith("pianogan") for x in D_plain.net.modules()
                   if x is not D_plain.net and not isinstance(x, nn.Sequential))
    real = torch.rand(3, 1, 32, 32, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        fake = G(G.sample_z(3).double())
        z = G.sample_z(3).double()
        assert torch.allclose(layers.to_stock(copy.deepcopy(G))(z), G(z), atol=1e-12)
    eps = torch.rand(3, dtype=torch.float64)
    grads = []
    for net in (D, D_plain):
        gp, _ = gradient_penalty(net, real, fake, 10.0, eps=eps)
        loss = net(fake).mean() - net(real).mean() + gp
        grads.append(torch.autograd.grad(loss, list(net.parameters())))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("shape, channels_last", [((40, 72), False), ((33, 50), False),
                                                   ((64, 64), True)])
def test_written_out_critic_gradient_equals_double_backward(shape, channels_last):
    """SpecGAN's critic computes ∇x D(x) by hand for the penalty: the same gradient, the same
    penalty and the same weight gradients as autograd's double backward, on shapes whose
    layers need output padding (odd sides) and in channels-last memory."""
    torch.manual_seed(1)
    m = get_model("specgan")
    _, D = m.build(m.Config(d=4, max_channels=16), shape)
    D = D.double()
    real = torch.rand(3, 1, *shape, dtype=torch.float64) * 2 - 1
    fake = torch.rand(3, 1, *shape, dtype=torch.float64) * 2 - 1
    if channels_last:
        D = D.to(memory_format=torch.channels_last)
        real, fake = (t.contiguous(memory_format=torch.channels_last) for t in (real, fake))
    eps = torch.rand(3, dtype=torch.float64)
    x = (real + fake) / 2
    g_hand = D.input_gradient(x)
    (g_auto,) = torch.autograd.grad(D(x.requires_grad_(True)).sum(), x)
    assert g_hand.shape == x.shape and torch.allclose(g_hand, g_auto, rtol=1e-10, atol=1e-14)
    results = []
    for net in (D, _AutogradOnly(D)):
        gp, norms = gradient_penalty(net, real, fake, 10.0, eps=eps)
        grads = torch.autograd.grad(gp, list(D.parameters()), allow_unused=True)
        results.append((gp, norms, grads))
    (gp_a, n_a, g_a), (gp_b, n_b, g_b) = results
    assert gp_a.item() == pytest.approx(gp_b.item(), rel=1e-10)
    assert torch.allclose(n_a, n_b, rtol=1e-10)
    for a, b in zip(g_a, g_b):
        # The conv biases only move the slope masks: no penalty gradient either way.
        a = torch.zeros((), dtype=torch.float64) if a is None else a
        b = torch.zeros((), dtype=torch.float64) if b is None else b
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-14)
    assert g_a[-2].abs().sum() > 0  # fc.weight: the penalty does train D
