"""`pianogan export`: a trained run's EMA generator -> a pretrained model that ships in the package."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "turn a trained run into a shipped pretrained model (fp16 safetensors + hash + card)"
DESCRIPTION = """\
Writes RUN's EMA generator (generator.safetensors) as NAME.safetensors into the package's
pretrained folder (or --folder), in float16 unless --fp32, records its SHA-256 in MODELS.json there
and copies --card (a markdown model card) beside it. `pianogan generate` without a RUN then uses it,
after checking the hash. The file must stay within 30 MB. --level-from DATA first sets a longform
model's loudness to that of DATA's training clips (one strike gain, kept in its config)."""


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="run directory, step-N.pt checkpoint or generator.safetensors")
    p.add_argument("--name", required=True, help="name of the pretrained model, e.g. piano-longform")
    p.add_argument("--card", metavar="FILE.md", help="model card to ship beside the weights")
    p.add_argument("--folder", metavar="DIR", help="where to write (default: the package's pretrained/)")
    p.add_argument("--level-from", metavar="DATA", help="set the loudness first: a prepared dataset whose "
                   "training clips the model's mean level is matched to (longform)")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights")
    p.add_argument("--json", action="store_true", help="print the registry entry as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import PianoGANError
    from ..pretrained import HERE, export

    card = ""
    if args.card:
        path = Path(args.card)
        if not path.is_file():
            raise PianoGANError(f"model card not found: {path}")
        card = path.read_text()
    entry = export(args.run, args.name, folder=Path(args.folder) if args.folder else HERE,
                   fp16=not args.fp32, card=card, level_from=args.level_from)
    if args.json:
        print(json.dumps(entry, indent=2))
    else:
        print(f"exported {args.name}: {entry['file']} ({entry['bytes'] / 2 ** 20:.1f} MB, {entry['dtype']}, "
              f"sha256 {entry['sha256'][:16]}...)")
        if "level" in entry:
            lv = entry["level"]
            print(f"level: strike gain {lv['gain']:.3f} (mean level {lv['before']:+.4f} -> {lv['after']:+.4f}, "
                  f"real {lv['real']:+.4f})")
    return 0
