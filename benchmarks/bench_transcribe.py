"""The note-level evaluation: how far to trust the transcriber, does every measure rank real first,
and how fast is it?

1. Note F1 (mir_eval, onsets within 50 ms) of the basic-pitch transcriber on built-in corpus
   excerpts, whose notes are known (rendered from scores): the original audio at 22050 Hz, at
   each preset's rate, and after each preset's round trip (audio -> image -> Griffin-Lim).
2. The validation table: real clips of the built-in corpus (10s-256) against white noise,
   blurred spectra, a random pitch shift per window, time-shuffled windows, one stationary chord
   and the untrained generator, every measure of `pianogan evaluate --notes`.
3. Speed of the note-level evaluation (Griffin-Lim + transcription + measures) on 256 clips of
   10 s (43 min of audio), 2 threads: wall and CPU time, and the multiple of real time.

    python benchmarks/bench_transcribe.py [--quick]    -> benchmarks/results/transcribe.json
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_all import cpu_name, write_result  # noqa: E402

from pianogan.config import get_preset  # noqa: E402
from pianogan.evaluate.core import NOTES_GL_ITER  # noqa: E402
from pianogan.evaluate.groundtruth import corpus_excerpt, note_f1  # noqa: E402
from pianogan.transcribe import SAMPLE_RATE, Transcriber  # noqa: E402

PIECES = [("bach/bwv1.6.mxl", 5.0), ("joplin/maple_leaf_rag.mxl", 10.0), ("mozart/k545/movement1_exposition.mxl", 0.0),
          ("chopin/mazurka06-2.krn", 0.0)]
PRESETS = ["tiny", "10s-256", "20s-512"]
VALIDATION_KEYS = ["fd", "fd_notes", "key_clarity", "onset_density", "harmonic_share", "notes_per_s", "polyphony",
                   "pitch_range", "in_key_share", "key_agreement_notes", "ioi_median_s", "ioi_cv", "pc_js",
                   "pc_js_aligned"]


def f1_table(transcriber: Transcriber, seconds: float, pieces) -> dict:
    from pianogan.audio import resample
    from pianogan.roundtrip import GLSettings, round_trip

    rows: dict[str, list] = {"original 22050 Hz": []}
    for ref_path, start in pieces:
        audio, ref = corpus_excerpt(ref_path, start, seconds, SAMPLE_RATE)
        rows["original 22050 Hz"].append(note_f1(ref, transcriber.transcribe([audio], SAMPLE_RATE)[0].notes))
        for name in PRESETS:
            p = get_preset(name)
            low = resample(audio, SAMPLE_RATE, p.sample_rate)
            rows.setdefault(f"{name}: original at {p.sample_rate} Hz", []).append(
                note_f1(ref, transcriber.transcribe([low], p.sample_rate)[0].notes))
            rt = round_trip(low, p, gl=GLSettings(n_iter=NOTES_GL_ITER), variants=("image",))
            rows.setdefault(f"{name}: round trip (GL {NOTES_GL_ITER})", []).append(
                note_f1(ref, transcriber.transcribe([rt.audio], p.sample_rate)[0].notes))
    out = {}
    print(f"\nnote F1 on {len(pieces)} corpus excerpts of {seconds:.0f} s (onset 50 ms):")
    print(f"{'audio':36s} {'precision':>9s} {'recall':>7s} {'F1':>6s}")
    for name, rs in rows.items():
        m = {k: float(np.mean([r[k] for r in rs])) for k in ("precision", "recall", "f1")}
        m["f1_each"] = [r["f1"] for r in rs]
        out[name] = m
        print(f"{name:36s} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f}")
    return out


def corpus_images(preset_name: str, hours: float, workdir: Path):
    from pianogan.data.dataset import PianoDataset

    out = workdir / f"builtin-{preset_name}"
    subprocess.run([sys.executable, "-m", "pianogan", "prepare", "builtin", "--preset", preset_name, "--out",
                    str(out), "--max-hours", str(hours), "--quiet"], check=True)
    ds = PianoDataset(out)
    return ds.images(), ds.preset, ds.stats


def validation_table(real, preset, stats, n: int, transcriber) -> dict:
    from pianogan.evaluate.references import DETECTS, ranks_real_best, validate

    sets = validate(real[:2 * n], preset, stats, transcriber=transcriber)
    names = list(sets)
    print(f"\nvalidation ({preset.name}, n = {n} per set, each vs real half A); "
          "* = ranked below real B as documented, ! = documented but NOT ranked below real B:\n")
    print("| measure | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    failures = []
    for key in VALIDATION_KEYS:
        direction, detects = DETECTS[key]
        cells = []
        for name in names:
            v = sets[name][key]
            mark = ""
            if name in detects:
                ok = ranks_real_best(sets, key, name)
                mark = " *" if ok else " !"
                if not ok:
                    failures.append((key, name))
            cells.append("-" if v is None else f"{v:.3g}{mark}")
        print(f"| `{key}` ({direction}) | " + " | ".join(cells) + " |")
    print(f"\ndocumented detections that failed: {failures or 'none'}")
    return {"sets": {name: {k: m[k] for k in VALIDATION_KEYS} for name, m in sets.items()},
            "failures": failures}


def speed(images, preset, stats, n_clips: int, threads: int) -> dict:
    from pianogan.evaluate.notes import measure_set, transcribe_images

    reps = int(np.ceil(n_clips / len(images)))
    images = np.concatenate([images] * reps)[:n_clips]
    transcriber = Transcriber(threads=threads)
    transcribe_images(images[:2], preset, stats, transcriber)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    measure_set(transcribe_images(images, preset, stats, transcriber, NOTES_GL_ITER, progress=True))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    audio_s = n_clips * preset.clip_seconds
    res = {"clips": n_clips, "preset": preset.name, "audio_s": audio_s, "threads": threads, "wall_s": wall,
           "cpu_s": cpu, "x_real_time_wall": audio_s / wall, "x_real_time_cpu_per_2_cores": 2 * audio_s / cpu,
           "load_1min": os.getloadavg()[0]}
    print(f"\nnote-level evaluation of {n_clips} clips x {preset.clip_seconds:.0f} s ({audio_s / 60:.1f} min): "
          f"wall {wall:.1f} s ({res['x_real_time_wall']:.1f}x real time), CPU {cpu:.1f} s "
          f"(= {res['x_real_time_cpu_per_2_cores']:.1f}x real time on 2 fully used cores); load {res['load_1min']:.1f}")
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer pieces and clips (CI smoke run)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"bench_transcribe on {cpu_name()}, onnxruntime with 2 intra-op threads")
    t0 = time.perf_counter()
    transcriber = Transcriber(threads=2)
    result = {"cpu": cpu_name(), "machine": platform.machine(), "quick": args.quick}
    result["f1"] = f1_table(transcriber, 10.0 if args.quick else 20.0, PIECES[:1] if args.quick else PIECES)
    with tempfile.TemporaryDirectory() as tmp:
        real, preset, stats = corpus_images("10s-256", 0.05 if args.quick else 0.25, Path(tmp))
    n = min(len(real) // 2, 8 if args.quick else 32)
    result["validation"] = {"preset": preset.name, "n": n, **validation_table(real, preset, stats, n, transcriber)}
    result["speed"] = speed(real, preset, stats, 16 if args.quick else 256, 2)
    result["seconds"] = time.perf_counter() - t0
    print(f"\ntook {result['seconds']:.0f} s")
    write_result("transcribe", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
