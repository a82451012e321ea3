"""`pianogan evaluate`: offline metrics of generated clips against a prepared real dataset."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import PianoGANError

HELP = "score generated clips against real data (FD, NDB/K, diversity, music and note-level measures)"
DESCRIPTION = """\
Compare generated clips with a prepared dataset, offline (no downloaded model weights).
The real clips are split into two disjoint halves A and B of n clips; the real half B (the FLOOR
a perfect generator would reach), n fake clips and n clips of white noise (the CEILING) are each
compared with A:
  - Frechet distance in a 73-dim space of audio descriptors computed from the magnitude
    (log-mel, MFCC dynamics, chroma, spectral shape, onsets, loudness modulation, key measures);
  - mode collapse: NDB/K (k-means bins of A, two-proportion z-tests) and mean pairwise distance;
  - music: key clarity (Krumhansl-Kessler), onsets per second, harmonic share of the energy (HPSS);
  - notes (unless --no-notes): every set is turned into audio (Griffin-Lim) and transcribed by a
    pretrained piano transcriber (basic-pitch, shipped in its wheel, run with onnxruntime):
    notes per second, polyphony, pitch range, pitch-class divergence to real, in-key share,
    key agreement of the halves (and of 10 s windows), inter-onset intervals, and a Frechet
    distance on per-clip transcription features.
--fake is one of: `noise`; a directory with images.npy (from `pianogan generate`) or an images
.npy file; a prepared dataset directory; a run directory / .pt checkpoint / generator.safetensors
(n clips are sampled with the EMA weights) or a shipped model's name (piano-longform); an audio
file or a directory of audio files (cut into clips of the dataset's length). Writes metrics.json,
metrics.md and metrics.png to --out (default: FAKE_DIR/eval, or ./eval for `noise` and a shipped
model's name) and prints the table (or --json)."""

EPILOG = """examples:
  pianogan evaluate --real data/tiny --fake runs/tiny --n 200
  pianogan evaluate --real data/tiny --fake samples            # samples/images.npy or samples/*.wav
  pianogan evaluate --real data/tiny --fake noise --json       # floor and white-noise ceiling only
  pianogan evaluate --real data/model --fake runs/model --n 256 --repeats 5   # FD mean +- sd of 5 draws"""


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real", required=True, metavar="DATASET", help="prepared dataset directory (real clips)")
    p.add_argument("--fake", required=True, metavar="DIR_OR_RUN",
                   help="generated images/audio, a run or checkpoint, a shipped model's name "
                        "(piano-longform), a dataset, or `noise`")
    p.add_argument("--n", type=int, metavar="N",
                   help="clips per compared set (default: half the real clips, at most 500, and at "
                        "most the fake clips available)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, sampling and k-means (default 0)")
    p.add_argument("--bins", type=int, metavar="K", help="NDB bins (default n // 10, between 2 and 50)")
    p.add_argument("--split", metavar="SPLIT", help="use only this split of the real dataset, or several joined by commas, e.g. "
                        "validation,test for held-out clips (default: all)")
    p.add_argument("--out", metavar="DIR", help="output directory (default FAKE_DIR/eval, or ./eval)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where a generator runs (default auto)")
    p.add_argument("--no-notes", action="store_true",
                   help="skip the note-level measures (no Griffin-Lim, no transcription)")
    p.add_argument("--repeats", type=int, default=1, metavar="K",
                   help="also repeat the FD (real split, fake draw, floor) with seeds SEED+1 .. SEED+K-1 "
                        "and report the mean and spread of each FD over the K draws (default 1: no repeats)")
    p.add_argument("--no-plot", action="store_true", help="skip metrics.png")
    p.add_argument("--json", action="store_true", help="print the metrics JSON to stdout instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def default_out(fake: str) -> Path:
    if fake == "noise":
        return Path("eval")
    path = Path(fake)
    return (path if path.is_dir() else path.parent) / "eval"


def run(args: argparse.Namespace) -> int:
    from ..data.dataset import PianoDataset
    from ..evaluate import load_fake, run_evaluation, to_markdown, write_report
    from ..evaluate.repeats import draw_figures, real_draw, repeat_fd, summarise_draws
    from ..evaluate.sources import generator_sampler
    from ..pretrained import resolve_input

    if args.n is not None and args.n < 2:
        raise PianoGANError(f"--n must be at least 2, got {args.n}")
    if args.repeats < 1:
        raise PianoGANError(f"--repeats must be at least 1, got {args.repeats}")
    if not Path(args.real).is_dir():
        raise PianoGANError(f"real dataset not found: {args.real}")
    real_ds = PianoDataset(args.real, split=args.split.split(",") if args.split else None)
    if len(real_ds) < 4:
        raise PianoGANError(f"{args.real}: {len(real_ds)} real clips"
                            f"{f' in split {args.split!r}' if args.split else ''}; need at least 4")
    preset, stats = real_ds.preset, real_ds.stats
    n = min(len(real_ds) // 2, args.n if args.n is not None else 500)
    from ..devices import resolve_device

    device = str(resolve_device(args.device))
    progress = not args.quiet
    if progress:
        print(f"pianogan evaluate: {len(real_ds)} real clips ({preset.name}), fake: {args.fake}", file=sys.stderr)
    source = resolve_input(args.fake)  # a shipped model's name reads its file
    fake, fake_info = load_fake(source, preset, stats, n=n, seed=args.seed, device=device, progress=progress)
    if fake is not None and len(fake) == 0:
        raise PianoGANError(f"{args.fake}: no clips to evaluate")
    if fake is not None and len(fake) < 2:
        raise PianoGANError(f"{args.fake}: only {len(fake)} clip; need at least 2")
    if fake is not None:
        n = min(n, len(fake))
    real = real_draw(real_ds, n, args.seed)
    out = Path(args.out) if args.out else default_out(args.fake)
    meta = {"real_source": str(args.real), "real_split": args.split, "n_real_total": len(real_ds), **fake_info}
    report = run_evaluation(real, fake, preset, stats, n=n, seed=args.seed, bins=args.bins, meta=meta,
                            progress=progress, notes=not args.no_notes)
    if args.repeats > 1:
        # A generator draws new clips per seed (loaded once for all draws); a fixed set is subsampled.
        if fake_info.get("fake_kind") == "generator":
            sample, _ = generator_sampler(Path(source), preset, stats, device, progress)
            fake_for_seed = lambda seed: sample(n, seed)  # noqa: E731
        else:
            fake_for_seed = lambda seed: fake  # noqa: E731
        others = repeat_fd(real_ds, fake_for_seed, preset, stats, n,
                           list(range(args.seed + 1, args.seed + args.repeats)), progress)
        report["repeats"] = summarise_draws([draw_figures(report, args.seed), *others])
    report["files"] = write_report(report, out, plot=not args.no_plot)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(to_markdown(report))
        print(f"wrote {', '.join(report['files'].values())}")
    return 0
