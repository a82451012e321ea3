"""Long pieces: peak memory of `generate --seconds T` streamed vs one Griffin-Lim over the whole
piece, and whether the block borders of the streamed inversion can be heard.

Each case runs in its own process (peak RSS from getrusage): an untrained tiny SpecGAN makes one
piece of T seconds with the default Griffin-Lim and writes it (`write_outputs`, no PNGs). "one-shot"
sets the block size past the piece's length, i.e. one Griffin-Lim over all of it, as before
streaming. For the streamed piece: the excess spectral flux (flux of the output's |STFT| minus that
of the magnitude it inverts, in units of its mean flux) within the crossfades at block borders
against everywhere else - a click or phase jump at a border would be a spike there.

    python benchmarks/bench_generate_long.py [--quick]   -> benchmarks/results/generate_long.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_all import cpu_name, write_result  # noqa: E402

CHILD = textwrap.dedent("""
    import json, resource, sys, tempfile, time
    import numpy as np, torch
    from pianogan import phase_stream
    from pianogan.config import get_preset
    from pianogan.generate import GenerateSettings, generate
    from pianogan.generate_files import write_outputs
    from pianogan.models import get_model
    from pianogan.spectrogram import Stats, stft_magnitude
    seconds, mode = float(sys.argv[1]), sys.argv[2]
    if mode == "one-shot":
        phase_stream.BLOCK_BYTES = 1 << 62
    preset = get_preset("tiny")
    fam = get_model("specgan")
    torch.manual_seed(0)
    G, _ = fam.build(fam.CONFIGS["tiny"], preset.image_shape)
    info = {"model": "specgan", "model_config": {}, "preset": preset,
            "stats": Stats(mean=-4.0, std=2.0), "step": 0, "path": ""}
    t0, c0 = time.perf_counter(), time.process_time()
    [clip] = generate(G.eval(), info, n=1, settings=GenerateSettings(seconds=seconds), progress=False)
    with tempfile.TemporaryDirectory() as d:
        write_outputs([clip], d, info, plots=False)
    out = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if mode == "stream":
        n_fft, hop = preset.n_fft, preset.hop_length
        mag = clip.magnitude
        audio = clip.audio / clip.record["gain"]
        got = stft_magnitude(torch.from_numpy(audio), n_fft, hop).numpy()[:, :mag.shape[1]]
        flux = lambda m: np.concatenate([[0.0], np.maximum(np.diff(m, axis=1), 0).sum(0)])
        ref = flux(mag)
        excess = (flux(got) - ref) / ref.mean()
        ov, bf = phase_stream.default_overlap(n_fft, hop), phase_stream.default_block_frames(n_fft, hop)
        starts = list(range(bf - ov, mag.shape[1] - ov, bf - ov))
        near = np.zeros(mag.shape[1], bool)
        for a in starts:
            near[max(0, a - 2):a + ov + 2] = True
        if starts:
            out["flux"] = {"borders": len(starts),
                           "max_at_borders": float(excess[near].max()),
                           "max_elsewhere": float(excess[~near].max()),
                           "mean_abs_at_borders": float(np.abs(excess[near]).mean()),
                           "mean_abs_elsewhere": float(np.abs(excess[~near]).mean())}
    print(json.dumps(out))
""")


def run(seconds: float, mode: str) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(seconds), mode], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{mode} {seconds} s failed:\n{r.stderr[-2000:]}")
    out = {"seconds": seconds, "mode": mode, **json.loads(r.stdout.strip().splitlines()[-1])}
    print(f"{seconds:6g} s {mode:>8}: peak RSS {out['peak_rss_mb']:7.0f} MB, {out['wall_s']:6.1f} s wall, "
          f"{out['cpu_s']:6.1f} s CPU" + (f"; excess flux at {out['flux']['borders']} borders max "
                                          f"{out['flux']['max_at_borders']:.2f}, elsewhere max "
                                          f"{out['flux']['max_elsewhere']:.2f}" if "flux" in out else ""),
          flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="60 s only")
    args = ap.parse_args()
    lengths = [60.0] if args.quick else [60.0, 600.0]
    print(f"long pieces on {cpu_name()}, tiny preset, default Griffin-Lim")
    t0 = time.perf_counter()
    results = [run(s, m) for s in lengths for m in ("stream", "one-shot")]
    write_result("generate_long", {"cpu": cpu_name(), "quick": args.quick, "results": results,
                                   "wall_s": round(time.perf_counter() - t0, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
