"""`pianogan prepare midi:` and `builtin`: MIDI rendered with a SoundFont piano, humanised scores."""

from __future__ import annotations

import json

import numpy as np
import pretty_midi
import pytest

from pianogan.cli import main
from pianogan.config import get_preset
from pianogan.data import builtin
from pianogan.data.builtin import CorpusPiece, load_score, perform, seed_for
from pianogan.data.dataset import PianoDataset, read_manifest
from pianogan.data.prepare import PrepareConfig, prepare
from pianogan.data.render import PINNED_SHA256, PINNED_SOUNDFONT, PianoRenderer, Note, notes_from_midi

PRESET = get_preset("tiny")
SOUNDFONT = str(PINNED_SOUNDFONT)  # the one that ships with pianogan: same on every machine


def write_midi(path, seconds: float, pedal: bool = True) -> None:
    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    piano = pretty_midi.Instrument(program=0)
    t, k = 0.0, 0
    while t < seconds:
        for p in (48 + k % 12, 60 + (k * 7) % 12):
            piano.notes.append(pretty_midi.Note(velocity=50 + (k * 11) % 60, pitch=p, start=t, end=t + 0.3))
        t, k = t + 0.4, k + 1
    if pedal:
        piano.control_changes += [pretty_midi.ControlChange(64, 127, 0.1), pretty_midi.ControlChange(64, 0, 2.0)]
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(pretty_midi.Note(velocity=100, pitch=36, start=0.0, end=0.1))
    pm.instruments += [piano, drums]
    pm.write(str(path))


def test_renderer_sounds_like_a_piano_note():
    r = PianoRenderer(SOUNDFONT, sample_rate=22_050)
    audio = r.render([Note(0.0, 3.0, 57, 100)], tail=0.5)  # A3 = 220 Hz, held 3 s
    assert audio.dtype == np.float32 and len(audio) == int(3.5 * 22_050)
    spec = np.abs(np.fft.rfft(audio[2205:2205 + 16384] * np.hanning(16384)))
    freqs = np.fft.rfftfreq(16384, 1 / 22_050)
    peak = freqs[np.argmax(spec[freqs > 100]) + np.sum(freqs <= 100)]
    assert peak == pytest.approx(220, rel=0.03) or peak == pytest.approx(440, rel=0.03)  # f0 or 2nd partial
    harmonics = [spec[np.abs(freqs - 220 * k).argmin()] for k in (1, 2, 3)]
    assert min(harmonics) > 20 * np.median(spec)  # harmonic partials, not noise
    level = [np.sqrt(np.mean(audio[int(t * 22_050):int((t + 0.2) * 22_050)] ** 2)) for t in (0.1, 1.0, 2.5)]
    assert level[0] > level[1] > level[2] > 0  # decays while held


def test_midi_folder_source(tmp_path, capsys):
    src = tmp_path / "midi"
    (src / "test").mkdir(parents=True)
    write_midi(src / "a.mid", 6.5)
    write_midi(src / "test" / "b.midi", 4.2, pedal=False)
    (src / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01garbage")
    (src / "empty.mid").write_bytes(b"")
    out = tmp_path / "out"
    code = main(["prepare", f"midi:{src}", "--preset", "tiny", "--out", str(out), "--soundfont", SOUNDFONT,
                 "--workers", "1", "--json", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    # a.mid: 6.5 s of notes + release tail -> 4 clips of 2 s; b.midi: 4.2 s + tail -> 3 clips
    assert summary["clips"]["train"] == 4 and summary["clips"]["test"] == 3
    assert summary["soundfont"]["path"] == SOUNDFONT and summary["soundfont"]["sha256"] == PINNED_SHA256
    skipped = (out / "skipped.tsv").read_text()
    assert "broken.mid\tnot a readable MIDI file" in skipped and "empty.mid\tempty file" in skipped
    ds = PianoDataset(out, split="train")
    img = ds.images()
    assert img.shape == (4, *PRESET.image_shape) and img.std() > 0.1


def test_builtin_performance_is_humanised():
    score = load_score("bach/bwv269.mxl")
    pm = perform(score, seed_for("bach/bwv269.mxl"), "chorale")
    notes = pm.instruments[0].notes
    vel = np.array([n.velocity for n in notes])
    assert vel.std() > 5 and len(set(vel)) > 15  # not one velocity
    pedal = [c for c in pm.instruments[0].control_changes if c.number == 64]
    assert len(pedal) > 20 and {c.value for c in pedal} == {0, 127}
    onsets = np.unique(np.round([n.start for n in notes], 4))
    ioi = np.diff(onsets)
    assert ioi.std() / ioi.mean() > 0.1  # rubato, fermatas, jitter: not a metronome
    again = perform(load_score("bach/bwv269.mxl"), seed_for("bach/bwv269.mxl"), "chorale")
    assert [(n.start, n.velocity) for n in again.instruments[0].notes] == [(n.start, n.velocity) for n in notes]
    # sustain applied before rendering: some notes are longer than written
    held = notes_from_midi(pm)
    assert sum(n.end - n.start for n in held) > sum(n.end - n.start for n in notes)


def test_builtin_source_with_a_tiny_corpus(tmp_path, monkeypatch):
    pieces = [CorpusPiece("bach/bwv269.mxl", "Johann Sebastian Bach", "Chorale BWV 269", "chorale", 40.0),
              CorpusPiece("bach/bwv347.mxl", "Johann Sebastian Bach", "Chorale BWV 347", "chorale", 50.0),
              CorpusPiece("nobody/missing.mxl", "Nobody", "Missing", "keyboard", 10.0)]
    monkeypatch.setattr(builtin, "corpus_pieces", lambda: pieces)
    out = tmp_path / "b"
    summary = prepare(PrepareConfig("builtin", PRESET, out, max_hours=0.001), progress=False)
    assert summary["files"]["prepared"] == 1  # 0.001 h: the first piece in hash order is enough
    assert "nobody/missing.mxl\tnot in the installed music21" in (out / "skipped.tsv").read_text()
    rows = read_manifest(out / "manifest.csv")
    assert rows and {r["composer"] for r in rows} == {"Johann Sebastian Bach"}
    assert summary["clips"]["total"] == len(rows) >= 10  # a chorale lasts 40 s or more
    assert len(list((out / "midi").glob("*.mid"))) == 1  # the performance, for listening
    # resume: nothing is redone
    again = prepare(PrepareConfig("builtin", PRESET, out, max_hours=0.001), progress=False)
    assert again["files"]["reused"] == 1 and again["clips"] == summary["clips"]
    # the dataset says what rendered it: the pinned SoundFont, by hash
    info = json.loads((out / "dataset.json").read_text())
    assert info["soundfont"]["sha256"] == PINNED_SHA256 and info["soundfont"]["pinned"]
    assert "MIT" in info["soundfont"]["license"]
    assert json.loads((out / "prepare.json").read_text())["soundfont_sha256"] == PINNED_SHA256


def test_builtin_corpus_table_has_the_advertised_hours():
    pieces = builtin.corpus_pieces()
    hours = sum(p.seconds for p in pieces) / 3600
    assert hours > 5
    assert {p.kind for p in pieces} == {"chorale", "keyboard", "quartet", "song"}
    assert {p.split for p in pieces} == {"train", "validation", "test"}
    from pianogan.data.sources import builtin_items, select

    items, skips = builtin_items()
    assert len(items) + len(skips) == len(pieces)
    half = select(items, max_hours=0.5)
    assert 0.5 <= sum(i.seconds for i in half) / 3600 <= 0.55


def test_a_broken_soundfont_is_one_clear_error(tmp_path, capsys):
    src = tmp_path / "midi"
    src.mkdir()
    write_midi(src / "a.mid", 3.0)
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00sfbk" + bytes(64))
    code = main(["prepare", f"midi:{src}", "--preset", "tiny", "--out", str(tmp_path / "o"), "--soundfont",
                 str(bad), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "cannot load SoundFont" in err and "\n" not in err


def test_a_missing_or_changed_pinned_soundfont_is_one_clear_error(tmp_path, monkeypatch, capsys):
    from pianogan.data import render

    src = tmp_path / "midi"
    src.mkdir()
    write_midi(src / "a.mid", 3.0)
    args = ["prepare", f"midi:{src}", "--preset", "tiny", "--out", str(tmp_path / "o"), "--quiet"]
    monkeypatch.setattr(render, "PINNED_SOUNDFONT", tmp_path / "gone.sf2")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "pinned SoundFont" in err and "missing" in err and "make setup" in err and "\n" not in err
    other = tmp_path / "other.sf2"
    other.write_bytes(PINNED_SOUNDFONT.read_bytes()[:-2] + b"xx")
    monkeypatch.setattr(render, "PINNED_SOUNDFONT", other)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "sha256" in err and "expected e89aa406c7b8" in err and "\n" not in err
