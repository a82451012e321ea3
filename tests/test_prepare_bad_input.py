"""`pianogan prepare` on bad input that once broke it: every bad file is skipped, named, counted."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
import soundfile as sf
import torch

from pianogan.config import get_preset
from pianogan.data import prepare as prepare_module
from pianogan.data.prepare import PrepareConfig, prepare
from pianogan.synth import piano_piece
from pianogan.threads import torch_threads

PRESET = get_preset("tiny")  # 2 s clips at 8 kHz
SR = 22_050


def good(path, seconds=4.2, seed=0):
    sf.write(str(path), piano_piece(seconds, SR, seed=seed), SR)


def skipped(out) -> dict[str, str]:
    lines = (out / "skipped.tsv").read_text().splitlines()[1:]
    return dict(line.split("\t", 1) for line in lines)


def test_a_dangling_link_and_a_file_that_vanishes_are_skipped_named_and_counted(tmp_path, monkeypatch):
    root = tmp_path / "audio"
    root.mkdir()
    good(root / "a.wav")
    good(root / "gone.wav", seed=1)
    os.symlink(tmp_path / "nowhere.wav", root / "dangling.wav")
    real_list = prepare_module.list_items

    def list_then_delete(spec):  # the file disappears between listing and reading
        listed = real_list(spec)
        (root / "gone.wav").unlink()
        return listed

    monkeypatch.setattr(prepare_module, "list_items", list_then_delete)
    out = tmp_path / "o"
    summary = prepare(PrepareConfig(f"audio:{root}", PRESET, out), progress=False)
    assert summary["clips"]["total"] == 2 and summary["files"]["skipped"] == 2
    reasons = skipped(out)
    assert reasons["dangling.wav"] == "dangling symbolic link"
    assert "not found" in reasons["gone.wav"]


def test_infinite_samples_are_called_non_finite(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    good(root / "a.wav")
    bad = np.full(3 * SR, np.inf, np.float32)
    bad[::2] = -np.inf
    sf.write(str(root / "inf.wav"), bad, SR, subtype="FLOAT")
    nan = piano_piece(4.0, SR, seed=2)
    nan[SR] = np.nan  # one NaN in good audio is still not valid audio
    sf.write(str(root / "nan.wav"), nan, SR, subtype="FLOAT")
    out = tmp_path / "o"
    summary = prepare(PrepareConfig(f"audio:{root}", PRESET, out), progress=False)
    assert summary["files"]["skipped"] == 2
    reasons = skipped(out)
    assert "non-finite" in reasons["inf.wav"] and "near-silent" not in reasons["inf.wav"]
    assert "non-finite" in reasons["nan.wav"]


def _damaged_mp3(path) -> None:
    tone = (0.3 * np.sin(np.arange(SR * 5) * 2 * np.pi * 440 / SR)).astype(np.float32)
    sf.write(str(path), tone, SR, format="MP3")
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    for i in range(2000, len(data) - 2000, 997):
        data[i:i + 40] = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def test_decoder_messages_do_not_leak_to_stderr_but_are_reported(tmp_path, capfd):
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 support")
    root = tmp_path / "audio"
    root.mkdir()
    good(root / "a.wav")
    _damaged_mp3(root / "damaged.mp3")
    out = tmp_path / "o"
    summary = prepare(PrepareConfig(f"audio:{root}", PRESET, out), progress=False)
    err = capfd.readouterr().err
    assert "MPEG" not in err and "resync" not in err  # nothing from libmpg123 on the terminal
    assert summary["files"]["decoder_messages"] == 1
    lines = (out / "decoder_messages.tsv").read_text().splitlines()
    assert lines[0] == "source\tmessage" and len(lines) == 2
    assert lines[1].startswith("damaged.mp3\t") and "MPEG" in lines[1]
    record = json.loads(next((out / "items").glob("damaged*.json")).read_text())
    assert "more lines" in record["decoder_messages"]


def test_torch_threads_restores_the_setting_even_when_two_threads_overlap():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before

    # A enters, B enters, A leaves while B still runs: B keeps its setting; the last one out restores
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with torch_threads(1):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with torch_threads(1):
            b_in.set()
            a_out.wait(5)
            seen["b after a left"] = torch.get_num_threads()

    threads = [threading.Thread(target=f) for f in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["b after a left"] == 1
    assert torch.get_num_threads() == before
