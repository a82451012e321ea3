"""The demo's stage cache: run stages in order with headers and timings, and re-use finished work.

``OUT/demo.json`` keeps, per stage, a key of its settings chained with the previous stage's key;
a stage whose key and outputs are unchanged is skipped, and one that was interrupted with the
same key is told to resume.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

from ..atomic import write_json
from ..errors import PianoGANError
from .config import STAGES


class Stages:
    """Runs stages in order with headers, timings and re-use of finished work (OUT/demo.json)."""

    def __init__(self, out: Path, force: bool = False):
        self.out = out
        self.path = out / "demo.json"
        self.state = {}
        if self.path.is_file() and not force:
            try:
                self.state = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                self.state = {}
        self.state.setdefault("stages", {})
        self.timings: list[tuple[str, float, str]] = []
        self.prev_key = ""
        self.t_start = time.perf_counter()

    def save(self) -> None:
        write_json(self.path, self.state)

    def header(self, name: str, what: str = "") -> None:
        i = STAGES.index(name) + 1
        elapsed = time.perf_counter() - self.t_start
        print(f"\n=== [{i}/{len(STAGES)}] {name}{': ' + what if what else ''}  (t = {elapsed:.0f} s) ===",
              file=sys.stderr, flush=True)

    def run(self, name: str, what: str, settings: dict, outputs: list[Path], fn) -> None:
        """Run ``fn(resume)`` unless its outputs exist and were made with the same settings.

        ``resume`` is True when an earlier attempt with the same settings was interrupted: the
        stage may then continue its partial output (prepare and train resume) instead of
        deleting it. What ``fn`` returns (a dict or None) is kept in demo.json with the stage.
        """
        key = hashlib.sha256(json.dumps([self.prev_key, settings], sort_keys=True,
                                        default=str).encode()).hexdigest()[:16]
        self.prev_key = key
        self.header(name, what)
        old = self.state["stages"].get(name, {})
        if old.get("key") == key and all(p.exists() for p in outputs):
            print(f"    re-using {', '.join(str(p) for p in outputs)} (made earlier with the same "
                  f"settings; --force to redo)", file=sys.stderr)
            self.timings.append((name, 0.0, f"re-used (took {old.get('seconds', 0):.0f} s)"))
            return
        # an interrupted attempt with the same settings is continued, anything else starts afresh
        resume = old.get("started") == key
        self.state["stages"][name] = {"started": key}
        self.save()
        t0 = time.perf_counter()
        result = fn(resume)
        dt = time.perf_counter() - t0
        self.state["stages"][name] = {"key": key, "started": key, "seconds": round(dt, 2),
                                      "settings": settings, **({"result": result} if result else {})}
        self.save()
        self.timings.append((name, dt, "resumed" if resume else "done"))
        print(f"    {name} done in {dt:.1f} s", file=sys.stderr, flush=True)


def cli(argv: list[str]) -> None:
    """Run one ``pianogan`` command in this process; raise on a non-zero exit."""
    from ..cli import main

    print("    $ pianogan " + " ".join(argv), file=sys.stderr, flush=True)
    rc = main(argv)
    if rc != 0:
        raise PianoGANError(f"`pianogan {' '.join(argv)}` failed with exit code {rc}")


def run_metrics(run: Path) -> list[dict]:
    """The records of RUN/metrics.jsonl ([] while there is none; unreadable lines skipped)."""
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by a kill
            continue
    return records


def fresh(path: Path) -> Path:
    """Remove a stage's stale output directory (only ever one inside the demo folder)."""
    if path.exists():
        shutil.rmtree(path)
    return path
