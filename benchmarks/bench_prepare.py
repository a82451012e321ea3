"""Data preparation speed: `pianogan prepare` vs the paper's per-clip pipeline, same input, one run.

Input: MAESTRO-like 44.1 kHz stereo 16-bit WAV files made from pianogan.synth.piano_piece
segments (no download), --minutes of audio in total (default 120; --quick: 12).

  paper    the paper's pipeline, one process (its code was sequential): for every clip
           librosa.load(file, sr=preset rate, offset, duration) (soxr_hq, mono) -> librosa.stft
           -> log -> per-clip normalisation -> INTER_AREA resize (benchmarks/paper_pipeline.py).
           Images stay in memory (the paper also wrote chunk WAVs and image files first).
  ours     pianogan.data.prepare with --workers 1 and --workers 2: streamed decode + soxr,
           batched torch STFT, per-file shards, statistics, manifest - everything written.

Each measurement runs in its own process, so peak memory (max RSS of the process and of its
largest child) is its own. The 200 h estimate is fixed start-up cost (pool start, imports,
measured on a 2-file input) + 200 h x the CPU time per audio second of the single-worker run /
the number of workers (CPU time, because wall time on a busy machine measures its neighbours).

    python benchmarks/bench_prepare.py [--quick] [--preset 10s-256]  -> benchmarks/results/prepare.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_all import cpu_name, write_result  # noqa: E402

SR = 44_100
SEGMENT_SECONDS = 30.0


def make_input(root: Path, minutes: float, file_minutes: float = 5.0) -> list[Path]:
    """WAV files of ``file_minutes`` each, ``minutes`` in total, built from a few synthesised
    segments in different orders and levels (synthesis is the slow part, so it is reused)."""
    import numpy as np
    import soundfile as sf

    from pianogan.synth import piano_piece

    rng = np.random.default_rng(0)
    segments = [piano_piece(SEGMENT_SECONDS, SR, seed=s) for s in range(4)]
    n_files = max(2, int(round(minutes / file_minutes)))
    per_file = max(1, int(round(minutes * 60 / n_files / SEGMENT_SECONDS)))
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        parts = [segments[int(k)] * rng.uniform(0.4, 1.0) for k in rng.integers(0, len(segments), per_file)]
        mono = np.concatenate(parts)
        stereo = np.stack([mono, 0.8 * np.roll(mono, 13)], axis=1)
        path = root / f"piece-{i:03d}.wav"
        sf.write(str(path), stereo, SR, subtype="PCM_16")
        paths.append(path)
    return paths


def _status_kb(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


class PeakMemory(threading.Thread):
    """Samples the resident memory of this process and its children (Linux /proc) every 50 ms.
    (ru_maxrss is not used: Linux carries it over fork+exec, so a child reports its parent's.)"""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.total_kb = self.child_kb = 0

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.wait(0.05):
            kids = [_status_kb(c, "VmRSS") for c in _children(me)]
            self.child_kb = max([self.child_kb, *kids])
            self.total_kb = max(self.total_kb, _status_kb(me, "VmRSS") + sum(kids))

    def result(self) -> dict:
        self.stop.set()
        self.join()
        main_kb = _status_kb("self", "VmHWM")
        return {"main_mb": round(main_kb / 1024, 1), "largest_worker_mb": round(self.child_kb / 1024, 1),
                "total_mb": round(max(self.total_kb, main_kb) / 1024, 1)}


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its reaped children."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def measure_paper(files: list[str], preset_name: str) -> dict:
    import warnings

    import librosa
    import numpy as np
    import soundfile as sf

    from paper_pipeline import cv2_area_resize
    from pianogan.config import get_preset

    p = get_preset(preset_name)
    mem = PeakMemory()
    mem.start()
    t0, c0 = time.perf_counter(), cpu_seconds()
    images, seconds = [], 0.0
    for path in files:
        duration = sf.info(path).duration
        seconds += duration
        for k in range(int(duration // p.clip_seconds)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, _ = librosa.load(path, sr=p.sample_rate, mono=True, offset=k * p.clip_seconds,
                                    duration=p.clip_seconds)
            mag = np.abs(librosa.stft(y, n_fft=p.n_fft, hop_length=p.hop_length))
            with np.errstate(divide="ignore"):
                logmag = np.log(mag)
            finite = logmag[np.isfinite(logmag)]
            norm = np.clip((logmag - finite.mean()) / finite.std(), -3, 3) / 3
            images.append(cv2_area_resize(norm, *p.image_shape).astype(np.float16))
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {"seconds": elapsed, "cpu_seconds": cpu, "clips": len(images), "audio_seconds": seconds,
            **mem.result()}


def measure_ours(files: list[str], preset_name: str, workers: int, out: str) -> dict:
    from pianogan.config import get_preset
    from pianogan.data.prepare import PrepareConfig, prepare

    src = Path(files[0]).parent
    mem = PeakMemory()
    mem.start()
    t0, c0 = time.perf_counter(), cpu_seconds()
    s = prepare(PrepareConfig(f"audio:{src}", get_preset(preset_name), Path(out), workers=workers),
                progress=False)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {"seconds": elapsed, "cpu_seconds": cpu, "clips": s["clips"]["total"],
            "audio_seconds": s["hours"]["audio"] * 3600,
            **mem.result()}


def run_measure(kind: str, files: list[Path], preset: str, workers: int = 1) -> dict:
    """One measurement in a fresh process; returns its JSON."""
    out = tempfile.mkdtemp(prefix="pianogan-bench-out-")
    try:
        cmd = [sys.executable, __file__, "--_measure", kind, "--preset", preset, "--workers", str(workers),
               "--_out", out, *map(str, files)]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        return json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="12 minutes of input instead of 120")
    ap.add_argument("--minutes", type=float, help="minutes of input audio")
    ap.add_argument("--preset", default="10s-256")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--_measure", help=argparse.SUPPRESS)
    ap.add_argument("--_out", help=argparse.SUPPRESS)
    ap.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._measure:
        if args._measure == "paper":
            r = measure_paper(args.files, args.preset)
        else:
            r = measure_ours(args.files, args.preset, args.workers, args._out)
        print(json.dumps(r))
        return 0

    minutes = args.minutes or (12.0 if args.quick else 120.0)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"prepare benchmark on {cpu_name()} ({cores} cores available), preset {args.preset}, "
          f"{minutes:g} min of 44.1 kHz stereo 16-bit WAV")
    tmp = Path(tempfile.mkdtemp(prefix="pianogan-bench-in-"))
    try:
        t0 = time.perf_counter()
        files = make_input(tmp / "audio", minutes, file_minutes=minutes / 12)  # 12 files
        small = make_input(tmp / "small", 1.0, file_minutes=0.5)
        print(f"input: {len(files)} files, synthesised in {time.perf_counter() - t0:.0f} s")
        # warm the page cache so every pipeline reads from memory
        for f in files:
            f.read_bytes()
        results = {}
        for name, kind, workers in [("paper (1 process)", "paper", 1), ("ours, 1 worker", "ours", 1),
                                    (f"ours, {args.workers} workers", "ours", args.workers)]:
            r = run_measure(kind, files, args.preset, workers)
            r["clips_per_second"] = r["clips"] / r["seconds"]
            r["realtime_factor"] = r["audio_seconds"] / r["seconds"]
            r["cpu_ms_per_clip"] = 1000 * r["cpu_seconds"] / r["clips"]
            results[name] = r
            print(f"  {name:22s} {r['clips']:5d} clips in {r['seconds']:7.2f} s = {r['clips_per_second']:7.1f} "
                  f"clips/s ({r['realtime_factor']:5.0f}x real time), {r['cpu_ms_per_clip']:5.1f} ms CPU/clip; "
                  f"peak memory {r['total_mb']:.0f} MB (main {r['main_mb']:.0f}, largest worker "
                  f"{r['largest_worker_mb']:.0f})", flush=True)
        fixed = run_measure("ours", small, args.preset, args.workers)["seconds"]
        paper = results["paper (1 process)"]
        best = results[f"ours, {args.workers} workers"]
        one = results["ours, 1 worker"]
        speedup = best["clips_per_second"] / paper["clips_per_second"]
        speedup_1 = one["clips_per_second"] / paper["clips_per_second"]
        speedup_cpu = paper["cpu_ms_per_clip"] / one["cpu_ms_per_clip"]
        # 200 h on `workers` otherwise idle cores: CPU time per audio second of the steady single-worker
        # run, shared by the workers, plus the start-up latency of the pool (measured on a tiny input).
        # CPU time rather than wall time, because on a busy machine wall time measures the neighbours.
        cpu_per_audio = one["cpu_seconds"] / one["audio_seconds"]
        t200 = fixed + 200 * 3600 * cpu_per_audio / args.workers
        t200_paper = 200 * 3600 * paper["cpu_seconds"] / paper["audio_seconds"]
        print(f"speed-up over the paper's pipeline, wall clock as measured: {speedup:.1f}x with {args.workers} "
              f"workers ({speedup_1:.1f}x with 1); CPU time per clip: {speedup_cpu:.1f}x less. "
              f"Goal >= 2x on 2 cores: {'met' if speedup >= 2 else 'NOT met'}"
              + (" (--quick: the pool's start-up dominates; run without it)" if args.quick else ""))
        print(f"200 h of MAESTRO-like audio on {args.workers} idle cores: ours ~{t200 / 60:.1f} min "
              f"({1000 * cpu_per_audio:.2f} ms CPU per audio second, start-up {fixed:.1f} s; goal <= 10 min: "
              f"{'met' if t200 <= 600 else 'NOT met'}), paper's pipeline ~{t200_paper / 3600:.1f} h on one core; "
              f"input read from the page cache (a disk must deliver ~{200 * 3600 * SR * 4 / t200 / 1e6:.0f} MB/s "
              f"of 16-bit stereo WAV to keep up)")
        report = {
            "cpu": cpu_name(), "cores": cores, "python": platform.python_version(), "preset": args.preset,
            "input_minutes": minutes, "results": results, "speedup": speedup, "speedup_one_core": speedup_1,
            "speedup_cpu_per_clip": speedup_cpu, "cpu_ms_per_audio_second": 1000 * cpu_per_audio,
            "fixed_startup_seconds": fixed, "estimated_200h_minutes": t200 / 60,
            "estimated_200h_paper_hours": t200_paper / 3600, "workers": args.workers,
        }
        write_result("prepare", report)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
