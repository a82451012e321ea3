"""Mixed precision keeps every network's function: under bf16 autocast (what ``train`` uses on
CPUs with AVX-512 BF16 or AMX, and on CUDA) each layer of each family computes what it does in
fp32, to bf16's rounding. torch 2.13.0's oneDNN convolution got one shape wrong on such CPUs, the
roll critic's pitch-class view (models/layers.py: PatchConv1d); the scan here finds the next one
on the machine that has it. (On a CPU without native bf16 the reference kernels run: the scan
then checks the layers' wiring, not oneDNN.)"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pianogan.models import MODELS, get_model
from pianogan.models.layers import PatchConv1d

LAYERS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)
# bf16 keeps 8 significant bits: a layer's output is off by ~0.3 % of its norm, a whole
# network's by up to ~4 % (the note head's thresholds); the faulty kernel put its layer off by
# 110 % and the roll critic's output by 92 %.
TOL, TOL_NET = 0.02, 0.1


def bf16_errors(net: nn.Module, call) -> dict[str, float]:
    """Run ``call()`` (a forward pass through ``net``) in fp32, recording each Conv/Linear's
    input; then each layer's relative error (output norm) under bf16 autocast on that input."""
    seen: dict[str, torch.Tensor] = {}
    names = {m: n for n, m in net.named_modules()}

    def record(m, inputs, output):  # the first call's input; returns None: the output stands
        seen.setdefault(names[m], inputs[0].detach().float())

    hooks = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, LAYERS)]
    try:
        with torch.no_grad():
            call()
    finally:
        for h in hooks:
            h.remove()
    layers = dict(net.named_modules())
    errors = {}
    with torch.no_grad():
        for name, x in seen.items():
            m = layers[name]
            ref = m(x)
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                got = m(x).float()
            errors[name] = float((got - ref).norm() / (ref.norm() + 1e-12))
    return errors


def test_patch_conv_is_the_strided_conv():
    torch.manual_seed(0)
    patch, conv = PatchConv1d(24, 32, 4), nn.Conv1d(24, 32, 4, stride=4)
    conv.load_state_dict(patch.state_dict())  # same parameters, same names
    x = torch.randn(3, 24, 42, requires_grad=True)  # 42: a remainder of 2 frames is dropped, as conv does
    y = patch(x)
    assert y.shape == conv(x).shape == (3, 32, 10)
    torch.testing.assert_close(y, conv(x), atol=1e-5, rtol=1e-5)
    g_patch = torch.autograd.grad(y.square().sum(), (x, patch.weight))
    g_conv = torch.autograd.grad(conv(x).square().sum(), (x, conv.weight))
    for a, b in zip(g_patch, g_conv):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("c_in", [16, 24, 48])  # 16 and 24 hit the faulty oneDNN kernel
def test_patch_conv_keeps_its_function_under_bf16(c_in):
    torch.manual_seed(0)
    patch = PatchConv1d(c_in, 64, 4)
    assert bf16_errors(patch, lambda: patch(torch.randn(8, c_in, 320)))[""] < TOL


def _family_calls(name: str):
    """[(net, call)]: family ``name``'s small G and D, each with a forward pass through it."""
    family = get_model(name)
    torch.manual_seed(0)
    if name == "longform":
        from test_longform import PRESET, small_cfg

        cfg = small_cfg(styles=("a", "b"), beat_clock=True, roll_degrees=True, roll_pulse=True)
        G, D = family.build(cfg, PRESET.image_shape)
        z, labels = G.sample_z(4), torch.tensor([0, 1, 0, 1])
        beats = torch.tensor([[7.0, 0.5]] * 4)
        img, notes = G(z, labels, notes=True, beats=beats)
        return [(G, lambda: G(z, labels, notes=True, beats=beats)),
                      (D, lambda: D(img.detach(), labels, notes=D.roll_view([n.detach() for n in notes]),
                                    beats=beats))]
    G, D = family.build(family.CONFIGS["tiny"], (64, 128))
    z = G.sample_z(4)
    img = G(z).detach()
    return [(G, lambda: G(z)), (D, lambda: D(img))]


def _tensors(out) -> list[torch.Tensor]:
    return [out.float()] if torch.is_tensor(out) else [t for o in out for t in _tensors(o)]


@pytest.mark.parametrize("name", MODELS)
def test_every_layer_keeps_its_function_under_bf16(name):
    """Each Conv/Linear on its own input, and each network's outputs as a whole (StyleGAN2's
    modulated convolutions are functional, seen only there)."""
    for net, call in _family_calls(name):
        net.train()  # the same noise draws in both passes below
        what = f"{name} {type(net).__name__}"
        bad = {k: round(v, 3) for k, v in bf16_errors(net, call).items() if v > TOL}
        assert not bad, f"{what}: layers off under bf16 autocast: {bad}"
        with torch.no_grad():
            torch.manual_seed(1)
            ref = _tensors(call())
            torch.manual_seed(1)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                got = _tensors(call())
        for i, (a, b) in enumerate(zip(ref, got)):
            err = float((b - a).norm() / (a.norm() + 1e-12))
            assert err < TOL_NET, f"{what}: output {i} off by {err:.3f} under bf16 autocast"
