"""The kill test: `pianogan prepare` and `pianogan train`, SIGKILLed at random moments and run
again, end exactly where an uninterrupted run ends.

Each command runs once uninterrupted (the reference), then in a fresh directory it is started,
killed with SIGKILL at a random moment of its work, started again, ... and finally run to the
end. Every file that must not tear is written through pianogan.atomic, prepare redoes only
unfinished files and train resumes from the newest readable checkpoint, so the results must be
identical: for prepare the bytes of every shard, item record, MIDI file, the manifest, the
statistics and the settings; for train the final weights, optimiser states and every logged
loss. A kill lands while the command works: the delay is drawn from the reference run's working
time, counted from when the process has opened its output (prepare.json / config.json is
written anew then).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pianogan.train import checkpoint as ck
from pianogan.train.metrics import read_metrics

pytestmark = pytest.mark.slow
KILLS = 3
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _started(marker: Path, since: float) -> bool:
    try:
        return marker.stat().st_mtime > since
    except FileNotFoundError:
        return False


def _run(cmd: list[str], marker: Path, kill_after: float | None = None) -> tuple[bool, float]:
    """Run ``cmd``; with ``kill_after``, SIGKILL it that many seconds after ``marker`` is
    written. Returns (killed, seconds from the marker to the end)."""
    launched = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "pianogan", *cmd], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not _started(marker, launched) and proc.poll() is None:
        time.sleep(0.002)
    t0 = time.monotonic()
    killed = False
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            killed = True
    _, err = proc.communicate()
    if not killed:
        assert proc.returncode == 0, err.decode()[-2000:]
    return killed, time.monotonic() - t0


def _kill_and_restart(cmd: list[str], marker: Path, window: float, rng, finished=lambda: False) -> int:
    """Up to KILLS killed attempts, then one to the end; returns the number of kills.

    Each attempt is killed after a draw from U(0, 0.9 window / KILLS): together they stay
    within the work, so each attempt still has work left when its moment comes, and the
    moments fall anywhere in the first 90 % of the run's work. ``finished()`` says the work is
    all saved already (a kill that landed while the process was only exiting): no restart then."""
    for kills in range(KILLS):
        killed, _ = _run(cmd, marker, kill_after=float(rng.uniform(0.0, 0.9 * window / KILLS)))
        if not killed:  # what was left took less than the drawn moment: done
            return kills
        if finished():
            return kills + 1
    if not finished():
        _run(cmd, marker)
    return KILLS


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_prepare_killed_at_random_moments_ends_identical(tmp_path):
    rng = np.random.default_rng(13)
    ref, run = tmp_path / "ref", tmp_path / "run"
    args = ["prepare", "builtin", "--preset", "tiny", "--max-hours", "0.05", "--workers", "1",
            "--quiet"]
    _, window = _run([*args, "--out", str(ref)], ref / "prepare.json")
    kills = _kill_and_restart([*args, "--out", str(run)], run / "prepare.json", window, rng)
    print(f"prepare: killed {kills} times in a {window:.2f} s working window")
    assert kills >= 1  # (3 as drawn, unless the machine got much faster than in the reference run)
    a, b = _files(ref), _files(run)
    for volatile in ("summary.json",):  # run time and the number of reused files
        a.pop(volatile), b.pop(volatile)
    assert sorted(a) == sorted(b)  # no stray temporary file either
    assert any(k.startswith("shards/") for k in a) and "manifest.csv" in a and "stats.json" in a
    for name in a:
        assert a[name] == b[name], name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["clips"] == json.loads((ref / "summary.json").read_text())["clips"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from _train_data import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("kill") / "ds", n=64)


def test_train_killed_at_random_moments_ends_identical(dataset, tmp_path):
    rng = np.random.default_rng(7)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"base": "tiny", "model": {"d": 8, "max_channels": 32, "batch_size": 8},
                               "train": {"sample_images": 0}}))
    ref, run = tmp_path / "ref", tmp_path / "run"
    args = ["train", "--model", "dcgan", "--data", str(dataset), "--config", str(cfg), "--steps", "80",
            "--ckpt-every", "8", "--log-every", "1", "--sample-every", "0", "--no-progress",
            "--resume"]  # --resume: a fresh run when there is no checkpoint yet
    _, window = _run([*args, "--out", str(ref)], ref / "config.json")
    def finished() -> bool:  # the last checkpoint is the run's last write that matters
        last = ck.latest_checkpoint(run)
        return last is not None and ck.checkpoint_step(last) == 80

    kills = _kill_and_restart([*args, "--out", str(run)], run / "config.json", window, rng, finished)
    print(f"train: killed {kills} times in a {window:.2f} s working window")
    assert kills >= 1  # (3 as drawn, unless the machine got much faster than in the reference run)
    ca, cb = (ck.load_checkpoint(ck.latest_checkpoint(r)) for r in (ref, run))
    assert ca["step"] == cb["step"] == 80
    for part in ("G", "D", "G_ema"):
        for k in ca[part]:
            assert torch.equal(ca[part][k], cb[part][k]), (part, k)
    for opt in ("opt_G", "opt_D"):
        for i, st in ca[opt]["state"].items():
            for k, v in st.items():
                assert torch.equal(v, cb[opt]["state"][i][k]), (opt, i, k)
    (ma, bad_a), (mb, bad_b) = read_metrics(ref / "metrics.jsonl"), read_metrics(run / "metrics.jsonl")
    assert bad_a == bad_b == [] and [m["step"] for m in mb] == list(range(1, 81))
    for ra, rb in zip(ma, mb):
        assert {k: v for k, v in ra.items() if not k.startswith("speed/")} == \
               {k: v for k, v in rb.items() if not k.startswith("speed/")}, ra["step"]
    assert not [p for p in run.rglob(".*.tmp*")]
