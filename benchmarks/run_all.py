"""Run every benchmark in one go (`make bench`): each benchmarks/bench_*.py as its own process,
so one's threads and memory never skew the next. Extra arguments (e.g. --quick) are passed on."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from pianogan.train.precision import cpu_name  # bench scripts import it from here too

HERE = Path(__file__).resolve().parent


def write_result(name: str, data: dict) -> Path:
    """Write a benchmark's figures to benchmarks/results/NAME.json and say so."""
    path = HERE / "results" / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def main() -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    print(f"PianoGAN benchmarks on {cpu_name()} ({platform.machine()}), python {platform.python_version()}")
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} " + "=" * (60 - len(script.stem)), flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script), *sys.argv[1:]])
        print(f"--- {script.stem}: exit {rc}, {time.perf_counter() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(script.stem)
    print(f"\nresults (JSON): {HERE / 'results'}")
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
