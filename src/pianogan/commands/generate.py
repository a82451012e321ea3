"""`pianogan generate`: audio, spectrograms and a reproducible record from a trained generator."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import PianoGANError, describe
from .gl_args import add_gl_arguments, gl_settings

HELP = "make piano audio from a trained generator (EMA weights)"
DESCRIPTION = """\
Generate clips from a run directory, a .pt checkpoint or a generator.safetensors (EMA weights).
Writes DIR/clip-NNNN.wav, a spectrogram PNG per clip, DIR/grid.png, DIR/images.npy (generator
images, for `pianogan evaluate`) and DIR/generated.json (seed, latent(s) and every setting of each
clip). `--from DIR/generated.json [--index I]` makes recorded clips again exactly.
`--seconds T` longer than the model's clip makes one continuous piece per clip: a smooth latent walk,
magnitudes crossfaded in the STFT domain and one Griffin-Lim over the whole piece, streamed block by
block in bounded memory (no clicks)."""

EPILOG = """examples:
  pianogan generate runs/tiny --n 8 --out samples
  pianogan generate runs/tiny --n 2 --seconds 30 --sr 22050 --out long
  pianogan generate runs/tiny --interpolate 6 --seed 3 --to-seed 9 --out interp
  pianogan generate --from samples/generated.json --index 2 --out again"""


def register(subparsers) -> None:
    p = subparsers.add_parser("generate", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", metavar="RUN_OR_CHECKPOINT",
                   help="run directory, checkpoints/step-*.pt or generator.safetensors "
                        "(with --from: overrides the recorded checkpoint)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--style", metavar="NAME",
                   help="style label of a conditioned model (e.g. chorale, quartet, keyboard)")
    p.add_argument("--key", metavar="KEY",
                   help="longform: put each piece in this key, e.g. 'C', 'D minor', 'F#m'. A model trained "
                        "with key labels is asked for it; otherwise its notes are transposed there (a piece in "
                        "the other mode goes to the relative key: D minor asked of a major piece gives F major)")
    p.add_argument("--tempo", type=float, metavar="BPM",
                   help="longform with a beat clock: play at this many beats a minute (30-300; default: "
                        "each piece draws one from the training pieces' tempi for its style)")
    p.add_argument("--rubato", type=float, metavar="RADIANS",
                   help="longform with a beat clock: how far its beat wanders, rms radians (0 = a strict "
                        "beat, 0.5 = the 'rubato' preset's, at most 2; default: the model's own). A steadier "
                        "beat is heard more clearly and sits more on a grid")
    p.add_argument("--n", type=int, default=8, help="number of clips (default 8)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of clip 0; clip i uses seed+i (default 0)")
    p.add_argument("--seconds", type=float, metavar="T",
                   help="length of each clip in seconds (default: the model's clip length; "
                        "longer = one continuous piece)")
    add_gl_arguments(p, seed=False)
    p.add_argument("--sr", type=int, metavar="R",
                   help="output sample rate in Hz (soxr resampling; default: the preset's)")
    p.add_argument("--denoise", action="store_true", help="spectral-gating noise reduction")
    p.add_argument("--interpolate", type=int, metavar="K",
                   help="make K clips along the latent path from --seed to --to-seed (ignores --n)")
    p.add_argument("--to-seed", type=int, metavar="S",
                   help="end seed of --interpolate (default seed+1)")
    p.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="truncation psi, StyleGAN2 and longform (lower = closer to the average take); "
                        "default: the model's own (StyleGAN2 1 = off, longform as its config says)")
    p.add_argument("--drift", type=float, default=None, metavar="SECONDS",
                   help="longform: seconds between the anchors the global latent (key, character) moves "
                        "through in a piece; 0 = one key throughout (default: the model's own)")
    p.add_argument("--mix-seed", type=int, metavar="S",
                   help="style mixing, StyleGAN2 only: clip i takes its fine styles (layers from "
                        "--mixing-cutoff on) from the latent of seed S+i")
    p.add_argument("--mixing-cutoff", type=int, default=4, metavar="K",
                   help="style mixing: first layer that takes the --mix-seed latent (default 4)")
    p.add_argument("--overlap", type=float, metavar="SECONDS",
                   help="crossfade length between chained clips of a long piece "
                        "(default min(1, clip/4))")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="model_settings",
                   help="replace one of the model's sampling settings for these clips (repeatable; "
                        "stored in each clip's record), e.g. --set drop_clashes=false to hear the "
                        "shipped model's semitone clusters, --set mode_snap_seconds=10; a field that "
                        "is not a sampling setting is refused with their list")
    p.add_argument("--batch", type=int, default=16, metavar="B",
                   help="generator batch size (default 16)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to run (default auto: cuda when available)")
    p.add_argument("--from", dest="from_json", metavar="GENERATED_JSON",
                   help="remake the clips recorded in a generated.json")
    p.add_argument("--index", type=int, action="append", metavar="I",
                   help="with --from: only clip I (repeatable; default all)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    p.add_argument("--midi", action="store_true",
                   help="also write a MIDI transcription (clip-NNNN.mid) beside each WAV "
                        "(pretrained basic-pitch model, offline; see `pianogan transcribe`)")
    p.add_argument("--json", action="store_true", help="print a JSON summary to stdout")
    p.set_defaults(func=run)


def resolve_device(name: str) -> str:
    from ..devices import resolve_device

    return str(resolve_device(name))


def load(path: str | Path, device: str):
    """(G, info) from a run directory or checkpoint, with a one-line error for a bad path."""
    path = Path(path)
    if not path.exists():
        raise PianoGANError(f"{path}: no such run directory or checkpoint")
    from ..train.checkpoint import load_generator

    try:
        return load_generator(path, device=device)
    except PianoGANError:
        raise
    except Exception as e:  # a corrupt or foreign file: say so in one line
        raise PianoGANError(f"{path}: cannot load a generator ({describe(e)})") from None


def write_midis(clips, wavs: list[Path]) -> list[str]:
    """Transcribe each clip's audio and write WAV_STEM.mid beside its WAV; returns the paths."""
    from ..transcribe import Transcriber, write_midi

    transcriber = Transcriber()
    return [str(write_midi(transcriber.transcribe([c.audio], c.sample_rate)[0].notes, wav.with_suffix(".mid")))
            for c, wav in zip(clips, wavs)]


def _model_settings(items: list[str]) -> tuple[tuple[str, str], ...]:
    """Repeated --set FIELD=VALUE -> ((field, value), ...), in the order given."""
    from .export import parse_pairs

    return tuple(parse_pairs(items, "--set wants FIELD=VALUE").items())


def run(args) -> int:
    from ..generate import GenerateSettings, generate, regenerate
    from ..generate_files import read_records, write_outputs
    from ..pieces import style_index

    t0 = time.perf_counter()
    device = resolve_device(args.device)
    if args.from_json:
        records = read_records(args.from_json)
        if args.index:
            bad = [i for i in args.index if not 0 <= i < len(records)]
            if bad:
                raise PianoGANError(f"--index {bad[0]}: the record has clips 0..{len(records) - 1}")
            records = [records[i] for i in args.index]
        cache: dict = {}
        clips = []
        for rec in records:
            path = args.checkpoint or rec.get("checkpoint")
            if not path:
                raise PianoGANError("record names no checkpoint; pass RUN_OR_CHECKPOINT")
            if path not in cache:
                cache[path] = load(path, device)
            G, info = cache[path]
            clips.append(regenerate(rec, G, info, device=device))
    else:
        if args.batch < 1:
            raise PianoGANError("--batch must be >= 1")
        if args.checkpoint:
            G, info = load(args.checkpoint, device)
        else:  # the pretrained model that ships with the package
            from ..pretrained import load_pretrained

            G, info = load_pretrained(device=device)
        settings = GenerateSettings(gl=gl_settings(args), seconds=args.seconds,
                                    truncation=args.truncation, drift=args.drift, key=args.key,
                                    tempo=args.tempo, rubato=args.rubato,
                                    mix_seed=args.mix_seed,
                                    mixing_cutoff=args.mixing_cutoff, sample_rate=args.sr,
                                    denoise=args.denoise, overlap_seconds=args.overlap,
                                    model_settings=_model_settings(args.model_settings))
        style_index(G, args.style)  # a wrong --style fails before any progress bar starts
        if args.truncation is not None and info.get("model") not in ("stylegan2", "longform"):
            print(f"note: --truncation is ignored by the {info.get('model')} generator", file=sys.stderr)
        if args.drift is not None and info.get("model") != "longform":
            print(f"note: --drift is ignored by the {info.get('model')} generator", file=sys.stderr)
        if args.mix_seed is not None and info.get("model") != "stylegan2":
            print(f"note: --mix-seed is ignored by the {info.get('model')} generator", file=sys.stderr)
        clips = generate(G, info, n=args.n, seed=args.seed, settings=settings,
                         interpolate=args.interpolate, to_seed=args.to_seed,
                         batch_size=args.batch, device=device, style=args.style)
    doc = write_outputs(clips, args.out, info, plots=not args.no_plots)
    out = Path(args.out)
    summary = {"out": str(out), "n": len(clips), "checkpoint": doc["checkpoint"], "step": doc["step"],
               "model": doc["model"], "preset": info["preset"].name, "device": device,
               "sample_rate": clips[0].sample_rate if clips else None,
               "seconds": [round(len(c.audio) / c.sample_rate, 6) for c in clips],
               "files": [str(out / r["file"]) for r in doc["clips"]],
               "record": str(out / "generated.json"), "time_s": round(time.perf_counter() - t0, 3)}
    if args.midi:
        summary["midi"] = write_midis(clips, [out / r["file"] for r in doc["clips"]])
        summary["time_s"] = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {len(clips)} clip(s) to {out}/ ({summary['time_s']:.1f} s)", file=sys.stderr)
    return 0
