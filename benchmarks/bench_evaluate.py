"""Evaluation metrics on a synthetic piano set: do they rank real < degraded < noise? And how fast?

Real data: pianogan.synth.piano_piece clips (random keys) on the "tiny" preset, N clips, split
into two halves of n = N/2 by run_evaluation. Each condition below is n clips compared with
real half A, exactly as `pianogan evaluate` does:

  real half B (floor) | fresh clips of the same synth (other seeds) | blurred (Gaussian, 2 px) |
  time-shuffled columns | collapsed (one clip repeated) | untrained SpecGAN "tiny" generator |
  white noise (ceiling)

Then the feature extraction throughput (clips/s, one thread) per preset.

    python benchmarks/bench_evaluate.py [--quick]    -> benchmarks/results/evaluate.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_all import cpu_name, write_result  # noqa: E402

from pianogan.config import get_preset  # noqa: E402
from pianogan.evaluate import image_descriptors, run_evaluation, sample_generator  # noqa: E402
from pianogan.spectrogram import Stats, audio_to_image, audio_to_logmag  # noqa: E402
from pianogan.synth import piano_piece  # noqa: E402


def pieces(preset, seeds) -> np.ndarray:
    return np.stack([piano_piece(preset.clip_seconds, preset.sample_rate, seed=int(s)) for s in seeds])


def untrained_generator(preset, n: int, seed: int) -> np.ndarray | None:
    try:
        from pianogan.models import get_model

        fam = get_model("specgan")
        torch.manual_seed(seed)
        G, _ = fam.build(fam.CONFIGS["tiny"], preset.image_shape)
        return sample_generator(G.eval(), n, seed=seed)
    except Exception as e:  # the model family is another module; report, don't fail
        print(f"(untrained generator skipped: {e})")
        return None


def quality(n_real: int, seed: int) -> dict:
    from scipy import ndimage

    preset = get_preset("tiny")
    t0 = time.perf_counter()
    audio = pieces(preset, range(n_real))
    logmag = audio_to_logmag(torch.from_numpy(audio), preset)
    stats = Stats(float(logmag.mean()), float(logmag.std()), int(logmag.numel()))
    real = audio_to_image(torch.from_numpy(audio), preset, stats).numpy()
    n = n_real // 2
    fresh = audio_to_image(torch.from_numpy(pieces(preset, range(10_000, 10_000 + n))), preset, stats).numpy()
    rng = np.random.default_rng(seed)
    conditions = {
        "fresh same-source clips": fresh,
        "blurred (2 px)": ndimage.gaussian_filter(fresh, (0, 2, 2)),
        "time-shuffled": fresh[:, :, rng.permutation(fresh.shape[2])],
        "collapsed (1 clip x n)": np.repeat(fresh[:1], n, axis=0),
    }
    g = untrained_generator(preset, n, seed)
    if g is not None:
        conditions["untrained SpecGAN tiny"] = g
    print(f"synthesised {n_real + n} clips in {time.perf_counter() - t0:.1f} s; n = {n} per set")
    rows = {}
    base = None
    for name, fake in conditions.items():
        rep = run_evaluation(real, fake, preset, stats, seed=seed, noise=base is None, progress=False)
        if base is None:
            base = rep
            rows["real half B (floor)"] = rep["sets"]["real"]
            noise = rep["sets"]["noise"]
        rows[name] = rep["sets"]["fake"]
    rows["white noise (ceiling)"] = noise
    floor, ceil = rows["real half B (floor)"]["fd"], noise["fd"]
    keys = ["fd", "ndb_k", "mpd_features", "key_clarity", "onset_density",
            "harmonic_share"]
    print(f"\n{'set':28s} {'FD':>8s} {'score':>6s} " + " ".join(f"{k[:10]:>10s}" for k in keys[1:]))
    out = {}
    for name, m in rows.items():
        score = (m["fd"] - floor) / (ceil - floor)
        print(f"{name:28s} {m['fd']:8.2f} {score:6.3f} " + " ".join(f"{m[k]:10.3f}" for k in keys[1:]))
        out[name] = {**{k: m[k] for k in keys}, "fd_score": score}
    return {"preset": "tiny", "n_real": n_real, "n_per_set": n, "bins": base["settings"]["bins"],
            "seed": seed, "sets": out}


def speed(presets: list[str], n: int) -> dict:
    res = {}
    print("\nfeature extraction (image -> 73 descriptors + music measures), one thread:")
    for name in presets:
        preset = get_preset(name)
        audio = pieces(preset, range(n))
        logmag = audio_to_logmag(torch.from_numpy(audio), preset)
        stats = Stats(float(logmag.mean()), float(logmag.std()))
        images = audio_to_image(torch.from_numpy(audio), preset, stats).numpy()
        image_descriptors(images[:2], preset, stats)  # warm-up (numba JIT in librosa)
        t0 = time.perf_counter()
        image_descriptors(images, preset, stats)
        dt = time.perf_counter() - t0
        res[name] = {"clips": n, "seconds": dt, "clips_per_s": n / dt}
        print(f"  {name:8s} {preset.image_height}x{preset.image_width}: {n / dt:7.1f} clips/s")
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer clips (CI smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"bench_evaluate on {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    t0 = time.perf_counter()
    result = {"cpu": cpu_name(), "machine": platform.machine(), "quick": args.quick,
              "quality": quality(120 if args.quick else 400, args.seed),
              "speed": speed(["tiny", "10s-256"] if args.quick else ["tiny", "10s-256", "20s-512"],
                             8 if args.quick else 32)}
    result["seconds"] = time.perf_counter() - t0
    print(f"\ntook {result['seconds']:.0f} s")
    write_result("evaluate", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
