"""`pianogan prepare maestro:` / `audio:` on a small MAESTRO-shaped tree built on the fly."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pianogan.audio import load_audio
from pianogan.cli import main
from pianogan.config import get_preset
from pianogan.data.dataset import PianoDataset, read_manifest
from pianogan.data.prepare import PrepareConfig, prepare
from pianogan.spectrogram import audio_to_image
from pianogan.synth import piano_piece

PRESET = get_preset("tiny")  # 2 s clips at 8 kHz
SR = 44_100

# file -> (split, composer, title, seconds, rate); "silent tail" adds 3 s of silence after 4 s of music
FILES = {
    "2018/a.wav": ("train", "Frédéric Chopin", "Ballade No. 1", 7.0, SR),  # 3 clips
    "2018/b.wav": ("train", "Johann Sebastian Bach", "Prelude in C", "silent tail", SR),  # 2 + 1 silent
    "2017/v.wav": ("validation", "Franz Liszt", "Étude", 5.0, SR),  # 2 clips
    "2017/t.wav": ("test", "Claude Debussy", "Clair de lune", 4.5, 48_000),  # 2 clips
    "2017/short.wav": ("train", "Erik Satie", "Gnossienne", 1.5, SR),  # shorter than a clip
    "2017/corrupt.wav": ("train", "Maurice Ravel", "Jeux d'eau", None, SR),  # garbage bytes
    "2017/missing.wav": ("test", "Robert Schumann", "Träumerei", None, SR),  # listed, absent
}
EXPECTED = {"train": 5, "validation": 2, "test": 2}


def make_maestro(root: Path) -> Path:
    root.mkdir(parents=True)
    rows = []
    for i, (rel, (split, composer, title, seconds, rate)) in enumerate(FILES.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("corrupt.wav"):
            path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
        elif seconds is not None:
            if seconds == "silent tail":
                mono = np.concatenate([piano_piece(4.0, rate, seed=i), np.zeros(3 * rate, np.float32)])
                seconds = 7.0
            else:
                mono = piano_piece(seconds, rate, seed=i)
            stereo = np.stack([mono, 0.6 * mono + 0.01 * np.roll(mono, 7)], axis=1)
            sf.write(str(path), stereo, rate, subtype="PCM_16")
        rows.append({"canonical_composer": composer, "canonical_title": title, "split": split,
                     "year": rel[:4], "midi_filename": rel.replace(".wav", ".midi"),
                     "audio_filename": rel, "duration": seconds if isinstance(seconds, float) else 7.0})
    with open(root / "maestro-v3.0.0.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture(scope="module")
def maestro(tmp_path_factory) -> Path:
    return make_maestro(tmp_path_factory.mktemp("data") / "maestro-v3.0.0")


@pytest.fixture(scope="module")
def prepared(maestro, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("out") / "ds"
    summary = prepare(PrepareConfig(f"maestro:{maestro}", PRESET, out, workers=1), progress=False)
    return out, summary


def dataset_files(out: Path) -> dict[str, bytes]:
    """Everything that defines the prepared data (not run timings)."""
    files = {name: (out / name).read_bytes() for name in ("manifest.csv", "stats.json", "preset.json",
                                                          "dataset.json", "skipped.tsv")}
    for shard in sorted((out / "shards").glob("*.npy")):
        files[f"shards/{shard.name}"] = shard.read_bytes()
    return files


def numpy_logmag(clip: np.ndarray, preset) -> np.ndarray:
    """log(|STFT| + eps) in float64 with numpy only: periodic Hann, centred zero-padded frames."""
    n_fft, hop = preset.n_fft, preset.hop_length
    x = np.pad(clip.astype(np.float64), n_fft // 2)
    n_frames = 1 + (len(x) - n_fft) // hop
    frames = np.stack([x[i * hop:i * hop + n_fft] for i in range(n_frames)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    return np.log(np.abs(np.fft.rfft(frames * window, axis=1)).T + preset.eps)


def test_clip_counts_per_split_and_metadata(prepared):
    out, summary = prepared
    rows = read_manifest(out / "manifest.csv")
    counts = {s: sum(r["split"] == s for r in rows) for s in EXPECTED}
    assert counts == EXPECTED
    assert summary["clips"] == {**EXPECTED, "total": 9}
    assert summary["silent_clips"] == 1
    assert summary["files"]["prepared"] == 4 and summary["files"]["skipped"] == 3
    by_source = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r)
    assert [float(r["offset_seconds"]) for r in by_source["2018/a.wav"]] == [0.0, 2.0, 4.0]
    assert [float(r["offset_seconds"]) for r in by_source["2018/b.wav"]] == [0.0, 2.0]  # 4-6 s is silent
    for source, clip_rows in by_source.items():
        split, composer, title, *_ = FILES[source]
        assert {(r["split"], r["composer"], r["title"]) for r in clip_rows} == {(split, composer, title)}
        assert all(float(r["duration_seconds"]) == PRESET.clip_seconds for r in clip_rows)


def test_skipped_files_are_named_with_reasons(prepared):
    out, _ = prepared
    lines = (out / "skipped.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "source\treason"
    reasons = dict(line.split("\t", 1) for line in lines[1:])
    assert set(reasons) == {"2017/short.wav", "2017/corrupt.wav", "2017/missing.wav"}
    assert "shorter than one clip" in reasons["2017/short.wav"]
    assert "not found" in reasons["2017/missing.wav"]
    assert "readable" in reasons["2017/corrupt.wav"] or "decod" in reasons["2017/corrupt.wav"]


def test_statistics_equal_direct_numpy_computation(prepared, maestro):
    out, _ = prepared
    values = []
    for r in read_manifest(out / "manifest.csv"):
        if r["split"] != "train":
            continue
        audio, _ = load_audio(maestro / r["source"], PRESET.sample_rate)
        start = int(round(float(r["offset_seconds"]) * PRESET.sample_rate))
        values.append(numpy_logmag(audio[start:start + PRESET.n_samples], PRESET).ravel())
    values = np.concatenate(values)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["count"] == values.size == 5 * PRESET.n_freq * PRESET.n_frames
    assert stats["mean"] == pytest.approx(values.mean(), abs=1e-5)
    assert stats["std"] == pytest.approx(values.std(), rel=1e-5)


def test_images_match_the_forward_transform(prepared, maestro):
    out, _ = prepared
    ds = PianoDataset(out)
    assert not ds.normalized and len(ds) == 9
    r = ds.rows[4]
    audio, _ = load_audio(maestro / r["source"], PRESET.sample_rate)
    start = int(round(float(r["offset_seconds"]) * PRESET.sample_rate))
    expected = audio_to_image(audio[start:start + PRESET.n_samples], PRESET, ds.stats).numpy()
    got = ds[4].numpy()[0]
    assert got.shape == PRESET.image_shape and got.min() >= -1 and got.max() <= 1
    # float16 storage and clipping after (not before) the resize: tiny, local differences only
    assert np.abs(got - expected).mean() < 1e-3
    assert np.abs(got - expected).max() < 1e-2
    np.testing.assert_array_equal(ds.images([4, 0])[0], got)


def test_dataset_filters(prepared):
    out, _ = prepared
    assert len(PianoDataset(out, split="train")) == 5
    assert len(PianoDataset(out, split=["validation", "test"])) == 4
    assert len(PianoDataset(out, composer="chopin")) == 3
    assert len(PianoDataset(out, split="train", composer="liszt")) == 0


def test_rerun_resumes_without_redoing_anything(prepared, maestro, capsys):
    out, _ = prepared
    before = dataset_files(out)
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "shards").glob("*.npy")}
    code = main(["prepare", f"maestro:{maestro}", "--preset", "tiny", "--out", str(out), "--workers", "1",
                 "--json", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"]["reused"] == 6 and summary["clips"]["total"] == 9
    assert dataset_files(out) == before
    assert {p: p.stat().st_mtime_ns for p in (out / "shards").glob("*.npy")} == mtimes


def test_interrupted_run_resumes_to_the_identical_dataset(prepared, maestro, tmp_path):
    reference, _ = prepared
    out = tmp_path / "ds"
    cfg = PrepareConfig(f"maestro:{maestro}", PRESET, out, workers=1)
    seen = []

    def interrupt_after_two(result):
        seen.append(result["key"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(cfg, progress=False, on_result=interrupt_after_two)
    assert not (out / "manifest.csv").exists()
    assert len(list((out / "items").glob("*.json"))) == 2
    # a file killed mid-write leaves a temporary file behind; the next run must ignore it
    (out / "shards" / "half-written.tmp.npy").write_bytes(b"\x93NUMPY garbage")
    summary = prepare(cfg, progress=False)
    assert summary["files"]["reused"] == 2
    assert dataset_files(out) == dataset_files(reference)
    assert not list((out / "shards").glob("*.tmp*"))

    # losing a finished file's results (e.g. killed between shard and done-list) redoes only it
    victim = sorted((out / "items").glob("*.json"))[0]
    victim.unlink()
    summary = prepare(cfg, progress=False)
    assert summary["files"]["reused"] == 5
    assert dataset_files(out) == dataset_files(reference)


def test_parallel_workers_give_the_same_dataset(prepared, maestro, tmp_path):
    reference, _ = prepared
    out = tmp_path / "ds"
    summary = prepare(PrepareConfig(f"maestro:{maestro}", PRESET, out, workers=2), progress=False)
    assert summary["clips"]["total"] == 9
    assert dataset_files(out) == dataset_files(reference)


def test_split_option_and_overlap(maestro, tmp_path):
    out = tmp_path / "ds"
    summary = prepare(PrepareConfig(f"maestro:{maestro}", PRESET, out, split=("validation",), overlap=1.0),
                      progress=False)
    # 5 s with 2 s clips every 1 s: starts 0, 1, 2, 3
    assert summary["clips"] == {"train": 0, "validation": 4, "test": 0, "total": 4}
    assert summary["stats"]["split"] == "all"  # no training clips selected
    rows = read_manifest(out / "manifest.csv")
    assert [float(r["offset_seconds"]) for r in rows] == [0.0, 1.0, 2.0, 3.0]


def test_other_settings_on_the_same_out_are_refused(prepared, maestro, capsys):
    out, _ = prepared
    code = main(["prepare", f"maestro:{maestro}", "--preset", "10s-256", "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pianogan prepare: error:") and "preset" in err and "\n" not in err


def test_csv_without_expected_columns_fails_with_one_line(tmp_path, capsys):
    root = tmp_path / "m"
    root.mkdir()
    (root / "maestro-v3.0.0.csv").write_text("composer,piece,file\nA,B,c.wav\n")
    code = main(["prepare", f"maestro:{root}", "--preset", "tiny", "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "missing column(s)" in err and "canonical_composer" in err and "\n" not in err


def test_json_metadata_is_read_too(maestro, tmp_path):
    root = tmp_path / "mj"
    shutil.copytree(maestro, root)
    with open(root / "maestro-v3.0.0.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {c: {str(i): r[c] for i, r in enumerate(rows)} for c in rows[0]}  # v3 json layout
    (root / "maestro-v3.0.0.json").write_text(json.dumps(columns))
    (root / "maestro-v3.0.0.csv").unlink()
    summary = prepare(PrepareConfig(f"maestro:{root}", PRESET, tmp_path / "o", split=("test",)),
                      progress=False)
    assert summary["clips"]["test"] == 2 and summary["files"]["skipped"] == 1  # missing.wav


def test_audio_folder_source_and_nothing_prepared(tmp_path, capsys):
    root = tmp_path / "audio"
    (root / "test").mkdir(parents=True)
    (root / "sub").mkdir()
    sf.write(str(root / "sub" / "piece.flac"), piano_piece(4.2, 22_050, seed=3), 22_050)
    sf.write(str(root / "test" / "held-out.ogg"), piano_piece(2.5, 16_000, seed=4), 16_000)
    (root / "empty.wav").write_bytes(b"")
    (root / "notes.txt").write_text("not audio, not listed")
    code = main(["prepare", f"audio:{root}", "--preset", "tiny", "--out", str(tmp_path / "o"), "--quiet",
                 "--json", "--workers", "1"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == {"train": 2, "validation": 0, "test": 1, "total": 3}
    assert "empty.wav\tempty file" in (tmp_path / "o" / "skipped.tsv").read_text()

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.wav").write_bytes(b"nonsense")
    code = main(["prepare", f"audio:{bad}", "--preset", "tiny", "--out", str(tmp_path / "o2"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "nothing could be prepared" in err and "skipped.tsv" in err and "\n" not in err


def test_a_second_run_on_the_same_out_is_refused_while_one_runs(maestro, tmp_path):
    from pianogan.data.prepare import _lock
    from pianogan.errors import PianoGANError

    out = tmp_path / "ds"
    with _lock(out):
        with pytest.raises(PianoGANError, match="another `pianogan prepare`"):
            prepare(PrepareConfig(f"maestro:{maestro}", PRESET, out), progress=False)
