"""The piano renderer's decays: FFT product (what ships) against the depthwise convolution it
replaced, in one run, forward + backward of ``PianoRenderer.magnitude`` as a training step runs
it (the shipped model's renderer, batch 16, 320 frames = 10 s at 8 kHz, bf16 autocast where the
CPU has native bf16, as the trainer does).

Baseline = the former ``decay_filter``: the input repeated once per decay and one depthwise
``conv1d`` with the 125-frame kernel (bf16 under autocast). Writes
benchmarks/results/render.json.
"""

from __future__ import annotations

import argparse
import statistics
import time

ARGS = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ARGS.add_argument("--quick", action="store_true", help="fewer repeats")
ARGS.add_argument("--batch", type=int, default=16)
ARGS.add_argument("--frames", type=int, default=320)
OPTS = ARGS.parse_args()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from pianogan.models import piano_render  # noqa: E402
from pianogan.pretrained import load_pretrained  # noqa: E402
from pianogan.train.precision import autocast, autocast_dtype  # noqa: E402
from run_all import cpu_name, write_result  # noqa: E402

SHIPPED = piano_render.decay_filter


def conv_decay_filter(x: torch.Tensor, tau: torch.Tensor, length: int) -> torch.Tensor:
    """The former implementation: one depthwise convolution over the input repeated per decay."""
    b = tau.shape[0] if tau.dim() == 2 else 1
    n, c, t = x.shape
    j = torch.arange(length, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-j.flip(0)[None, :] / tau.reshape(-1).to(x.dtype)[:, None])
    y = F.conv1d(F.pad(x.repeat(1, b, 1), (length - 1, 0)), kernel.unsqueeze(1), groups=b * c)
    return y.view(n, b, c, t) if tau.dim() == 2 else y


def time_step(render, onsets, gate, dtype, repeats: int) -> list[float]:
    """Wall seconds of `repeats` forward + backward passes (after one warm-up)."""
    out = []
    for i in range(repeats + 1):
        render.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        with autocast(torch.device("cpu"), dtype):
            mag = render.magnitude(onsets, gate)
        mag.float().log().mean().backward()
        if i:
            out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    G, _ = load_pretrained("piano-longform")
    render = G.render.train().requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    shape = (OPTS.batch, 88, OPTS.frames)
    onsets = torch.rand(shape, generator=g) ** 8 * (torch.rand(shape, generator=g) < 0.02)
    gate = (torch.rand(shape, generator=g) > 0.3).float()
    dtype = autocast_dtype("auto", torch.device("cpu"))
    repeats = 3 if OPTS.quick else 8
    times = {}
    for name, fn in (("conv", conv_decay_filter), ("fft", SHIPPED), ("conv_again", conv_decay_filter),
                     ("fft_again", SHIPPED)):  # interleaved, so a drift in load hits both alike
        piano_render.decay_filter = fn
        times[name] = time_step(render, onsets, gate, dtype, repeats)
    piano_render.decay_filter = SHIPPED
    conv = statistics.median(times["conv"] + times["conv_again"])
    fft = statistics.median(times["fft"] + times["fft_again"])
    print(f"renderer fwd + bwd, batch {OPTS.batch} x {OPTS.frames} frames, autocast {dtype}: "
          f"convolution {conv * 1e3:.0f} ms, FFT {fft * 1e3:.0f} ms, {conv / fft:.2f}x")
    write_result("render", {"cpu": cpu_name(), "threads": torch.get_num_threads(), "autocast": str(dtype),
                            "batch": OPTS.batch, "frames": OPTS.frames, "conv_s": conv, "fft_s": fft,
                            "speedup": conv / fft, "times": times})


if __name__ == "__main__":
    main()
