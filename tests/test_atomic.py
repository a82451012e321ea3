"""pianogan.atomic: a reader sees the old file or the new one, never part of one; temporary
files are fsync'ed (and their directory) and never left behind, except by a killed process,
and then remove_stale_temps clears them. Every writer in the package goes through it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pianogan import atomic

SRC = Path(__file__).resolve().parents[1] / "src" / "pianogan"


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_helpers_write_and_leave_no_temp(tmp_path):
    atomic.write_json(tmp_path / "a.json", {"x": [1, 2]})
    atomic.write_text(tmp_path / "b.txt", "héllo\n")
    atomic.write_bytes(tmp_path / "c.bin", b"\x00\x01")
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": [1, 2]}
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    atomic.write_text(tmp_path / "b.txt", "new")  # over an existing file
    assert (tmp_path / "b.txt").read_text() == "new"
    assert _entries(tmp_path) == ["a.json", "b.txt", "c.bin"]


def test_library_writing_by_path_keeps_the_suffix(tmp_path):
    # np.save appends ".npy" unless the name ends in it: the temporary name must keep it last.
    with atomic.atomic_path(tmp_path / "images.npy") as tmp:
        assert tmp.suffix == ".npy" and tmp.parent == tmp_path and tmp.name.startswith(".")
        np.save(tmp, np.arange(3))
    assert np.array_equal(np.load(tmp_path / "images.npy"), np.arange(3))
    assert _entries(tmp_path) == ["images.npy"]


def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "stats.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and _entries(tmp_path) == ["stats.json"]


def test_file_and_directory_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else fd)
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    atomic.write_text(tmp_path / "x.txt", "x")
    assert len(synced) == 2
    if isinstance(synced[1], str):  # where /proc names the descriptors
        assert synced[0].startswith(str(tmp_path / ".x.tmp")) and synced[1] == str(tmp_path)


def test_temp_names_are_unique_per_call(tmp_path):
    with atomic.atomic_path(tmp_path / "a.txt") as t1, atomic.atomic_path(tmp_path / "a.txt") as t2:
        assert t1 != t2
        t1.write_text("1")
        t2.write_text("2")
    assert (tmp_path / "a.txt").read_text() in ("1", "2")


def test_remove_stale_temps(tmp_path):
    (tmp_path / ".shard.tmp123-0.npy").write_bytes(b"half")
    (tmp_path / ".latest.tmp9-3").write_text("x")
    (tmp_path / ".step-0000002.pt.tmp77").write_text("x")  # older checkpoint writer
    (tmp_path / "manifest.csv.tmp").write_text("x")  # the hand-written writers it replaced
    (tmp_path / "images.tmp.npy").write_text("x")
    for keep in ("shard.npy", ".lock", "notes.tmpl", "template.txt"):
        (tmp_path / keep).write_text("whole")
    with atomic.atomic_path(tmp_path / "a.npy") as tmp:  # what this version's writer names
        assert atomic._STALE.match(tmp.name)
        np.save(tmp, np.zeros(1))
    assert atomic.remove_stale_temps(tmp_path) == 5
    assert _entries(tmp_path) == [".lock", "a.npy", "notes.tmpl", "shard.npy", "template.txt"]
    assert atomic.remove_stale_temps(tmp_path / "missing") == 0


_WRITER = """
import sys
from pianogan.atomic import write_bytes
path, n = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
i = 0
while True:
    write_bytes(path, bytes([65 + i % 2]) * n)
    i += 1
"""


def test_sigkill_mid_write_leaves_a_whole_file(tmp_path):
    """A writer SIGKILLed at random moments: the target always holds one whole version."""
    rng = np.random.default_rng(0)
    target, n = tmp_path / "data.bin", 1 << 20
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(n)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.01, 0.15)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        if target.exists():
            data = target.read_bytes()
            assert len(data) == n and data in (b"A" * n, b"B" * n)
    atomic.remove_stale_temps(tmp_path)
    assert _entries(tmp_path) in ([], ["data.bin"])


def test_every_writer_uses_atomic():
    """No module but atomic.py renames temporary files by hand (the ~13 copies it replaced)."""
    pattern = re.compile(r"os\.replace\(|\btmp\w*\.(?:replace|rename)\(|\.tmp[\"'.]")
    offenders = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if p.name != "atomic.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_safetensors_are_written_byte_for_byte_the_same_for_the_same_input(tmp_path):
    import torch
    from safetensors import safe_open

    from pianogan.train.checkpoint import write_safetensors

    meta = {f"field{i}": "x" * i for i in range(12)}
    tensors = {"b": torch.ones(3), "a": torch.arange(4.0)}
    for i in range(4):
        write_safetensors(tmp_path / f"{i}.safetensors", tensors, meta)
    assert len({(tmp_path / f"{i}.safetensors").read_bytes() for i in range(4)}) == 1
    with safe_open(str(tmp_path / "0.safetensors"), "pt") as f:
        assert f.metadata() == meta and torch.equal(f.get_tensor("a"), tensors["a"])
