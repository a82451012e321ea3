"""`pianogan evaluate-rolls`: what a longform model plays, read from its piano rolls beside the
dataset's own rolls (evaluate/rolls.py)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ..errors import PianoGANError

HELP = "what a longform model plays (onsets, strike values, off-scale notes, clusters) beside the dataset's rolls"
DESCRIPTION = """\
Read the notes a longform generator plays before they are rendered (its key strikes, at the
training clip length, sampled as `pianogan generate` samples them) and the piano rolls of the
dataset's training clips, and report for each: onsets per clip, quantiles of the strike values
(a full-velocity strike is 1; real rolls have none above it), the share of onsets outside their
clip's best major scale, that share among each clip's 10 loudest onsets, the share of off-scale
onsets that move by step (an in-scale onset 1-2 semitones away within 0.3 s: passing and
neighbour tones), how many pitch classes a clip uses (an effective number), the share of
onsets struck together with a key a semitone away at any octave (a cluster heard as a wrong note
in the chord), and the share of seconds without an onset (rests and held chords, where real
music's loudness moves most). The in-key share of `evaluate-pieces` says how many notes fit the
key; these say whether the ones that do not fit sound like passing notes or like wrong notes,
and whether the chords hold clusters. --set reads every model with a sampling setting replaced
(e.g. drop_clashes=false: what the clash rule removes). No audio, no transcription: seconds on a
CPU. FAKE: run directories, checkpoints, generator.safetensors files or the names of shipped
models (default: the shipped model).
"""

EPILOG = """examples:
  pianogan evaluate-rolls --real data/model
  pianogan evaluate-rolls --real data/model --fake runs/longform runs/other/generator.safetensors --json
  pianogan evaluate-rolls --real data/model --set drop_clashes=false   # the clusters the rule removes"""

ROWS = [  # (key, label, digits)
    ("onsets_per_clip", "onsets per clip", 1),
    ("strike_q10", "strike, 10 %", 3),
    ("strike_q50", "strike, median", 3),
    ("strike_q90", "strike, 90 %", 3),
    ("strike_q99", "strike, 99 %", 3),
    ("strike_max", "strike, largest", 2),
    ("share_above_1", "strikes above full velocity", 4),
    ("off_scale", "off-scale onsets", 3),
    ("classes_per_clip", "pitch classes a clip (effective number)", 2),
    ("off_scale_loudest", "off-scale among the 10 loudest", 3),
    ("off_scale_by_step", "off-scale moving by step", 3),
    ("clashes", "onsets in a semitone clash", 3),
    ("leading_tones", "sevenths rising to the tonic: raised", 3),
    ("rest_seconds", "seconds without an onset (rests, held chords)", 3),
    ("clips_with_rest", "clips with such a second", 3),
]


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate-rolls", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real", required=True, metavar="DATASET", help="prepared dataset with performance MIDI")
    p.add_argument("--fake", nargs="+", metavar="FAKE", help="longform generators (default: the shipped model)")
    p.add_argument("--n", type=int, default=256, metavar="N", help="clips per set (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the real clips drawn and of the latents (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="model_settings",
                   help="replace one of every model's sampling settings (repeatable), as `pianogan "
                        "generate --set` does: e.g. --set drop_clashes=false reads what the clash rule "
                        "removes; a field that is not a sampling setting is refused with their list")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _generator(spec: str):
    """(G, info) of a run / checkpoint / safetensors path or a shipped model's name."""
    from ..pretrained import resolve_input
    from ..train.checkpoint import load_generator

    path = resolve_input(spec)  # a shipped model's name reads its hash-checked file
    if not Path(path).exists():
        raise PianoGANError(f"{spec}: no such run, checkpoint or shipped model")
    G, info = load_generator(path)
    if info.get("model") != "longform" or not hasattr(G, "notes") or getattr(G.cfg, "head", None) != "notes":
        raise PianoGANError(f"{spec}: not a longform model with a notes head (nothing to read rolls from)")
    return G, info


def _label(spec: str) -> str:
    """A set's name in the report: a file's stem, a run directory's name, a shipped model's name."""
    path = Path(spec)
    return path.stem if path.is_file() else path.name if path.is_dir() else spec


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm.auto import tqdm

    from ..data.rolls import clip_rolls, roll_to_notes
    from ..evaluate.rolls import roll_measures
    from ..models.longform_dynamics import played_strikes
    from ..pretrained import shipped_models, with_settings
    from .export import parse_pairs
    from ..train.trainer import load_training_data

    if args.n < 1:
        raise PianoGANError(f"--n must be at least 1, got {args.n}")
    if not Path(args.real).is_dir():
        raise PianoGANError(f"real dataset not found: {args.real}")
    ds = load_training_data(args.real)
    rolls = clip_rolls(ds)
    if rolls is None:
        raise PianoGANError(f"{args.real}: the dataset has no performance MIDI, so no piano rolls to compare with")
    fakes = args.fake or shipped_models()[:1]
    if not fakes:
        raise PianoGANError("no --fake given and this pianogan ships no model")
    settings = parse_pairs(args.model_settings, "--set wants FIELD=VALUE")  # a malformed one fails first
    models = [(spec, *_generator(spec)) for spec in fakes]
    for spec, G, info in models:
        G.cfg = with_settings(G.cfg, info["model"], settings)  # _generator made sure it is a longform one
        if tuple(info["preset"].image_shape) != tuple(ds.preset.image_shape):
            raise PianoGANError(f"{spec}: the generator's preset {info['preset'].name!r} is not the dataset's "
                                f"{ds.preset.name!r}")
    frame_s = ds.preset.hop_length / ds.preset.sample_rate
    idx = np.sort(np.random.default_rng(args.seed).permutation(len(ds))[:args.n])
    sets = {"real": roll_measures(roll_to_notes(rolls[idx])[0].numpy(), frame_s)}
    n = len(idx)  # as many clips as the real set has
    names = [_label(spec) for spec in fakes]
    if len(set(names)) < len(names) or "real" in names:
        names = list(fakes)
    with tqdm(total=n * len(models), desc="playing", unit="clip", disable=args.quiet, leave=False) as bar:
        for name, (spec, G, _) in zip(names, models):
            sets[name] = roll_measures(played_strikes(G, n, args.seed, bar=bar), frame_s)
    report = {"real": str(args.real), "n": int(n), "seed": args.seed, "fake": dict(zip(names, fakes)),
              "settings": settings, "sets": sets}
    if args.json:
        print(json.dumps({**report, "sets": json_safe(sets)}, indent=2))
    else:
        print(to_markdown(report))
    return 0


def json_safe(sets: dict) -> dict:
    """The figures with NaN (nothing to measure) as None, so that the JSON is strict."""
    return {k: {m: (None if isinstance(v, float) and math.isnan(v) else v) for m, v in figures.items()}
            for k, figures in sets.items()}


def _cell(x: float, digits: int) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def to_markdown(report: dict) -> str:
    """The figures as a Markdown table, one column per set (real first)."""
    names = list(report["sets"])
    lines = [f"| {report['n']} clips | " + " | ".join(f"`{n}`" if n != "real" else "real" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for key, label, digits in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(report["sets"][n][key], digits) for n in names) + " |")
    if report.get("settings"):
        lines.append("\nSampling settings replaced in every model: "
                     + ", ".join(f"{k}={v}" for k, v in report["settings"].items()) + ".")
    return "\n".join(lines)
