"""20 s round trip through a 512x512 image: PianoGAN against the paper's pipeline.

Piano-like pieces (pianogan.synth.piano_piece, 20 s at 10 kHz, different seeds, keys and chords)
go audio -> image -> audio through
  * the paper's pipeline rebuilt faithfully (benchmarks/paper_pipeline.py: per-clip statistics,
    cv2 INTER_AREA resize to 512x512 and back, librosa.griffinlim 32 iterations), and
  * PianoGAN's presets with at most 512*512 values per 20 s: "20s-512" (the paper's STFT, our
    resize) and "20s-512-noresize" (a 512x512 STFT), with statistics of the whole set of pieces
    (dataset statistics, as training uses), at 32 Griffin-Lim iterations (the paper's) and 64 (our
    default).
Every output is measured against its input on the same STFT (10 kHz, n_fft 1024, hop 256):
spectral convergence (SC) and log-spectral distance (LSD), dB, lower is better.
Acceptance: SC at least 4 dB better than the paper's, LSD no worse.

    python benchmarks/bench_roundtrip.py [--quick] [--pieces 4]

Writes benchmarks/results/roundtrip.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from paper_pipeline import paper_round_trip  # noqa: E402

from pianogan.config import get_preset  # noqa: E402
from pianogan.quality import log_spectral_distance, spectral_convergence  # noqa: E402
from pianogan.roundtrip import GLSettings, round_trip  # noqa: E402
from pianogan.spectrogram import audio_to_logmag, stats_of  # noqa: E402
from pianogan.synth import piano_piece  # noqa: E402


from run_all import cpu_name, write_result  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 pieces, 32 iterations only")
    ap.add_argument("--pieces", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    opts = ap.parse_args()
    torch.set_num_threads(opts.threads)
    n = 2 if opts.quick else opts.pieces
    iters = (32,) if opts.quick else (32, 64)
    ref = get_preset("20s-512")  # measurement STFT for everything: 10 kHz, 1024, 256
    print(f"Round-trip benchmark on {cpu_name()}: {n} piano-like pieces of 20 s at 10 kHz; "
          f"SC/LSD measured on a {ref.n_fft}/{ref.hop_length} STFT")
    pieces = [piano_piece(ref.clip_seconds, ref.sample_rate, seed=i) for i in range(n)]

    rows: dict[str, dict] = {}

    def record(name: str, outs: list[np.ndarray], seconds: float, **info) -> None:
        sc = [spectral_convergence(y, o, ref) for y, o in zip(pieces, outs)]
        lsd = [log_spectral_distance(y, o, ref) for y, o in zip(pieces, outs)]
        rows[name] = {"sc_db": float(np.mean(sc)), "lsd_db": float(np.mean(lsd)), "sc_db_each": sc,
                      "lsd_db_each": lsd, "seconds_per_piece": seconds / n, **info}
        print(f"  {name:40s} SC {np.mean(sc):7.2f}  LSD {np.mean(lsd):5.2f}  ({seconds / n:.2f} s/piece)",
              flush=True)

    t0 = time.perf_counter()
    record("paper (INTER_AREA, per-clip stats, librosa GL 32)",
           [paper_round_trip(y, seed=i)[0] for i, y in enumerate(pieces)], time.perf_counter() - t0,
           pipeline="paper", n_iter=32)
    for name in ("20s-512", "20s-512-noresize"):
        preset = get_preset(name)
        stats = stats_of(audio_to_logmag(torch.from_numpy(np.stack(pieces)), preset))  # dataset stats
        for n_iter in iters:
            t0 = time.perf_counter()
            outs = [round_trip(y, preset, stats, GLSettings(n_iter=n_iter), variants=("image",)).audio
                    for y in pieces]
            record(f"pianogan {name}, GL {n_iter}", outs, time.perf_counter() - t0, pipeline="pianogan",
                   preset=name, n_iter=n_iter, image=list(preset.image_shape),
                   values=preset.image_height * preset.image_width)

    if not opts.quick:  # ablation: what the peak-locked start phase adds on its own
        preset = get_preset("20s-512")
        stats = stats_of(audio_to_logmag(torch.from_numpy(np.stack(pieces)), preset))
        t0 = time.perf_counter()
        outs = [round_trip(y, preset, stats, GLSettings(n_iter=32, init="random", seed=i), variants=("image",)).audio
                for i, y in enumerate(pieces)]
        record("pianogan 20s-512, GL 32, random start", outs, time.perf_counter() - t0, pipeline="ablation",
               preset="20s-512", n_iter=32, init="random")

    paper = next(iter(rows.values()))
    verdicts = {}
    for name, r in rows.items():
        if r["pipeline"] == "paper":
            continue
        r["sc_gain_db"] = paper["sc_db"] - r["sc_db"]
        if r["pipeline"] != "pianogan":
            continue
        r["passes"] = bool(r["sc_gain_db"] >= 4.0 and r["lsd_db"] <= paper["lsd_db"])
        verdicts[name] = r["passes"]
    best = max((k for k in rows if rows[k]["pipeline"] == "pianogan"), key=lambda k: rows[k]["sc_gain_db"])
    print(f"best: {best}: SC {rows[best]['sc_gain_db']:+.2f} dB better than the paper's pipeline "
          f"(target >= 4), LSD {rows[best]['lsd_db']:.2f} vs {paper['lsd_db']:.2f} dB (target: no worse)")
    for k, ok in verdicts.items():
        print(f"  {'PASS' if ok else 'fail'}  {k}: {rows[k]['sc_gain_db']:+.2f} dB")
    write_result("roundtrip", {"cpu": cpu_name(), "pieces": n,
                               "reference_stft": [ref.sample_rate, ref.n_fft, ref.hop_length],
                               "rows": rows, "best": best})
    return 0


if __name__ == "__main__":
    sys.exit(main())
