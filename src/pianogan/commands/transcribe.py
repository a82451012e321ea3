"""`pianogan transcribe`: MIDI from any piano audio, with the pretrained offline transcriber."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import PianoGANError

HELP = "transcribe piano audio to MIDI (pretrained basic-pitch model, offline)"
DESCRIPTION = """\
Write a MIDI transcription (.mid, one acoustic-piano track) of each audio file, read by basic-pitch's
pretrained note-transcription model (Spotify, Apache-2.0), run with onnxruntime from the file in its
wheel: nothing is downloaded. Audio of any rate is resampled to the model's 22050 Hz; notes whose
third harmonic lies above the input's Nyquist frequency are not kept (band-limited audio makes
spurious notes there). AUDIO may be files or directories (searched recursively for audio files).
Files that cannot be read are skipped, named and counted; the exit code is 1 if any was.
--json also gives, per file, the best-fitting scale of each consecutive 10 s window and the share
of neighbouring windows in the same scale (key agreement of a long piece; docs/evaluate.md)."""

EPILOG = """examples:
  pianogan transcribe samples/clip-0000.wav --out midi
  pianogan transcribe samples/ recordings/*.flac --out midi --json"""


SCALE_NAMES = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]  # major scale / relative minor


def register(subparsers) -> None:
    p = subparsers.add_parser("transcribe", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files or directories")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory for the .mid files")
    p.add_argument("--threads", type=int, default=2, metavar="N", help="onnxruntime threads (default 2)")
    p.add_argument("--json", action="store_true", help="print a JSON summary (notes per file) to stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def input_files(items: list[str]) -> list[Path]:
    """Files named, plus the audio files under named directories; a missing path is an error."""
    from ..evaluate.sources import audio_files

    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = audio_files(path)
            if not found:
                raise PianoGANError(f"{path}: no audio files found")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise PianoGANError(f"{path}: no such file or directory")
    return files


def midi_name(path: Path, used: set[str]) -> str:
    """``stem.mid``, or ``stem-2.mid``, ... when another input had the same stem."""
    name, i = f"{path.stem}.mid", 1
    while name in used:
        i += 1
        name = f"{path.stem}-{i}.mid"
    used.add(name)
    return name


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..audio import load_audio
    from ..evaluate.notes import KEY_WINDOW_S, clip_measures, window_scales
    from ..transcribe import Transcriber, write_midi

    if args.threads < 1:
        raise PianoGANError(f"--threads must be >= 1, got {args.threads}")
    files = input_files(args.audio)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    transcriber = Transcriber(threads=args.threads)
    done, skipped, used = [], [], set()
    for path in tqdm(files, desc="transcribing", unit="file", disable=args.quiet):
        try:
            audio, sr = load_audio(path)
        except PianoGANError as e:
            skipped.append({"file": str(path), "reason": str(e)})
            continue
        tr = transcriber.transcribe([audio], sr)[0]
        midi = write_midi(tr.notes, out / midi_name(path, used))
        m = clip_measures(tr)
        scales = window_scales(tr.notes, tr.seconds, KEY_WINDOW_S)
        done.append({"file": str(path), "midi": str(midi), "seconds": round(tr.seconds, 3), "notes": tr.n_notes,
                     "notes_per_s": round(m["notes_per_s"], 3), "in_key_share": round(m["in_key_share"], 3),
                     "window_scales": [None if k is None else SCALE_NAMES[k] for k in scales],
                     "window_key_agreement": None if len(scales) < 2 else m["window_key_agreement"]})
    summary = {"out": str(out), "transcribed": len(done), "skipped": len(skipped), "files": done,
               "skipped_files": skipped}
    for s in skipped:
        print(f"skipped {s['file']}: {s['reason']}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {len(done)} MIDI file(s) to {out}/" + (f"; skipped {len(skipped)}" if skipped else ""),
              file=sys.stderr)
    if not done:
        raise PianoGANError(f"none of the {len(files)} file(s) could be read")
    return 1 if skipped else 0
