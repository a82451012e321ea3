"""Generation speed: clips per second and real-time factor, short clips and one long piece.

For each preset, an untrained SpecGAN generator ("tiny" widths, so the numbers are dominated by
phase retrieval, as they are for a trained one) makes N clips of the model's length, batched,
and one long continuous piece (magnitudes joined, one streamed Griffin-Lim over the whole piece).
Reported: wall seconds, clips/s, real-time factor (seconds of audio per wall second), and the
share of time spent in the generator. One thread, like a busy 2-core machine's fair share.

    python benchmarks/bench_generate.py [--quick]     -> benchmarks/results/generate.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_all import cpu_name, write_result  # noqa: E402

from pianogan.config import get_preset  # noqa: E402
from pianogan.generate import GenerateSettings, draw_latents, generate, render_images  # noqa: E402
from pianogan.phase import GLSettings  # noqa: E402
from pianogan.spectrogram import Stats  # noqa: E402


def model_for(preset):
    from pianogan.models import get_model

    fam = get_model("specgan")
    torch.manual_seed(0)
    G, _ = fam.build(fam.CONFIGS["tiny"], preset.image_shape)
    info = {"model": "specgan", "model_config": {}, "preset": preset,
            "stats": Stats(mean=-4.0, std=2.0), "step": 0, "path": ""}
    return G.eval(), info


def bench(preset_name: str, n: int, long_seconds: float, n_iter: int) -> dict:
    preset = get_preset(preset_name)
    G, info = model_for(preset)
    settings = GenerateSettings(gl=GLSettings(n_iter=n_iter))
    generate(G, info, n=1, settings=settings, progress=False)  # warm-up
    t0 = time.perf_counter()
    render_images(G, draw_latents(G, 0, n), batch_size=16)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    clips = generate(G, info, n=n, settings=settings, progress=False)
    t_all = time.perf_counter() - t0
    audio_s = sum(len(c.audio) / c.sample_rate for c in clips)
    t0 = time.perf_counter()
    [piece] = generate(G, info, n=1, progress=False,
                       settings=GenerateSettings(gl=GLSettings(n_iter=n_iter), seconds=long_seconds))
    t_long = time.perf_counter() - t0
    out = {"preset": preset_name, "image_shape": list(preset.image_shape), "n_iter": n_iter,
           "clips": n, "clip_seconds": preset.clip_seconds, "wall_s": round(t_all, 3),
           "clips_per_s": round(n / t_all, 3), "realtime_factor": round(audio_s / t_all, 2),
           "generator_share": round(t_gen / t_all, 3),
           "long_piece": {"seconds": long_seconds, "clip_images": len(piece.images),
                          "wall_s": round(t_long, 3), "realtime_factor": round(long_seconds / t_long, 2)}}
    print(f"{preset_name:>8} {tuple(preset.image_shape)}: {n} clips of {preset.clip_seconds:g} s in "
          f"{t_all:.2f} s = {n / t_all:.2f} clips/s, {audio_s / t_all:.1f}x real time "
          f"(generator {100 * t_gen / t_all:.0f}%); {long_seconds:g} s piece "
          f"({len(piece.images)} images) in {t_long:.2f} s = {long_seconds / t_long:.1f}x real time")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer clips, small presets only")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = ([("tiny", 8, 20.0)] if args.quick else
             [("tiny", 32, 60.0), ("10s-256", 16, 60.0), ("20s-512", 4, 60.0)])
    print(f"generate on {cpu_name()}, torch {torch.__version__}, 1 thread, Griffin-Lim 64 iterations")
    results = [bench(p, n, s, 64) for p, n, s in cases]
    out = {"cpu": cpu_name(), "machine": platform.machine(), "torch": torch.__version__,
           "threads": 1, "quick": args.quick, "results": results}
    write_result("generate", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
