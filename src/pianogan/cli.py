"""The `pianogan` command line. Each sub-command lives in ``pianogan/commands/<name>.py`` and
provides ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.

Command modules import heavy libraries (torch, librosa) inside their ``run`` function, so
``pianogan --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from . import __version__
from .errors import PianoGANError, PianoGANWarning

COMMANDS = ["reconstruct", "prepare", "train", "generate", "evaluate", "evaluate_pieces", "evaluate_rolls",
            "transcribe", "export",
            "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pianogan",
        description="Piano music GANs on STFT magnitude images: prepare data, train, generate, "
                    "evaluate, and turn spectrogram images back into audio.")
    parser.add_argument("--version", action="version", version=f"pianogan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"pianogan.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"pianogan.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def _one_line_warning(command: str, default):
    """A warnings.showwarning that prints PianoGANWarning as ``pianogan CMD: warning: ...``."""
    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PianoGANWarning):
            print(f"pianogan {command}: warning: {message}", file=sys.stderr, flush=True)
        else:
            default(message, category, filename, lineno, file, line)
    return show


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():  # restores the default display afterwards
            warnings.showwarning = _one_line_warning(args.command, warnings.showwarning)
            return int(args.func(args) or 0)
    except PianoGANError as e:
        print(f"pianogan {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pianogan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
