"""`pianogan reconstruct` and the round trip behind it (pianogan.roundtrip)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from pianogan import PRESETS, get_preset
from pianogan.cli import main
from pianogan.roundtrip import GLSettings, file_stats, round_trip, split_clips
from pianogan.synth import piano_piece

TINY = get_preset("tiny")


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "piano.wav"
    sf.write(str(path), piano_piece(3.0, 16_000, seed=7), 16_000)  # 1.5 tiny clips, other rate
    return path


def test_split_clips_pads_the_last_one():
    y = np.arange(1, TINY.n_samples * 2 + 11, dtype=np.float32)
    clips = split_clips(y, TINY)
    assert clips.shape == (3, TINY.n_samples)
    assert clips[2, 10] == 0 and clips[2, 9] == y[-1]
    assert split_clips(y, TINY, first_clip=True).shape == (1, TINY.n_samples)


def test_round_trip_lengths_and_loss_decomposition():
    y = piano_piece(3.3, TINY.sample_rate, seed=1)
    rt = round_trip(y, TINY, gl=GLSettings(n_iter=16))
    assert rt.audio.shape == y.shape and rt.audio.dtype == np.float32
    assert rt.images.shape == (2, *TINY.image_shape)
    m = rt.metrics
    assert set(m) == {"image", "no_resize", "phase_only"}
    # resize only loses: the full round trip is worse than without the resize
    assert m["image"]["magnitude_sc_db"] > m["no_resize"]["magnitude_sc_db"] + 3
    assert m["phase_only"]["magnitude_sc_db"] == -np.inf
    assert m["image"]["sc_db"] < -5  # loose bound: it is a reconstruction, not noise
    first = round_trip(y, TINY, gl=GLSettings(n_iter=2), first_clip=True, variants=("image",))
    assert first.audio.shape == (TINY.n_samples,) and set(first.metrics) == {"image"}


@pytest.mark.slow
def test_20s_round_trip_beats_a_loose_bound():
    p = PRESETS["20s-512"]
    y = piano_piece(p.clip_seconds, p.sample_rate, seed=0)
    rt = round_trip(y, p, gl=GLSettings(n_iter=32), variants=("image",))
    # measured -20.1 dB; the paper's pipeline gets -14.3 dB on this clip
    assert rt.metrics["image"]["sc_db"] < -17.0
    assert rt.metrics["image"]["lsd_db"] < 3.0


def test_silence_and_short_files_round_trip():
    rt = round_trip(np.zeros(TINY.n_samples, np.float32), TINY, gl=GLSettings(n_iter=2))
    assert np.all(np.isfinite(rt.audio))
    short = round_trip(np.array([0.2, -0.1, 0.3], np.float32), TINY, gl=GLSettings(n_iter=2))
    assert short.audio.shape == (3,) and np.all(np.isfinite(short.audio))
    assert file_stats(np.zeros(10, np.float32), TINY).std == 1.0


def test_cli_writes_audio_and_json(wav, tmp_path, capsys):
    out = tmp_path / "rt.wav"
    code = main(["reconstruct", str(wav), "--preset", "tiny", "--out", str(out), "--n-iter", "4", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    data, sr = sf.read(str(out))
    assert sr == TINY.sample_rate and len(data) == round(3.0 * TINY.sample_rate)
    assert report["clips"] == 2 and report["stats_from"] == "the input file"
    assert set(report["metrics"]) == {"image", "no_resize", "phase_only"}
    assert report["metrics"]["phase_only"]["magnitude_sc_db"] is None  # exact: JSON null, not -inf
    assert all(np.isfinite(report["metrics"]["image"][k]) for k in ("sc_db", "lsd_db"))


def test_cli_table_and_stats_from(wav, tmp_path, capsys):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "stats.json").write_text(json.dumps({"mean": -4.0, "std": 3.0, "count": 10}))
    (ds / "preset.json").write_text(json.dumps(TINY.to_dict()))
    assert main(["reconstruct", str(wav), "--stats-from", str(ds), "--n-iter", "2"]) == 0
    out = capsys.readouterr().out
    assert "preset tiny" in out and f"stats from {ds}/stats.json" in out
    assert "image" in out and "no-resize" in out and "phase-only" in out


def test_cli_sweep_one_table(wav, capsys):
    assert main(["reconstruct", str(wav), "--sweep", "--preset", "tiny", "--n-iter", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["preset"] for r in report["presets"]] == ["tiny"]
    common = report["presets"][0]["reference"]  # one STFT for all presets, at the input's rate
    assert common["sample_rate"] == 16_000 and common["sc_db"] < 0
    assert main(["reconstruct", str(wav), "--sweep", "--preset", "tiny", "--n-iter", "2"]) == 0
    assert "phase-only SC" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["missing", "empty", "not-audio", "directory", "bad-preset", "bad-stats"])
def test_cli_errors_are_one_line(case, wav, tmp_path, capsys):
    args = {"missing": [str(tmp_path / "nope.wav")],
            "empty": [str(tmp_path / "empty.wav")],
            "not-audio": [str(tmp_path / "text.wav")],
            "directory": [str(tmp_path)],
            "bad-preset": [str(wav), "--preset", "no-such-preset"],
            "bad-stats": [str(wav), "--stats-from", str(tmp_path)]}[case]
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    code = main(["reconstruct", *args, "--preset", "tiny"] if case != "bad-preset" else ["reconstruct", *args])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and err.startswith("pianogan reconstruct: error:")
    assert "Traceback" not in err


def test_cli_error_through_a_real_process(tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    proc = subprocess.run([sys.executable, "-m", "pianogan", "reconstruct", str(bad), "--preset", "tiny"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "error:" in proc.stderr
