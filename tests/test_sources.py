"""Listing inputs (sources), streaming clips, statistics merging and MIDI pedal handling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from pianogan.audio import load_audio
from pianogan.data.features import RunningStats
from pianogan.data.prepare import Item, item_name
from pianogan.data.render import (PINNED_SHA256, PINNED_SOUNDFONT, Note, apply_sustain, file_sha256,
                                  find_soundfont, fold_to_piano, pedal_intervals)
from pianogan.data.sources import (maestro_items, parse_source, read_maestro_metadata, select,
                                   split_from_path)
from pianogan.data.stream import audio_blocks, cut_clips, split_clips
from pianogan.errors import PianoGANError
from pianogan.synth import piano_piece


def test_parse_source(tmp_path):
    assert parse_source("builtin").kind == "builtin"
    spec = parse_source(f"audio:{tmp_path}")
    assert spec.kind == "audio" and spec.path == tmp_path.resolve()
    for bad in ("youtube:xyz", "maestro", "audio:", f"wav:{tmp_path}", "builtin:foo"):
        with pytest.raises(PianoGANError):
            parse_source(bad)
    with pytest.raises(PianoGANError, match="not found"):
        parse_source(f"maestro:{tmp_path / 'nope'}")


def test_split_from_folder_names():
    from pathlib import Path

    assert split_from_path(Path("a/train/x.wav")) == "train"
    assert split_from_path(Path("Valid/x.wav")) == "validation"
    assert split_from_path(Path("dev/y/x.wav")) == "validation"
    assert split_from_path(Path("test/x.wav")) == "test"
    assert split_from_path(Path("test.wav")) == "train"  # a file name is not a folder
    assert split_from_path(Path("misc/x.wav")) == "train"


def _maestro_rows():
    return [
        {"canonical_composer": "A", "canonical_title": "T1", "split": "train", "year": "2004",
         "midi_filename": "2004/a.midi", "audio_filename": "2004/a.wav", "duration": "12.5"},
        {"canonical_composer": "B", "canonical_title": "T2", "split": "holdout", "year": "2004",
         "midi_filename": "2004/b.midi", "audio_filename": "2004/b.wav", "duration": "3"},
        {"canonical_composer": "C", "canonical_title": "T3", "split": "test", "year": "2004",
         "midi_filename": "2004/c.midi", "audio_filename": "2004/c.wav", "duration": "3"},
    ]


def test_maestro_json_layouts_and_listing_problems(tmp_path):
    (tmp_path / "2004").mkdir()
    for name in ("a", "b"):
        (tmp_path / "2004" / f"{name}.wav").write_bytes(b"x")
    rows = _maestro_rows()
    # v2: list of records; v3: column -> {index: value}
    (tmp_path / "list.json").write_text(json.dumps(rows))
    assert read_maestro_metadata(tmp_path / "list.json") == rows
    (tmp_path / "maestro-v3.0.0.json").write_text(json.dumps({c: {str(i): r[c] for i, r in enumerate(rows)}
                                                              for c in rows[0]}))
    items, skips = maestro_items(tmp_path)
    assert [(i.source, i.split, i.composer, i.title, i.seconds) for i in items] == [
        ("2004/a.wav", "train", "A", "T1", 12.5)]
    assert items[0].extra == {"year": "2004", "midi_filename": "2004/a.midi"}
    reasons = {s.source: s.reason for s in skips}
    assert "unknown split 'holdout'" in reasons["2004/b.wav"]
    assert "not found" in reasons["2004/c.wav"]


def test_maestro_metadata_errors(tmp_path):
    with pytest.raises(PianoGANError, match="no maestro"):
        maestro_items(tmp_path)
    (tmp_path / "maestro-v3.0.0.csv").write_text("canonical_composer,split\nA,train\n")
    with pytest.raises(PianoGANError, match="missing column.*canonical_title"):
        maestro_items(tmp_path)
    (tmp_path / "maestro-v3.0.0.csv").write_bytes(b"\xff\xfe\x00garbage\x00")
    with pytest.raises(PianoGANError):
        maestro_items(tmp_path)


def _items(n):
    return [Item(f"audio:f{i:02d}.wav", "audio", f"/x/f{i:02d}.wav", f"f{i:02d}.wav",
                 ["train", "validation", "test"][i % 3], seconds=600.0) for i in range(n)]


def test_select_split_and_max_hours_is_deterministic():
    items = _items(30)
    assert {i.split for i in select(items, "test")} == {"test"}
    assert len(select(items, ["train", "test"])) == 20
    one = select(items, max_hours=1.0)  # 10 min each: 6 files reach 1 h
    assert len(one) == 6 and one == select(list(reversed(items)), max_hours=1.0)
    assert [i.key for i in one] == sorted(i.key for i in one)
    assert len({i.split for i in select(items, max_hours=3.0)}) == 3  # a spread, not the first files
    assert len(select(items, max_hours=0.01)) == 1
    long = [Item("audio:long.wav", "audio", "/x/long.wav", "long.wav", seconds=36_000.0)]
    picked = select(items + long, max_hours=2.0)
    assert "audio:long.wav" not in {i.key for i in picked} or len(picked) == 1  # 10 h never tops up 2 h
    assert 2.0 <= sum(i.seconds for i in picked) / 3600 <= 2.2


def test_item_names_are_safe_stable_and_distinct():
    a = Item("audio:dir one/pièce?.wav", "audio", "/p", "dir one/pièce?.wav")
    b = Item("audio:dir one/pièce!.wav", "audio", "/p", "dir one/pièce!.wav")
    assert item_name(a) == item_name(Item(a.key, "audio", "/other", a.source))
    assert item_name(a) != item_name(b)
    assert all(c.isalnum() or c in "._-" for c in item_name(a))


def test_cut_clips_overlap_and_partial_tail():
    blocks = [np.arange(0, 7, dtype=np.float32), np.arange(7, 23, dtype=np.float32),
              np.arange(23, 25, dtype=np.float32)]
    clips = list(cut_clips(iter(blocks), n_samples=10, hop=10))
    assert [s for s, _ in clips] == [0, 10]  # 20..24 is a partial clip: dropped
    assert np.array_equal(clips[1][1], np.arange(10, 20, dtype=np.float32))
    clips = list(cut_clips(iter(blocks), n_samples=10, hop=4))
    assert [s for s, _ in clips] == [0, 4, 8, 12]
    assert all(np.array_equal(c, np.arange(s, s + 10, dtype=np.float32)) for s, c in clips)


def test_one_way_to_cut_a_file_into_clips(tmp_path):
    from pianogan.config import get_preset
    from pianogan.evaluate.sources import load_audio_clips
    from pianogan.roundtrip import split_clips as round_trip_clips
    from pianogan.spectrogram import Stats

    audio = np.arange(25, dtype=np.float32)
    clips = split_clips(audio, 10)
    streamed = [c for _, c in cut_clips(iter([audio[:7], audio[7:]]), 10, 10)]
    assert clips.shape == (2, 10) and np.array_equal(clips, np.stack(streamed))  # tail 20..24 dropped
    preset = get_preset("tiny")
    n = preset.n_samples
    y = np.random.default_rng(0).normal(0, 0.1, int(2.5 * n)).astype(np.float32)
    assert np.array_equal(round_trip_clips(y, preset)[:2], split_clips(y, n))  # same clips, plus a padded tail
    path = tmp_path / "y.wav"
    sf.write(str(path), y, preset.sample_rate, subtype="FLOAT")
    assert len(load_audio_clips([path], preset, Stats(-3.0, 2.0))) == 2  # as prepare: the tail is dropped


def test_streamed_decoding_equals_whole_file_loading(tmp_path):
    mono = piano_piece(6.0, 44_100, seed=2)
    path = tmp_path / "a.wav"
    sf.write(str(path), np.stack([mono, -0.5 * mono], axis=1), 44_100, subtype="PCM_16")
    streamed = np.concatenate(list(audio_blocks(path, 8_000, block_seconds=0.7)))
    whole, _ = load_audio(path, 8_000)
    assert len(streamed) == len(whole) == 48_000
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(PianoGANError, match="empty"):
        list(audio_blocks(tmp_path / "empty.wav", 8000))
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(300))
    with pytest.raises(PianoGANError):
        list(audio_blocks(tmp_path / "junk.wav", 8000))


def test_running_stats_merge_equals_numpy():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(-5, 2.5, size=n).astype(np.float32) for n in (10, 1000, 1, 5000)]
    total = RunningStats()
    for c in chunks:
        total.merge(RunningStats().add(torch.from_numpy(c)))
    allv = np.concatenate(chunks).astype(np.float64)
    assert total.count == allv.size
    # per-batch moments are rounded to float32 by torch.var_mean; merging is exact in float64
    assert total.mean == pytest.approx(allv.mean(), abs=1e-6)
    assert total.std == pytest.approx(allv.std(), rel=1e-6)
    assert RunningStats.from_dict(total.to_dict()) == total


def test_sustain_pedal_extends_released_notes():
    pedal = pedal_intervals([(1.0, 127), (1.5, 100), (3.0, 0), (4.0, 127)])
    assert pedal == [(1.0, 3.0), (4.0, float("inf"))]
    notes = [Note(0.0, 0.5, 60, 80),  # released before the pedal: unchanged
             Note(1.2, 1.4, 62, 80),  # released with the pedal down: lasts until 3.0
             Note(2.0, 2.2, 62, 70),  # the same key again: the first one is cut at 2.0
             Note(4.5, 5.0, 64, 80)]  # pedal never lifted: rings for a while, finitely
    out = apply_sustain(notes, pedal)
    assert [(n.start, n.end, n.pitch) for n in out] == [
        (0.0, 0.5, 60), (1.2, 2.0, 62), (2.0, 3.0, 62), (4.5, 14.5, 64)]
    assert fold_to_piano(12) == 24 and fold_to_piano(120) == 108 and fold_to_piano(60) == 60


def test_find_soundfont_is_the_pinned_one_unless_given(tmp_path):
    pinned = find_soundfont()
    assert pinned.pinned and pinned.path == PINNED_SOUNDFONT and pinned.sha256 == PINNED_SHA256
    assert file_sha256(PINNED_SOUNDFONT) == PINNED_SHA256  # the packaged file is intact
    with pytest.raises(PianoGANError, match="SoundFont not found"):
        find_soundfont(tmp_path / "none.sf2")
    fake = tmp_path / "mine.sf2"
    fake.write_bytes(b"RIFF")
    mine = find_soundfont(fake)
    assert mine.path == fake.resolve() and not mine.pinned and mine.sha256 == file_sha256(fake)
