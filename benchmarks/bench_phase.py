"""Griffin-Lim speed and quality: pianogan.griffin_lim against librosa.griffinlim.

16 clips of 513x782 magnitudes (20 s piano-like audio at 10 kHz, n_fft 1024, hop 256), 32
iterations, momentum 0.99, on 2 CPU threads (torch.set_num_threads and the BLAS/OpenMP thread
variables), and on CUDA when a GPU is present. Reports ms per clip, the speed ratio, and the
spectral convergence (dB) of both outputs, each measured on the same STFT.

    python benchmarks/bench_phase.py [--quick] [--threads 2] [--clips 16] [--iters 32]

Timings are the best of a few repeats (a busy machine only makes them slower). Writes
benchmarks/results/phase.json.
"""

from __future__ import annotations

import argparse
import os
import sys

ARGS = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ARGS.add_argument("--quick", action="store_true", help="4 clips, 1 repeat (a smoke run)")
ARGS.add_argument("--threads", type=int, default=2)
ARGS.add_argument("--clips", type=int, default=16)
ARGS.add_argument("--iters", type=int, default=32)
OPTS = ARGS.parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(OPTS.threads)  # before numpy/torch load their thread pools

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from pianogan.phase import griffin_lim  # noqa: E402
from pianogan.quality import sc_from_magnitudes  # noqa: E402
from pianogan.synth import piano_piece  # noqa: E402

SR, N_FFT, HOP, SECONDS = 10_000, 1024, 256, 20.0
HERE = Path(__file__).resolve().parent


from run_all import cpu_name, write_result  # noqa: E402


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def sc_db(audio: np.ndarray, mags: np.ndarray) -> float:
    """Mean over clips of the SC (dB) of audio (clips, samples) against target magnitudes."""
    rebuilt = np.abs(librosa.stft(np.asarray(audio, np.float32), n_fft=N_FFT, hop_length=HOP))
    return float(np.mean(sc_from_magnitudes(mags, rebuilt)))


def naive_torch_gl(mag: torch.Tensor, n_iter: int, length: int) -> torch.Tensor:
    """The obvious torch version (torch.stft/istft in a loop), for reference."""
    window = torch.hann_window(N_FFT)
    g = torch.Generator().manual_seed(0)
    angles = torch.polar(torch.ones_like(mag), torch.rand(mag.shape, generator=g) * 2 * np.pi)
    tprev = torch.zeros_like(angles)
    for _ in range(n_iter):
        y = torch.istft(mag * angles, N_FFT, HOP, window=window, length=length)
        rebuilt = torch.stft(y, N_FFT, HOP, window=window, pad_mode="constant", return_complex=True)
        angles = rebuilt - (0.99 / 1.99) * tprev
        tprev = rebuilt
        angles = angles / (angles.abs() + 1e-16)
    return torch.istft(mag * angles, N_FFT, HOP, window=window, length=length)


def main() -> int:
    torch.set_num_threads(OPTS.threads)
    n_clips = 4 if OPTS.quick else OPTS.clips
    repeats = 1 if OPTS.quick else 3
    n_lib = min(n_clips, 2 if OPTS.quick else 4)  # librosa is slow: time a few clips, per clip
    n_iter = OPTS.iters
    length = int(SR * SECONDS)
    print(f"Griffin-Lim benchmark on {cpu_name()}, {OPTS.threads} threads, torch {torch.__version__}, "
          f"librosa {librosa.__version__}")
    audio = np.stack([piano_piece(SECONDS, SR, seed=i) for i in range(n_clips)])
    mags = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP)).astype(np.float32)
    print(f"{n_clips} clips of {mags.shape[1]}x{mags.shape[2]}, {n_iter} iterations, momentum 0.99")
    mags_t = torch.from_numpy(mags)
    # librosa's own initial phases (random_state=i), so both start from the same point and the SC
    # difference measures the implementation, not the luck of the draw
    lib_phase = torch.from_numpy(np.stack([2 * np.pi * np.random.RandomState(seed=i).random(mags.shape[1:])
                                           for i in range(n_clips)]).astype(np.float32))

    lib_out = []

    def run_librosa():
        lib_out.clear()
        for i in range(n_lib):
            lib_out.append(librosa.griffinlim(mags[i], n_iter=n_iter, hop_length=HOP, n_fft=N_FFT,
                                              momentum=0.99, length=length, random_state=i))

    lib_s = best_of(run_librosa, 1 if OPTS.quick else 2) / n_lib
    ours = {}

    def run_ours(init):
        start = lib_phase if init == "librosa" else init
        ours[init] = griffin_lim(mags_t, N_FFT, HOP, n_iter=n_iter, momentum=0.99, length=length, init=start)

    griffin_lim(mags_t[:1], N_FFT, HOP, n_iter=2, length=length)  # warm-up (allocator, FFT plans)
    ours_s = best_of(lambda: run_ours("librosa"), repeats) / n_clips
    run_ours("random")
    peaks_s = best_of(lambda: run_ours("peaks"), 1) / n_clips
    naive_s = best_of(lambda: naive_torch_gl(mags_t[:2], n_iter, length), 1) / 2

    result = {
        "cpu": cpu_name(), "threads": OPTS.threads, "clips": n_clips, "shape": list(mags.shape[1:]),
        "n_iter": n_iter, "momentum": 0.99, "torch": torch.__version__, "librosa": librosa.__version__,
        "cpu_ms_per_clip": {"librosa": 1000 * lib_s, "pianogan": 1000 * ours_s,
                            "pianogan_peaks_init": 1000 * peaks_s, "torch_stft_istft_loop": 1000 * naive_s},
        "speedup_vs_librosa": lib_s / ours_s,
        "sc_db": {"librosa": sc_db(np.stack(lib_out), mags[:n_lib]),
                  "pianogan": sc_db(ours["librosa"][:n_lib].numpy(), mags[:n_lib]),
                  "pianogan_own_random_init": sc_db(ours["random"][:n_lib].numpy(), mags[:n_lib]),
                  "pianogan_all_clips": sc_db(ours["librosa"].numpy(), mags),
                  "pianogan_peaks_init": sc_db(ours["peaks"][:n_lib].numpy(), mags[:n_lib])},
    }
    result["sc_gap_db"] = result["sc_db"]["pianogan"] - result["sc_db"]["librosa"]

    if torch.cuda.is_available():
        dev = torch.device("cuda")
        mg = mags_t.to(dev)
        griffin_lim(mg, N_FFT, HOP, n_iter=2, length=length)
        torch.cuda.synchronize()

        def run_gpu():
            ours["cuda"] = griffin_lim(mg, N_FFT, HOP, n_iter=n_iter, length=length, init=lib_phase.to(dev))
            torch.cuda.synchronize()

        gpu_s = best_of(run_gpu, 3) / n_clips
        result["cuda"] = {"device": torch.cuda.get_device_name(0), "ms_per_clip": 1000 * gpu_s,
                          "speedup_vs_librosa_cpu": lib_s / gpu_s,
                          "sc_db": sc_db(ours["cuda"][:n_lib].cpu().numpy(), mags[:n_lib])}

    ms = result["cpu_ms_per_clip"]
    print(f"{'':28s} {'ms/clip':>8s} {'SC dB':>7s}")
    print(f"{'librosa.griffinlim':28s} {ms['librosa']:8.1f} {result['sc_db']['librosa']:7.2f}")
    print(f"{'torch.stft/istft loop':28s} {ms['torch_stft_istft_loop']:8.1f} {'':>7s}")
    print(f"{'pianogan.griffin_lim':28s} {ms['pianogan']:8.1f} {result['sc_db']['pianogan']:7.2f}")
    print(f"{'  own random start':28s} {'':>8s} {result['sc_db']['pianogan_own_random_init']:7.2f}")
    print(f"{'  init=peaks':28s} {ms['pianogan_peaks_init']:8.1f} {result['sc_db']['pianogan_peaks_init']:7.2f}")
    if "cuda" in result:
        c = result["cuda"]
        print(f"{'pianogan on ' + c['device'][:16]:28s} {c['ms_per_clip']:8.2f} {c['sc_db']:7.2f}")
    print(f"speed-up vs librosa: {result['speedup_vs_librosa']:.1f}x (target >= 3x); "
          f"SC difference {result['sc_gap_db']:+.2f} dB (target within 0.5 dB)")
    write_result("phase", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
