"""`pianogan reconstruct`: round-trip an audio file through a preset's spectrogram image and
measure what is lost (spectral convergence and log-spectral distance against the input)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import PianoGANError
from .gl_args import add_gl_arguments, gl_settings

HELP = "round-trip audio through a spectrogram image and back; measure the loss"
DESCRIPTION = """\
Turn IN (any audio file soundfile/librosa can read; resampled to the preset's rate, mixed to mono)
into the preset's normalised magnitude image and back to audio with fast Griffin-Lim, write OUT,
and print spectral convergence (SC, dB, lower is better) and log-spectral distance (LSD, dB) of the
result against the input, measured on the preset's STFT. Three rows show each loss apart:
  image       the full round trip (what a generated image goes through)
  no-resize   the same without the resize to the image size (gap to 'image' = resize loss)
  phase-only  the true magnitude through Griffin-Lim (phase-retrieval loss alone)
'mag SC' is the SC of the magnitude handed to Griffin-Lim, before any phase loss.

Normalisation statistics: by default computed from IN itself, as if it were a one-file dataset;
--stats-from DATASET_DIR uses that dataset's stats.json (and its preset unless --preset is given),
which is what a model trained on it sees.
Long inputs are cut into consecutive clips of the preset's length (the last one zero-padded),
round-tripped as one batch and joined, so OUT has the input's length; clips are phase-retrieved
independently (joins every clip length may click). --first-clip keeps only the first clip.
--sweep prints one table over all presets (no OUT written): the paper's parameter study, with
numbers instead of ears."""

EPILOG = """examples:
  pianogan reconstruct piano.wav --preset 20s-512 --out piano-rt.wav
  pianogan reconstruct piano.wav --preset tiny --out rt.wav --n-iter 128 --json
  pianogan reconstruct piano.wav --stats-from data/maestro-tiny --out rt.wav
  pianogan reconstruct piano.wav --sweep"""

ROWS = (("image", "image"), ("no_resize", "no-resize"), ("phase_only", "phase-only"))


def register(subparsers) -> None:
    p = subparsers.add_parser("reconstruct", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="input audio file")
    p.add_argument("--preset", metavar="P",
                   help="preset name or preset .json (default: the --stats-from dataset's, else 20s-512)")
    p.add_argument("--out", metavar="OUT.wav", help="write the round-tripped audio here (16-bit WAV)")
    add_gl_arguments(p)
    p.add_argument("--denoise", action="store_true",
                   help="spectral-gating noise reduction (noisereduce) after phase retrieval")
    p.add_argument("--stats-from", metavar="DATASET_DIR",
                   help="normalise with this dataset's stats.json instead of the file's own statistics")
    p.add_argument("--first-clip", action="store_true", help="only the first clip of a long input")
    p.add_argument("--sweep", action="store_true", help="one table over all presets (no OUT)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="where Griffin-Lim runs (default cpu)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    p.set_defaults(func=run)


def _dataset(path: str):
    from ..config import Preset
    from ..spectrogram import Stats

    root = Path(path)
    if not (root / "stats.json").is_file():
        raise PianoGANError(f"--stats-from {root}: no stats.json there (not a prepared dataset?)")
    try:
        stats = Stats.load(root / "stats.json")
        preset = (Preset.from_dict(json.loads((root / "preset.json").read_text()))
                  if (root / "preset.json").is_file() else None)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PianoGANError(f"--stats-from {root}: cannot read it ({e})") from None
    return stats, preset


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _one(args, preset, stats, gl, audio, device: str) -> dict:
    from ..roundtrip import round_trip

    t0 = time.perf_counter()
    rt = round_trip(audio, preset, stats, gl, first_clip=args.first_clip, denoise=args.denoise,
                    device=device)
    return {
        "preset": preset.name, "sample_rate": preset.sample_rate,
        "stft": [preset.n_freq, preset.n_frames], "image": list(preset.image_shape),
        "freq_scale": preset.freq_scale, "resized": preset.needs_resize,
        "clips": int(rt.images.shape[0]), "clipped_fraction": rt.clipped_fraction,
        "seconds": round(time.perf_counter() - t0, 2),
        "metrics": {k: {m: _finite(v) for m, v in d.items()} for k, d in rt.metrics.items()},
        "_audio": rt.audio,
    }


def _common_reference(args, rows: list[dict]) -> None:
    """Measure every preset's output on one STFT: the input at min(its rate, 22050 Hz), n_fft
    ~93 ms, hop n_fft/4; outputs resampled to that rate. Unlike the per-preset figures this
    also counts what a lower sample rate loses."""
    from ..audio import load_audio, resample
    from ..config import Preset
    from ..quality import log_spectral_distance, spectral_convergence

    native, sr = load_audio(args.input)
    rate = min(sr, 22_050)
    if rate != sr:
        native = resample(native, sr, rate)
    n_fft = 1 << int(round(np.log2(0.093 * rate)))
    ref = Preset("reference", rate, n_fft, n_fft // 4, max(native.size / rate, 1e-3), 64, 64)
    for r in rows:
        out = resample(r.pop("_audio"), r["sample_rate"], rate)[:native.size]
        out = np.pad(out, (0, native.size - out.size))
        r["reference"] = {"sample_rate": rate, "n_fft": n_fft, "hop_length": n_fft // 4,
                          "sc_db": _finite(float(spectral_convergence(native, out, ref))),
                          "lsd_db": _finite(float(log_spectral_distance(native, out, ref)))}


def _fmt(v: float | None) -> str:
    return "  exact" if v is None else f"{v:7.2f}"


def _print_single(r: dict, args, stats_source: str) -> None:
    print(f"{args.input} -> {args.out or '(not written)'}: preset {r['preset']} "
          f"({r['sample_rate']} Hz, STFT {r['stft'][0]}x{r['stft'][1]} -> image {r['image'][0]}x{r['image'][1]}"
          f"{'' if r['resized'] else ', no resize'}), {r['clips']} clip(s), stats from {stats_source}, "
          f"Griffin-Lim {args.n_iter} it, init {args.init}{', denoised' if args.denoise else ''}")
    print(f"{'':12s} {'SC dB':>7s} {'LSD dB':>7s} {'mag SC':>7s}")
    for key, label in ROWS:
        m = r["metrics"][key]
        print(f"{label:12s} {_fmt(m['sc_db'])} {_fmt(m['lsd_db'])} {_fmt(m['magnitude_sc_db'])}")
    if r["clipped_fraction"] > 0:
        print(f"note: {100 * r['clipped_fraction']:.3f}% of STFT values were beyond the preset's "
              f"+-clip_sigma and were clipped")


def _print_sweep(rows: list[dict], args) -> None:
    print(f"{args.input}: round trip through every preset (stats from the file, Griffin-Lim "
          f"{args.n_iter} it, init {args.init}); SC / LSD in dB, lower is better")
    head = (f"{'preset':18s} {'rate':>6s} {'STFT':>9s} {'image':>8s} | {'image SC':>8s} {'LSD':>5s} "
            f"{'mag SC':>7s} | {'no-resize SC':>12s} {'LSD':>5s} {'mag SC':>7s} | {'phase-only SC':>13s} "
            f"{'LSD':>5s} | {'clip %':>6s} | {'ref SC':>7s} {'LSD':>5s} | {'time s':>6s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        m = r["metrics"]
        print(f"{r['preset']:18s} {r['sample_rate']:6d} {r['stft'][0]:4d}x{r['stft'][1]:<4d} "
              f"{r['image'][0]:3d}x{r['image'][1]:<4d} | {_fmt(m['image']['sc_db']):>8s} "
              f"{m['image']['lsd_db']:5.2f} {_fmt(m['image']['magnitude_sc_db'])} | "
              f"{_fmt(m['no_resize']['sc_db']):>12s} {m['no_resize']['lsd_db']:5.2f} "
              f"{_fmt(m['no_resize']['magnitude_sc_db'])} | {_fmt(m['phase_only']['sc_db']):>13s} "
              f"{m['phase_only']['lsd_db']:5.2f} | {100 * r['clipped_fraction']:6.3f} | "
              f"{_fmt(r['reference']['sc_db'])} {r['reference']['lsd_db']:5.2f} | {r['seconds']:6.1f}")
    ref = rows[0]["reference"]
    print("image / no-resize / phase-only: measured at the preset's own rate on its own STFT (not comparable "
          "across presets); mag SC: of the magnitude before Griffin-Lim; clip %: STFT values beyond "
          f"+-clip_sigma; ref: the image round trip measured on one STFT for all presets ({ref['sample_rate']} Hz, "
          f"n_fft {ref['n_fft']}, hop {ref['hop_length']}), so lower sample rates pay for their lost band.")


def run(args) -> int:
    from ..audio import load_audio, write_audio
    from ..config import PRESETS, get_preset
    from ..devices import resolve_device

    gl = gl_settings(args)
    if args.sweep and args.out:
        raise PianoGANError("--sweep writes no audio; drop --out")
    device = str(resolve_device(args.device))

    stats, ds_preset = _dataset(args.stats_from) if args.stats_from else (None, None)
    if args.sweep:
        presets = list(PRESETS.values()) if args.preset is None else [get_preset(args.preset)]
    else:
        presets = [get_preset(args.preset) if args.preset else (ds_preset or PRESETS["20s-512"])]
    if stats is not None and ds_preset is not None and any(
            (p.n_fft, p.hop_length, p.sample_rate, p.eps) != (ds_preset.n_fft, ds_preset.hop_length,
                                                              ds_preset.sample_rate, ds_preset.eps)
            for p in presets):
        raise PianoGANError(f"--stats-from {args.stats_from}: its statistics belong to preset "
                            f"{ds_preset.name!r}, not {', '.join(p.name for p in presets)}")

    rows = []
    from tqdm import tqdm

    for preset in tqdm(presets, desc="presets", disable=len(presets) == 1 or not sys.stderr.isatty(),
                       file=sys.stderr):
        audio, _ = load_audio(args.input, preset.sample_rate)
        rows.append(_one(args, preset, stats, gl, audio, device))
    if args.sweep:
        _common_reference(args, rows)

    stats_source = f"{args.stats_from}/stats.json" if stats is not None else "the input file"
    if not args.sweep:
        r = rows[0]
        audio_out = r.pop("_audio")
        if args.out:
            write_audio(args.out, audio_out, r["sample_rate"])
        r.update(input=str(args.input), out=args.out, stats_from=stats_source, n_iter=args.n_iter,
                 momentum=args.momentum, init=args.init, denoise=args.denoise)
        if args.json:
            print(json.dumps(r, indent=2))
        else:
            _print_single(r, args, stats_source)
    elif args.json:
        print(json.dumps({"input": str(args.input), "n_iter": args.n_iter, "init": args.init,
                          "stats_from": stats_source, "presets": rows}, indent=2))
    else:
        _print_sweep(rows, args)
    return 0
