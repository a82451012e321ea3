"""`pianogan evaluate-pieces`: long pieces (key held across 10 s windows, seams at block joins) and
style accuracy of a conditional generator, each beside the same figure for real music."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..errors import PianoGANError
from .evaluate import default_out

HELP = "score long pieces (key across 10 s windows, seams) and style accuracy against real data"
DESCRIPTION = """\
Measures of issue 10 that `pianogan evaluate` does not cover, each beside real music:
  - pieces: N pieces of --seconds from the generator (or long images) and N real excerpts of the
    same length (consecutive clips of one piece of the dataset, joined on the STFT frame grid):
    * window key agreement: Griffin-Lim -> basic-pitch notes (offline ONNX model) -> best major
      scale of each 10 s window; share of neighbouring windows with the same scale;
    * seams: spectral flux (sum over bins of the rise of log|STFT|, nats) at the generator's block
      boundaries against real music's 99th percentile: share of boundary frames above it (real
      music at the same frames: ~0.01), beside the share of all the pieces' frames above it (a
      seam shows as boundaries above that base rate), and the largest boundary flux / p99;
  - notes on whole pieces: --note-n pieces of --note-seconds (default 20) and up to 2 x --note-n
    real excerpts of that length from two disjoint sets of pieces (half A the reference, half B
    the real values and floor; a floor from the same pieces would be too low), each
    Griffin-Lim -> basic-pitch: in-key share, notes per second, polyphony, key agreement of the
    two halves, pitch-class divergence to real (JS), note FD;
  - styles (a style-conditioned generator): --style-n clips of each style at the training length,
    classified by a logistic regression on the 73 audio descriptors fitted on the real train split;
    fake accuracy / real held-out (validation + test) accuracy, both balanced; the bar is 0.70.
--fake: a run directory / .pt checkpoint / generator.safetensors, or long images (n, H, W) as an
.npy file or a directory with images.npy (no style report then). --repeats R (a generator) measures
R independent draws of pieces, note pieces and real excerpts and adds each figure's mean and spread
over them, real, fake and fake - real (the styles are read once). Writes pieces.json and pieces.md
to --out (default FAKE_DIR/eval) and prints the table (or --json)."""
EPILOG = """examples:
  pianogan evaluate-pieces --real data/model --fake runs/longform --n 8 --style-n 32
  pianogan evaluate-pieces --real data/model --fake runs/longform --n 48 --repeats 3
  pianogan evaluate-pieces --real data/model --fake long/images.npy --block-frames 319 --json"""


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate-pieces", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real", required=True, metavar="DATASET", help="prepared dataset directory (all splits)")
    p.add_argument("--fake", required=True, metavar="RUN_OR_IMAGES",
                   help="run / checkpoint, a shipped model's name (piano-longform), or long images .npy")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="length of each generated piece (default 60; image input: their width)")
    p.add_argument("--n", type=int, default=8,
                   help="pieces, fake and real each (default 8; image input: its first N). The window key "
                        "agreement of 60 s pieces has a standard error of ~0.06 a side at 16 and ~0.04 at 48")
    p.add_argument("--note-seconds", type=float, default=20.0,
                   help="length of the pieces the note measures read (default 20; 0 = skip)")
    p.add_argument("--note-n", type=int, default=128,
                   help="pieces for the note measures (default 128; at 32 the halves key agreement "
                        "has a standard error of ~0.08 on each side, about the width of its bar)")
    p.add_argument("--style-n", type=int, default=32, metavar="N", help="fake clips per style (default 32)")
    p.add_argument("--style-mix", choices=["reference", "model"], default="reference",
                   help="styles of a style-conditioned generator's pieces: each piece in the style of one "
                        "real excerpt it is compared with (reference, default; the real excerpts come "
                        "round-robin over pieces, so the 20 s ones are ~85 %% chorales) or drawn from the "
                        "generator's own mix, as `pianogan generate` without --style does (model; the "
                        "corpus's clips are ~50 %% chorales)")
    p.add_argument("--block-frames", type=int, metavar="K",
                   help="frames between block boundaries (default: the generator's frames per local "
                        "latent; a fixed-length generator's chain joins; image input: the clip stride)")
    p.add_argument("--seed", type=int, default=0, help="seed of piece / clip 0 and of the excerpts (default 0)")
    p.add_argument("--repeats", type=int, default=1, metavar="R",
                   help="measure R independent draws (seeds SEED, SEED+10000, ...: fresh latents and real "
                        "excerpts each) and report each figure's mean and spread over them, real and fake, "
                        "and the gap fake - real (a generator only; default 1). One draw of the key "
                        "measures moves by about as much as their bars allow")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where G runs")
    p.add_argument("--no-notes", action="store_true", help="skip the transcription (no key agreement)")
    p.add_argument("--out", metavar="DIR", help="output directory (default FAKE_DIR/eval)")
    p.add_argument("--json", action="store_true", help="print the report JSON instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _native_images(G, z, labels, device, frames: int):
    import torch

    with torch.no_grad():
        lab = None if labels is None else labels.to(device)
        return G(z.to(device), lab)[:, 0, :, :frames].float().cpu().numpy()


def native_style_clips(G, styles: tuple[str, ...], n: int, seed: int, device, bar):
    """n clips (training length) per style of a conditional any-length G -> (images, style indices)."""
    import numpy as np
    import torch

    images, labels = [], []
    for k in range(len(styles)):
        z = G.sample_z(n, generator=torch.Generator().manual_seed(seed + 1000 * (k + 1)), device="cpu")
        for lo in range(0, n, 16):
            images.append(_native_images(G, z[lo:lo + 16], torch.full((len(z[lo:lo + 16]),), k), device,
                                         G.image_shape[1]))
            bar.update(len(images[-1]))
        labels += [k] * n
    return np.concatenate(images), np.array(labels, np.int64)


def native_long(G, n: int, frames: int, seed: int, device, bar, styles=None):
    """n pieces (n, F, frames) of an any-length G, latent seed ``seed + i``. ``styles`` (n,) G's
    style index of each piece, or None: as `pianogan generate` without --style makes them, a
    conditional G drawing each piece's style from its latent (in the corpus's clip mix when its
    export calibrated ``style_shares``)."""
    import numpy as np
    import torch

    from ..pieces import piece_latent

    out = []
    for i in range(n):
        label = None if styles is None else torch.tensor([int(styles[i])])
        out.append(_native_images(G, piece_latent(G, seed + i, frames), label, device, frames)[0])
        bar.update(1)
    return np.stack(out)


def reference_styles(ds, G_styles: tuple[str, ...], seconds: float, n: int, seed: int, half_b: bool):
    """(n,) G's style index for each of n fake pieces: the styles of the real excerpts of draw
    ``seed`` they are compared with, in turn (half B of :func:`~..evaluate.pieces.excerpt_half_runs`,
    the stand-in for a generator in the floor, for the note measures; :func:`excerpt_runs_up_to` for the
    long pieces), or None when the dataset has no style labels or not G's.

    Why: the real excerpts come round-robin over pieces, and pieces differ in length by style (a
    chorale lasts a minute, a quartet movement several), so a reference of 20 s excerpts is ~85 %
    chorales while the corpus's clips, and a generator calibrated to them, are ~50 %. Compared in
    different mixes, a generator is judged on the mix as much as on its music (docs/results.md,
    section 39)."""
    import numpy as np

    from ..data.labels import dataset_labels
    from ..evaluate.pieces import excerpt_half_runs, excerpt_runs_up_to

    found = dataset_labels(ds)
    if found is None or not G_styles or any(name not in G_styles for name in found[0]):
        return None
    names, labels = found
    # the runs of the excerpts the reference joins (excerpts_up_to for the long pieces)
    runs = excerpt_half_runs(ds, seconds, n, seed).b if half_b else excerpt_runs_up_to(ds, seconds, n, seed)
    own = np.array([G_styles.index(names[labels[run[0]]]) for run in runs], np.int64)
    return own[np.arange(n) % len(own)]


def chained_long(G, info: dict, n: int, seconds: float, seed: int, device, stats, bar):
    """n pieces of a fixed-length G chained as `pianogan generate --seconds` chains them (latent
    walk, edge frames dropped, power crossfade) -> (images (n, F, T) in ``stats``, join frames)."""
    import numpy as np
    import torch

    from ..chain import chain_length, edge_frames, join_magnitudes, overlap_frames
    from ..generate import chain_latents, render_images
    from ..spectrogram import image_to_magnitude, log_magnitude, normalize

    preset = info["preset"]
    k = chain_length(preset, seconds)
    frames = preset.frames_for(seconds)
    out, joins = [], []
    for i in range(n):
        imgs = render_images(G, chain_latents(G, seed + i, k, 3), device=device)
        mags = image_to_magnitude(torch.as_tensor(imgs), preset, info["stats"])
        mag, joins = join_magnitudes(mags, overlap_frames(preset), edge_frames(preset))
        out.append(normalize(log_magnitude(mag[:, :frames], preset.eps), stats, preset.clip_sigma).numpy())
        bar.update(1)
    return np.stack(out), [j for j in joins if j < frames]


def load_fake(args, ds, dataset_styles, progress: bool) -> dict:
    """--fake -> {"pieces", "block_frames", "note_pieces", "style_images", "style_labels", "info"}
    of draw --seed; a generator's also holds "generator" (G, info, device), loaded once, for
    :func:`generated` to make further draws from."""
    from ..evaluate.sources import is_run_or_checkpoint, load_images_npy
    from ..pretrained import resolve_input

    preset, stats, path = ds.preset, ds.stats, Path(resolve_input(args.fake))  # a shipped model's name too
    if not path.exists():
        raise PianoGANError(f"fake input not found: {path}")
    npy = path if path.suffix == ".npy" else path / "images.npy"
    if npy.is_file():
        pieces = load_images_npy(npy, preset, stats)[:args.n]
        return {"pieces": pieces, "block_frames": args.block_frames or preset.n_frames - 1,
                "note_pieces": None, "style_images": None, "style_labels": None, "info": {"fake_kind": "images"}}
    if not is_run_or_checkpoint(path):
        raise PianoGANError(f"{path}: not a run, checkpoint or images .npy")
    from ..devices import resolve_device
    from ..train.checkpoint import load_generator

    device = str(resolve_device(args.device))
    G, info = load_generator(path, device=device)
    if tuple(info["preset"].image_shape) != tuple(preset.image_shape):
        raise PianoGANError(f"{path}: the generator's preset {info['preset'].name!r} is not the dataset's "
                            f"{preset.name!r}")
    styles = tuple(getattr(getattr(G, "cfg", None), "styles", ()) or ())
    unknown = [s for s in styles if dataset_styles is None or s not in dataset_styles]
    if unknown:
        raise PianoGANError(f"{path}: the generator's styles {', '.join(unknown)} are not the dataset's")
    out = generated(args, ds, (G, info, device), dataset_styles, args.seed, progress)
    out["info"] = {"fake_kind": "generator", "model": info.get("model"), "step": info.get("step"),
                   "checkpoint": str(info.get("path", path)), "styles": list(styles)}
    out["generator"] = (G, info, device)
    return out


def generated(args, ds, generator: tuple, dataset_styles, seed: int, progress: bool,
              with_styles: bool = True) -> dict:
    """One draw of a loaded ``generator`` (G, info, device) -> {"pieces", "block_frames",
    "note_pieces", "style_images", "style_labels"}: --n pieces from latent seed ``seed``, the note
    pieces from ``seed + 5000``, and (``with_styles``, a style-conditioned any-length G) the style
    clips."""
    import numpy as np
    from tqdm.auto import tqdm

    from ..evaluate.sources import renormalize
    from ..pieces import is_native

    G, info, device = generator
    preset, stats = ds.preset, ds.stats
    styles = tuple(getattr(getattr(G, "cfg", None), "styles", ()) or ())
    frames, note_frames = preset.frames_for(args.seconds), preset.frames_for(args.note_seconds)
    want_notes = args.note_seconds > 0 and not args.no_notes
    total = args.n + (args.style_n * len(styles) if is_native(G) and with_styles else 0) + (args.note_n if want_notes else 0)
    out = {"style_images": None, "style_labels": None, "note_pieces": None}
    with tqdm(total=total, desc="generating", unit="img", disable=not progress, leave=False) as bar:
        if is_native(G):
            matched = styles and args.style_mix == "reference"
            pieces = native_long(G, args.n, frames, seed, device, bar,
                                 reference_styles(ds, styles, args.seconds, args.n, seed, False) if matched else None)
            out["block_frames"] = args.block_frames or int(G.cfg.frames_per_latent)
            if styles and with_styles:
                imgs, lab = native_style_clips(G, styles, args.style_n, seed, device, bar)
                out["style_images"] = renormalize(imgs, preset, info["stats"], stats)
                out["style_labels"] = np.array([dataset_styles.index(styles[i]) for i in lab], np.int64)
            pieces = renormalize(pieces, preset, info["stats"], stats)
            if want_notes:  # other latents than the long pieces': seeds from seed + 5000
                notes = native_long(G, args.note_n, note_frames, seed + 5000, device, bar,
                                    reference_styles(ds, styles, args.note_seconds, args.note_n, seed, True)
                                    if matched else None)
                out["note_pieces"] = renormalize(notes, preset, info["stats"], stats)
        else:
            pieces, joins = chained_long(G, info, args.n, args.seconds, seed, device, stats, bar)
            out["block_frames"] = args.block_frames or joins
            if want_notes:
                out["note_pieces"] = chained_long(G, info, args.note_n, args.note_seconds, seed + 5000,
                                                  device, stats, bar)[0]
    out["pieces"] = pieces
    return out


def _f(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def to_markdown(report: dict) -> str:
    """The report as a Markdown page: pieces table (real | fake), style table."""
    p = report.get("pieces")
    lines = ["# Long pieces and styles", "", f"real: `{report['real']}`, fake: `{report['fake']}`", ""]
    if p:
        r, f = p["sets"]["real"], p["sets"]["fake"]
        lines += [f"## Pieces: {p['seconds']:g} s ({f['n']} fake, {r['n']} real excerpts)", "",
                  "| measure | real | fake |", "|---|---|---|"]
        if "window_key_agreement" in f:
            rk, fk = r["window_key_agreement"], f["window_key_agreement"]
            for key, what in (("agreement", f"window key agreement ({fk['window_s']:g} s windows)"),
                              ("windows_with_key", "windows with a key"), ("notes_per_s", "notes per second")):
                lines.append(f"| {what} | {_f(rk[key])} | {_f(fk[key])} |")
        for key, what in (("share_above_p99", "boundary flux > real p99 (share)"),
                          ("frame_share_above_p99", "any frame's flux > real p99 (share: the base rate)"),
                          ("max_ratio", "max boundary flux / real p99"),
                          ("boundary_rank", "boundary flux rank in its piece (0.5 = ordinary)"),
                          ("boundary_to_median", "median flux, boundary / all frames")):
            lines.append(f"| {what} | {_f(r['join_flux'][key])} | {_f(f['join_flux'][key])} |")
        bf = p["block_frames"]
        lines += ["", f"Real flux p99: {p['flux_p99_real']:.1f} nats; boundaries "
                  + (f"every {bf} frames" if isinstance(bf, int) else f"at frames {bf}") + ".", ""]
    nt = report.get("notes")
    if nt:
        r, f = nt["sets"]["real"], nt["sets"]["fake"]
        halves = "other pieces than" if nt["halves_disjoint"] else "the same piece as"
        lines += [f"## Notes of {nt['seconds']:g} s pieces ({nt['n_fake']} fake, {nt['n_real_b']} "
                  f"real from {halves} the {nt['n_real']} real reference)", "", "| measure | real | fake |",
                  "|---|---|---|"]
        for key, what in (("in_key_share", "in-key share above chance"), ("notes_per_s", "notes per second"),
                          ("polyphony", "polyphony"), ("key_agreement_notes", "key agreement of the halves"),
                          ("ioi_median_s", "inter-onset interval, median (s)"),
                          ("pc_js", "pitch-class divergence to the reference (JS; real = floor)"),
                          ("fd_notes", "note FD to the reference (real = floor)")):
            lines.append(f"| {what} | {_f(r.get(key))} | {_f(f.get(key))} |")
        rep = nt.get("pc_js_repeats")
        if rep:
            lines += ["", f"Pitch-class divergence over {rep['repeats']} splits of the real pieces into two "
                      f"halves: floor {rep['floor_mean']:.4f} +- {rep['floor_sd']:.4f}, fake "
                      f"{rep['fake_mean']:.4f} +- {rep['fake_sd']:.4f}, {rep['ratio']:.1f}x the floor."]
        lines.append("")
    s = report.get("style")
    if s:
        verdict = "passes" if s["passes"] else "fails"
        lines += ["## Styles", "", f"Balanced accuracy, real held-out {_f(s['real_accuracy'])} "
                  f"({s['n_heldout']} clips), fake {_f(s['fake_accuracy'])} ({s['n_fake']} clips); ratio "
                  f"{_f(s['ratio'])} ({verdict} the {s['ratio_bar']:.2f} bar); chance {_f(s['chance'])}.", "",
                  "| style | real | fake |", "|---|---|---|"]
        lines += [f"| {k} | {_f(v['real'])} | {_f(v['fake'])} |" for k, v in s["per_style"].items()]
    elif report.get("style_skipped"):
        lines += ["## Styles", "", report["style_skipped"]]
    if report.get("repeats"):
        from ..evaluate.piece_repeats import to_markdown as repeats_markdown

        lines += [""] + repeats_markdown(report["repeats"])
    return "\n".join(lines) + "\n"


def _measure(ds, fake: dict, transcriber, seed: int, progress: bool) -> dict:
    """One draw: {"pieces"[, "notes"]} of the generated pieces against real excerpts of ``seed``."""
    from ..evaluate.pieces import piece_notes_report, piece_report

    out = {"pieces": piece_report(ds, fake["pieces"], transcriber, fake["block_frames"], len(fake["pieces"]),
                                  seed, progress)}
    if fake["note_pieces"] is not None:
        out["notes"] = piece_notes_report(ds, fake["note_pieces"], transcriber, len(fake["note_pieces"]), seed,
                                          progress)
    return out


def run(args: argparse.Namespace) -> int:
    from ..atomic import write_json, write_text
    from ..data.dataset import PianoDataset
    from ..data.labels import dataset_labels
    from ..evaluate import piece_repeats
    from ..evaluate.style import style_report

    if args.note_seconds < 0:
        raise PianoGANError("--note-seconds must be >= 0")
    for name in ("n", "style_n", "note_n", "repeats"):
        if getattr(args, name) < 1:
            raise PianoGANError(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.seconds <= 3600:
        raise PianoGANError(f"--seconds must be > 0 and at most 3600, got {args.seconds:g}")
    if args.block_frames is not None and args.block_frames < 1:
        raise PianoGANError("--block-frames must be at least 1")
    if not Path(args.real).is_dir():
        raise PianoGANError(f"real dataset not found: {args.real}")
    ds = PianoDataset(args.real)
    progress = not args.quiet
    found = dataset_labels(ds)
    styles = None if found is None else list(found[0])
    fake = load_fake(args, ds, styles, progress)
    if args.repeats > 1 and "generator" not in fake:
        raise PianoGANError("--repeats needs a generator (fixed images cannot be drawn again)")
    transcriber = None
    if not args.no_notes:
        from ..transcribe import Transcriber

        transcriber = Transcriber()
    report: dict = {"format_version": 1, "real": str(args.real), "fake": str(args.fake), **fake["info"],
                    "settings": {"seconds": args.seconds, "n": args.n, "style_n": args.style_n, "seed": args.seed,
                                 "repeats": args.repeats, "note_seconds": args.note_seconds, "note_n": args.note_n,
                                 "style_mix": args.style_mix,
                                 "notes": not args.no_notes, "preset": ds.preset.name}}
    if progress:
        print(f"pianogan evaluate-pieces: {len(fake['pieces'])} pieces of {args.seconds:g} s", file=sys.stderr)
    report.update(_measure(ds, fake, transcriber, args.seed, progress))
    if fake["style_images"] is not None:
        report["style"] = style_report(ds, fake["style_images"], fake["style_labels"], seed=args.seed,
                                       progress=progress)
    else:
        report["style_skipped"] = ("no style report: the fake input is not a style-conditioned any-length "
                                   "generator" + ("" if found else ", and the dataset has no style labels"))
    if args.repeats > 1:  # the first draw is the report above; the others only add their figures
        seeds = piece_repeats.draw_seeds(args.seed, args.repeats)
        draws = [piece_repeats.draw_figures(report)]
        for seed in seeds[1:]:
            if progress:
                print(f"pianogan evaluate-pieces: draw {len(draws) + 1} of {args.repeats} (seed {seed})",
                      file=sys.stderr)
            again = generated(args, ds, fake["generator"], styles, seed, progress, with_styles=False)
            draws.append(piece_repeats.draw_figures(_measure(ds, again, transcriber, seed, progress)))
        report["repeats"] = piece_repeats.summarise(draws, seeds)
    out = Path(args.out) if args.out else default_out(args.fake)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PianoGANError(f"cannot create the output directory {out}: {e.strerror}") from None
    write_json(out / "pieces.json", report)
    write_text(out / "pieces.md", to_markdown(report))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(to_markdown(report))
        print(f"wrote {out / 'pieces.json'}, {out / 'pieces.md'}")
    return 0
