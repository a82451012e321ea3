"""`pianogan export`: a trained run's EMA generator -> a pretrained model that ships in the package."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import PianoGANError

HELP = "turn a trained run into a shipped pretrained model (fp16 safetensors + hash + card)"
DESCRIPTION = """\
Writes RUN's EMA generator (generator.safetensors) as NAME.safetensors into the package's
pretrained folder (or --folder), in float16 unless --fp32, records its SHA-256 in MODELS.json there
and copies --card (a markdown model card) beside it. `pianogan generate` without a RUN then uses it,
after checking the hash. The file must stay within 30 MB. --calibrate-from DATA first matches a
longform model to DATA's training clips: its share of each style (the mix played when no --style
is asked for), the share of each key per style (from their piano rolls, when DATA has them: each
generated clip is transposed to a key drawn from its style's), with `match_dynamics` set a map of
its strike values onto the data's rolls' (each clip's r-th loudest strike as loud as a real
clip's), its loudness (one strike gain; with `level_through_ghosts` set too, the scale of the
faint strikes below that map first), and last how fast its global latent drifts in a long piece
(so that its key changes as often as between consecutive clips of one of the data's pieces, each
piece weighing alike; measured on 256 generated 60 s pieces at 15-120 s and read between them);
all are kept in its config. Written to --folder under the name of a shipped model, it ends with
a line saying whether the file is that model (bit for bit, the same weights, or another model:
training is deterministic on one machine only). On 2 CPU cores the whole export of the recipe's
run takes about a minute."""


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="run directory, step-N.pt checkpoint or generator.safetensors")
    p.add_argument("--name", required=True, help="name of the pretrained model, e.g. piano-longform")
    p.add_argument("--card", metavar="FILE.md", help="model card to ship beside the weights")
    p.add_argument("--folder", metavar="DIR", help="where to write (default: the package's pretrained/)")
    p.add_argument("--calibrate-from", "--level-from", dest="level_from", metavar="DATA",
                   help="calibrate first (longform): a prepared dataset whose training clips set the "
                        "model's style mix, key shares and mean level")
    p.add_argument("--figure", action="append", default=[], metavar="NAME=VALUE",
                   help="a measured figure to record with the model (repeatable; the demo's report "
                        "shows them), e.g. --figure 'FD=2.9x the real floor'")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="settings",
                   help="a sampling setting to store instead of the run's (repeatable; only the "
                        "family's fields that act outside training, and a wrong one is refused with "
                        "their list), applied before --calibrate-from, e.g. --set truncation=0.8")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights")
    p.add_argument("--json", action="store_true", help="print the registry entry as JSON")
    p.set_defaults(func=run)


def parse_pairs(items: list[str], wants: str) -> dict[str, str]:
    """Repeated NAME=VALUE options -> {name: value}; a malformed one is a one-line error."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise PianoGANError(f"{wants}, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def run(args) -> int:
    from ..pretrained import HERE, compare_to_shipped, export

    card = ""
    if args.card:
        path = Path(args.card)
        if not path.is_file():
            raise PianoGANError(f"model card not found: {path}")
        card = path.read_text()
    folder = Path(args.folder) if args.folder else HERE
    entry = export(args.run, args.name, folder=folder,
                   fp16=not args.fp32, card=card, level_from=args.level_from,
                   figures=parse_pairs(args.figure, "--figure wants NAME=VALUE"),
                   settings=parse_pairs(args.settings, "--set wants FIELD=VALUE"))
    match = None
    if folder.resolve() != HERE:  # beside the shipped file of that name, as `make model` exports: is it that file?
        match = compare_to_shipped(args.name, folder / entry["file"], digest=entry["sha256"])
    if args.json:
        print(json.dumps({**entry, **({"shipped_match": match} if match else {})}, indent=2))
    else:
        print("\n".join(summary(args.name, entry) + ([match] if match else [])))
    return 0


def summary(name: str, entry: dict) -> list[str]:
    """What an export did, a line per calibration, from its registry ``entry``."""
    lines = [f"exported {name}: {entry['file']} ({entry['bytes'] / 2 ** 20:.1f} MB, {entry['dtype']}, "
             f"sha256 {entry['sha256'][:16]}...)"]
    if "level" in entry:
        lv = entry["level"]
        lines.append(f"level: strike gain {lv['gain']:.3f} (mean level {lv['before']:+.4f} -> {lv['after']:+.4f}, "
                     f"real {lv['real']:+.4f})")
    if "drift" in entry:
        lines.append(_key_line(entry["drift"]))
    if "dynamics" in entry:
        dy = entry["dynamics"]
        lines.append(f"dynamics: strikes mapped onto the data's ({'one map per style' if dy['per_style'] else 'one map'}); "
                     f"the model strikes {dy['strikes_per_clip']['model']:.0f} times a clip, "
                     f"the data {dy['strikes_per_clip']['real']:.0f}")
    if "key_shares" in entry:
        from ..keys import KEY_NAMES

        top = sorted(range(24), key=lambda k: -entry["key_shares"][k])[:3]
        lines.append("keys: " + ", ".join(f"{KEY_NAMES[k]} {entry['key_shares'][k]:.0%}" for k in top)
                     + " ... (each clip is moved to a key drawn from these"
                     + (", per style" if "style_shares" in entry else "") + ")")
    if "style_shares" in entry:
        lines.append("styles when none is asked for: "
                     + ", ".join(f"{k} {v:.0%}" for k, v in entry["style_shares"].items()))
    return lines


def _key_line(dr: dict) -> str:
    """The key calibration's line: the drift of the global latent, or for a harmony-plan model
    how often its plans keep their scale (longform_drift), with the agreement measured at or
    next to the chosen value."""
    knob = "plan_key_hold" if "plan_key_hold" in dr else "drift_seconds"
    value = dr[knob]
    unit = "" if knob == "plan_key_hold" else " s"
    at = dr["agreement"].get(f"{value:g}")
    if at is not None:
        model = f"model {at:.2f}"
    else:  # read between two measured candidates (longform_drift.pick_drift / pick_hold): name them
        points = sorted(float(k) for k in dr["agreement"] if knob == "plan_key_hold" or float(k) > 0)
        near = [c for c in points if c < value][-1:] + [c for c in points if c > value][:1]
        model = "model " + ", ".join(f"{dr['agreement'][f'{c:g}']:.2f} at {c:g}{unit}" for c in near)
    if knob == "plan_key_hold":
        what = f"plans keep their scale at weight {value:g} beside the corpus's key steps"
    else:
        what = "drift of the global latent: " + (f"anchors every {value:g} s" if value else "none")
    return f"{what} (key agreement of consecutive 10 s windows: {model}, real {dr['real']:.2f})"
