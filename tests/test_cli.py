"""The command line as a whole: every command's parser builds without the heavy libraries."""

from __future__ import annotations

import subprocess
import sys


def test_help_of_every_command_does_not_import_torch_or_librosa():
    # ``pianogan --help`` and ``pianogan CMD --help`` build every parser; the commands import
    # torch and librosa inside ``run`` (about 2 s of start-up on 2 cores) so help stays instant.
    code = ("import sys; from pianogan.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'librosa', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
