"""The end-to-end demo: ``python -m pianogan.demo --out demo [--quick]`` (what ``make demo`` runs).

Offline, on a CPU, in minutes: prepare the built-in piano corpus (small), train the ``tiny`` SpecGAN
to a time budget, generate clips (short ones, a long continuous piece, a latent interpolation),
turn a few real clips through the same Griffin-Lim for comparison, evaluate generated against real
(with the real-vs-real floor, the untrained generator and a noise ceiling), and write
``OUT/report.html``.

Every stage goes through the ``pianogan`` CLI or the libraries, prints a header, and re-uses its
output when it was already made with the same settings (``OUT/demo.json`` keeps a key per stage),
so a re-run after an interruption only does what is left. ``--force`` redoes everything.

Modules: :mod:`.config` (settings), :mod:`.stages` (the stage cache), :mod:`.budget` (training
to a time budget), :mod:`.pipeline` (the stages and the driver), :mod:`.report` (the HTML page).

Layout of OUT::

    data/      prepared dataset            run/      training run (checkpoints, generator)
    samples/   clips to listen to          long/     one long piece        interp/  interpolation
    fake/      the evaluation set          real/     real clips, inverted  eval/    metrics
    untrained/ the run at step 0           untrained-fake/ its evaluation set
    demo.json  settings, stage keys and timings        report.html
"""

from ..errors import PianoGANError
from .config import QUICK, STAGES, DemoConfig
from .pipeline import main, run_demo
from .stages import Stages, cli

__all__ = ["DemoConfig", "PianoGANError", "QUICK", "STAGES", "Stages", "cli", "main", "run_demo"]
