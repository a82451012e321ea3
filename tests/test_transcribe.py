"""The offline transcriber (basic-pitch ONNX), note-level measures, MIDI out, `pianogan transcribe`."""

from __future__ import annotations

import json
import logging
import socket

import numpy as np
import pretty_midi
import pytest
import torch

from pianogan.audio import write_audio
from pianogan.cli import main
from pianogan.config import get_preset
from pianogan.evaluate import notes as nm
from pianogan.synth import piano_note
from pianogan.transcribe import Transcriber, Transcription, model_path, write_midi


@pytest.fixture(scope="module")
def transcriber():
    return Transcriber(threads=1)


def _tone_audio(pitches_times, seconds=3.0, sr=16_000):
    audio = np.zeros(int(seconds * sr), np.float32)
    for midi, t in pitches_times:
        note = piano_note(440.0 * 2 ** ((midi - 69) / 12), 0.6, sr, 0.5)
        a = int(t * sr)
        audio[a:a + len(note)] += note[:len(audio) - a]
    return audio, sr


def test_model_ships_in_the_wheel_and_runs_offline(transcriber, monkeypatch):
    assert model_path().name == "nmp.onnx" and "site-packages" in str(model_path())
    handlers = list(logging.getLogger().handlers)

    def no_network(*args, **kwargs):
        raise AssertionError("the transcriber tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    fresh = Transcriber(threads=1)  # loading too must not reach out
    audio, sr = _tone_audio([(60, 0.2), (64, 1.0), (67, 1.8)])
    (tr,) = fresh.transcribe([audio], sr)
    assert logging.getLogger().handlers == handlers  # basic_pitch's import warnings configured nothing
    assert tr.note.shape[1] == 88 and tr.seconds == pytest.approx(3.0, abs=0.01)
    pitches = sorted(set(tr.notes[:, 2].astype(int)))
    assert {60, 64, 67} <= set(pitches), pitches
    starts = {int(p): s for s, _, p, _ in tr.notes[::-1]}
    assert starts[64] == pytest.approx(1.0, abs=0.06) and starts[67] == pytest.approx(1.8, abs=0.06)


def test_batched_clips_equal_one_by_one(transcriber):
    a, sr = _tone_audio([(57, 0.1), (69, 0.9)], seconds=4.5)
    b, _ = _tone_audio([(72, 0.3)], seconds=1.0)
    together = transcriber.transcribe([a, b], sr)
    alone = [transcriber.transcribe([x], sr)[0] for x in (a, b)]
    for t, u in zip(together, alone):
        np.testing.assert_allclose(t.note, u.note, atol=1e-5)
        np.testing.assert_allclose(t.notes, u.notes, atol=1e-6)


def test_no_notes_above_the_band_the_input_can_carry(transcriber):
    audio, sr = _tone_audio([(50, 0.2), (60, 1.0)], sr=5500)
    (tr,) = transcriber.transcribe([audio], sr)
    assert len(tr.notes) and tr.notes[:, 2].max() <= 82  # 3rd harmonic below 2750 Hz


def test_f1_on_a_rendered_score_after_the_10s_256_round_trip(transcriber):
    """Ground truth from the built-in corpus (rendered from a score); docs/evaluate.md has the table."""
    from pianogan.evaluate.groundtruth import corpus_excerpt, note_f1
    from pianogan.roundtrip import round_trip

    preset = get_preset("10s-256")
    audio, ref = corpus_excerpt("bach/bwv1.6.mxl", 10.0, 10.0, preset.sample_rate)
    rt = round_trip(audio, preset, variants=("image",))
    (tr,) = transcriber.transcribe([rt.audio], preset.sample_rate)
    f = note_f1(ref, tr.notes)
    assert len(ref) > 30 and f["f1"] >= 0.75, f


def test_midi_reads_back_with_the_notes(tmp_path):
    notes = np.array([[0.1, 0.6, 60, 0.5], [0.1, 0.9, 64, 0.8], [1.0, 1.4, 67, 1.0]])
    path = write_midi(notes, tmp_path / "x.mid")
    pm = pretty_midi.PrettyMIDI(str(path))
    (inst,) = pm.instruments
    assert inst.program == 0
    got = sorted((n.start, n.end, n.pitch) for n in inst.notes)
    np.testing.assert_allclose(got, sorted(map(tuple, notes[:, :3])), atol=0.01)
    assert sorted(n.velocity for n in inst.notes) == [64, 102, 127]


# ----------------------------------------------------------------------------- note measures

def _tr(notes, seconds=10.0):
    notes = np.array(notes, np.float64).reshape(-1, 4)
    return Transcription(notes, np.zeros((int(seconds * 86), 88), np.float32),
                         np.zeros((int(seconds * 86), 88), np.float32), seconds)


C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


def _melody(pitches, step=0.25, start=0.0):
    return [[start + i * step, start + i * step + step * 0.9, p, 0.6] for i, p in enumerate(pitches)]


def test_in_key_share_is_one_in_one_scale_and_near_zero_for_random_pitches():
    rng = np.random.default_rng(0)
    assert nm.clip_measures(_tr(_melody(C_MAJOR * 4)))["in_key_share"] == pytest.approx(1.0)
    random = [nm.clip_measures(_tr(_melody(rng.integers(40, 80, 32))))["in_key_share"] for _ in range(20)]
    assert abs(np.mean(random)) < 0.15
    assert nm.clip_measures(_tr(_melody([60, 64, 67])))["in_key_share"] == 0.0  # too few notes


def test_key_agreement_of_halves():
    same = _melody(C_MAJOR * 2, start=0.5) + _melody(C_MAJOR * 2, start=5.5)
    moved = _melody(C_MAJOR * 2, start=0.5) + _melody([p + 6 for p in C_MAJOR * 2], start=5.5)
    only_first = _melody(C_MAJOR * 2, start=0.5)
    assert nm.clip_measures(_tr(same))["key_agreement_notes"] == 1.0
    assert nm.clip_measures(_tr(moved))["key_agreement_notes"] == 0.0
    assert nm.clip_measures(_tr(only_first))["key_agreement_notes"] == 0.0  # no notes start in half 2
    long = _tr(_melody(C_MAJOR * 2, start=1) + _melody(C_MAJOR * 2, start=11) + _melody(C_MAJOR * 2, start=21),
               seconds=30.0)
    assert nm.clip_measures(long)["window_key_agreement"] == 1.0
    assert np.isnan(nm.clip_measures(_tr(same))["window_key_agreement"])  # one 10 s window only


def test_rate_polyphony_range_and_ioi():
    chords = [[t, t + 0.4, p, 0.5] for t in np.arange(0, 10, 0.5) for p in (48, 55, 64)]
    m = nm.clip_measures(_tr(chords))
    assert m["notes_per_s"] == pytest.approx(6.0)
    assert m["polyphony"] == pytest.approx(3.0, abs=0.1)
    assert m["pitch_range"] == 16
    assert m["ioi_median_s"] == pytest.approx(0.5) and m["ioi_cv"] < 0.05  # chords are one onset each
    rng = np.random.default_rng(1)
    loose = nm.clip_measures(_tr([[t, t + 0.2, 60, 0.5] for t in np.sort(rng.uniform(0, 10, 20))]))
    assert loose["ioi_cv"] > 0.5
    empty = nm.clip_measures(_tr([]))
    assert empty["notes_per_s"] == 0 and empty["in_key_share"] == 0 and empty["key_agreement_notes"] == 0
    assert empty["pulse"] == 0


def test_pulse_hears_a_steady_beat():
    beat = [[t, t + 0.3, 60 + int(t * 2) % 5, 0.5] for t in np.arange(0, 20, 0.5)]  # 120 beats a minute
    rng = np.random.default_rng(0)
    loose = [[t, t + 0.3, 60, 0.5] for t in np.sort(rng.uniform(0, 20, 40))]  # as many notes, no beat
    assert nm.clip_measures(_tr(beat, seconds=20.0))["pulse"] > 0.9
    assert nm.clip_measures(_tr(loose, seconds=20.0))["pulse"] < 0.35
    slow = [[t, t + 1.0, 60, 0.5] for t in np.arange(0, 20, 2.0)]  # a 2 s period is outside 0.3-1.5 s
    assert nm.clip_measures(_tr(slow, seconds=20.0))["pulse"] < 0.2
    assert np.all(np.isfinite(nm.clip_features(_tr([]))))


def test_js_divergence_bounds():
    p = np.eye(12)[0]
    assert nm.js_divergence(p, p) == 0.0
    assert nm.js_divergence(p, np.eye(12)[1]) == pytest.approx(1.0)
    assert nm.js_divergence(p, np.zeros(12)) == 1.0


def test_real_splits_keep_pieces_whole_and_the_floor_is_taken_over_many():
    groups = np.repeat(np.arange(10), [5, 1, 1, 3, 2, 2, 4, 1, 3, 2])
    sides = set()
    for seed in range(6):
        in_b = nm.split_groups(groups, np.random.default_rng(seed))
        assert all(len(set(in_b[groups == g].tolist())) == 1 for g in range(10))  # pieces whole
        assert abs(int(in_b.sum()) - int((~in_b).sum())) <= 5  # balanced within the largest piece
        sides.add(tuple(in_b.tolist()))
    assert len(sides) > 1  # the split is drawn
    # Pieces 0-4 play only C, pieces 5-9 only C and G, half the time each; the fake set plays C only.
    c, cg = np.eye(12)[0] * 10, (np.eye(12)[0] + np.eye(12)[7]) * 5
    real = np.stack([c if g < 5 else cg for g in groups])
    out = nm.pc_js_repeats(real, groups, np.stack([c] * 8), repeats=12)
    assert out["repeats"] == len(out["floor"]) == len(out["fake"]) == 12
    assert out["floor_sd"] > 0  # the splits differ, and so does their floor
    assert out["fake_mean"] > out["floor_mean"] and out["ratio"] == out["fake_mean"] / out["floor_mean"]
    same = nm.pc_js_repeats(real, groups, real, repeats=3)
    assert same["fake_mean"] < max(same["floor"]) + 1e-12  # the real set itself sits among the splits
    split = nm.split_groups(groups, np.random.default_rng(0))
    assert np.allclose(nm.pitch_class_seconds([_tr([(0.0, 1.0, 60, 0.8), (0.0, 0.5, 67, 0.8)])]),
                       [np.eye(12)[0] * 1.0 + np.eye(12)[7] * 0.5]) and split.dtype == bool


# ----------------------------------------------------------------------------- CLI

def test_cli_transcribe_writes_midi_and_reports(tmp_path, capsys):
    audio, sr = _tone_audio([(60, 0.2), (67, 1.0)])
    write_audio(tmp_path / "in" / "a.wav", audio, sr)
    write_audio(tmp_path / "in" / "sub" / "a.wav", audio, sr)  # same stem: a-2.mid
    rc = main(["transcribe", str(tmp_path / "in"), "--out", str(tmp_path / "midi"), "--json", "--quiet"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["transcribed"] == 2 and out["skipped"] == 0
    assert sorted(p.name for p in (tmp_path / "midi").iterdir()) == ["a-2.mid", "a.mid"]
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "midi" / "a.mid"))
    assert {60, 67} <= {n.pitch for n in pm.instruments[0].notes}
    assert len(pm.instruments[0].notes) == out["files"][0]["notes"]
    assert out["files"][0]["window_scales"] == [None] and out["files"][0]["window_key_agreement"] is None


def test_cli_transcribe_bad_input(tmp_path, capsys):
    rc = main(["transcribe", str(tmp_path / "missing.wav"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == f"pianogan transcribe: error: {tmp_path / 'missing.wav'}: no such file or directory"
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    audio, sr = _tone_audio([(60, 0.2)], seconds=1.0)
    write_audio(tmp_path / "ok.wav", audio, sr)
    rc = main(["transcribe", str(tmp_path / "bad.wav"), str(tmp_path / "ok.wav"), "--out", str(tmp_path / "o"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "skipped" in err and "bad.wav" in err and (tmp_path / "o" / "ok.mid").is_file()


def test_generate_midi_beside_each_wav(tmp_path, capsys, monkeypatch):
    import dataclasses

    from pianogan.models import get_model
    from pianogan.spectrogram import Stats
    from pianogan.train.checkpoint import save_generator
    from pianogan import transcribe

    preset = get_preset("tiny")
    family = get_model("specgan")
    torch.manual_seed(0)
    G, _ = family.build(family.CONFIGS["tiny"], preset.image_shape)
    (tmp_path / "run").mkdir()
    save_generator(tmp_path / "run", G.state_dict(), "specgan", dataclasses.asdict(family.CONFIGS["tiny"]), preset,
                   Stats(-4.0, 2.5), step=1)
    seen = []
    original = transcribe.Transcriber.transcribe

    def recording(self, clips, sample_rate, **kw):
        out = original(self, clips, sample_rate, **kw)
        seen.extend(t.notes for t in out)
        return out

    monkeypatch.setattr(transcribe.Transcriber, "transcribe", recording)
    rc = main(["generate", str(tmp_path / "run"), "--n", "2", "--n-iter", "4", "--no-plots", "--midi",
               "--out", str(tmp_path / "g"), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["midi"] == [str(tmp_path / "g" / f"clip-000{i}.mid") for i in range(2)]
    for path, notes in zip(summary["midi"], seen):
        pm = pretty_midi.PrettyMIDI(path)
        got = sorted((round(n.start, 2), n.pitch) for n in pm.instruments[0].notes)
        assert got == sorted((round(s, 2), int(p)) for s, _, p, _ in notes)


# ----------------------------------------------------------------------------- validation on corpus clips

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Real clips of the built-in corpus (rendered from scores) at 10s-256: images, preset, stats."""
    from pianogan.data.dataset import PianoDataset

    out = tmp_path_factory.mktemp("corpus") / "ds"
    assert main(["prepare", "builtin", "--preset", "10s-256", "--out", str(out), "--max-hours", "0.05",
                 "--workers", "1", "--quiet"]) == 0
    ds = PianoDataset(out)
    assert len(ds) >= 16
    return ds.images(list(range(16))), ds.preset, ds.stats


def test_every_measure_ranks_real_above_what_it_claims_to_detect(corpus, transcriber):
    """The validation table of docs/evaluate.md, on 8 clips per set."""
    from pianogan.evaluate.references import DETECTS, ranks_real_best, validate

    images, preset, stats = corpus
    sets = validate(images, preset, stats, transcriber=transcriber)
    failed = [(m, b, sets[b][m]) for m, (_, detects) in DETECTS.items() for b in detects
              if not ranks_real_best(sets, m, b)]
    assert not failed, failed
    for key in ("in_key_share", "key_agreement_notes", "key_clarity"):  # no key measure prefers noise
        for other in ("white noise", "untrained generator"):
            assert sets["real half B (floor)"][key] > sets[other][key], (key, other)


def test_run_evaluation_with_notes_reports_them(corpus, transcriber, tmp_path):
    from pianogan.evaluate import SET_KEYS, run_evaluation
    from pianogan.evaluate.core import NOTE_KEYS
    from pianogan.evaluate.references import stationary_chord

    images, preset, stats = corpus
    rep = run_evaluation(images[:8], stationary_chord(images[8:12]), preset, stats, notes=True,
                         transcriber=transcriber, out_dir=tmp_path, progress=False)
    for s in rep["sets"].values():
        assert set(s) == set(SET_KEYS) | set(NOTE_KEYS)
    summ = rep["summary"]
    assert summ["fd_notes_ratio"] == pytest.approx(summ["fd_notes_fake"] / summ["fd_notes_floor"])
    assert summ["fd_notes_fake"] > summ["fd_notes_floor"] and rep["settings"]["notes"]
    md = (tmp_path / "metrics.md").read_text()
    assert "| in-key share of notes, above chance |" in md and "multiple of the real floor" in md
