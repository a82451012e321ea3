"""`pianogan prepare SOURCE --preset P --out DIR`: build a training set of spectrogram images."""

from __future__ import annotations

import argparse
import json
import os

HELP = """\
Turn piano audio into a training set of STFT log-magnitude images.

SOURCE is one of:
  maestro:PATH   the MAESTRO v3 folder (with maestro-v3.0.0.csv or .json); split, composer
                 and title of each recording are kept
  audio:PATH     a folder tree of audio files (wav, flac, ogg, mp3, ...); folders named
                 train/validation/test set the split, everything else is "train"
  midi:PATH      a folder tree of MIDI files, rendered with a SoundFont piano (--soundfont)
  builtin        a corpus of scores shipped with music21 (chorales, keyboard pieces, quartets),
                 performed with human-like tempo, dynamics and pedal; no download needed

Files are decoded, resampled, cut into clips of the preset's length (the last partial clip
is dropped, near-silent clips are skipped), and stored with their split, composer, title,
source file and offset. The normalisation statistics are computed once over the training
split. Running the same command again resumes: finished files are not redone. Files that
cannot be used are listed with the reason in DIR/skipped.tsv.

examples:
  pianogan prepare builtin --preset 10s-256 --out data/builtin --max-hours 0.5
  pianogan prepare maestro:~/maestro-v3.0.0 --preset 10s-256 --out data/maestro --workers 8
  pianogan prepare audio:~/recordings --preset 20s-512 --out data/mine --overlap 5
"""


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def register(subparsers) -> None:
    p = subparsers.add_parser("prepare", help="build a training set from MAESTRO, audio, MIDI or the builtin corpus",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="maestro:PATH, audio:PATH, midi:PATH or builtin")
    p.add_argument("--preset", default="10s-256",
                   help="spectrogram preset name or .json file (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset directory to create or resume")
    p.add_argument("--workers", type=int, default=_default_workers(), metavar="N",
                   help="parallel processes (default: the CPUs available, %(default)s)")
    p.add_argument("--split", action="append", choices=["train", "validation", "test"],
                   help="only this split (repeatable; default: all, each clip tagged with its split)")
    p.add_argument("--max-hours", type=float, metavar="H",
                   help="use a fixed pseudo-random subset of about H hours of input")
    p.add_argument("--soundfont", metavar="FILE",
                   help="SoundFont (.sf2/.sf3) for midi:/builtin (default: the pinned Fluid R3 piano "
                        "that ships with pianogan, MIT licence, the same on every machine)")
    p.add_argument("--overlap", type=float, default=0.0, metavar="SECONDS",
                   help="seconds shared by consecutive clips (default: 0)")
    p.add_argument("--silence-db", type=float, default=-60.0, metavar="DB",
                   help="drop clips quieter than this RMS level in dBFS (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..config import get_preset
    from ..data.prepare import PrepareConfig, format_summary, prepare

    cfg = PrepareConfig(source=args.source, preset=get_preset(args.preset), out=Path(args.out).expanduser(),
                        workers=args.workers, split=tuple(args.split) if args.split else None,
                        max_hours=args.max_hours, soundfont=args.soundfont, overlap=args.overlap,
                        silence_db=args.silence_db)
    summary = prepare(cfg, progress=not args.quiet)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
