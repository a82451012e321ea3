"""`pianogan evaluate-rolls` and evaluate/rolls.py: what is played, read from piano rolls."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pianogan.evaluate.rolls import effective_classes, roll_measures

FRAME_S = 0.032  # 10s-8k: hop 256 at 8 kHz; 0.3 s = 9 frames


def _key(midi: int) -> int:
    return midi - 21


def _c_major_clip(t: int = 320) -> np.ndarray:
    """One clip (88, T): a C major scale up from C4 every 20 frames, twice, at strike 0.3."""
    clip = np.zeros((88, t), np.float32)
    for i, m in enumerate([60, 62, 64, 65, 67, 69, 71, 72] * 2):
        clip[_key(m), 20 * i] = 0.3
    return clip


def test_roll_measures_tell_passing_notes_from_wrong_notes():
    clip = _c_major_clip()
    clip[_key(66), 65] = 0.2  # F#, 5 frames after F (frame 60): it moves by step
    clip[_key(49), 300] = 0.9  # C#3, loud, 20 frames after the last scale note and far from it: a wrong note
    m = roll_measures(clip[None], FRAME_S)
    assert m["onsets_per_clip"] == 18
    assert m["off_scale"] == pytest.approx(2 / 18)
    assert m["off_scale_by_step"] == pytest.approx(0.5)  # the F# moves by step, the C# does not
    assert m["off_scale_loudest"] == pytest.approx(1 / 10)  # the C# is the loudest onset
    assert m["strike_max"] == pytest.approx(0.9) and m["share_above_1"] == 0.0
    assert m["strike_q50"] == pytest.approx(0.3)
    assert m["clashes"] == pytest.approx(2 / 18)  # the C#3 is struck with C5, a semitone two octaves off
    assert effective_classes(np.ones(7)) == pytest.approx(7.0) and effective_classes(np.zeros(12)) == 0.0
    # the scale's seven classes, C struck four times and the others twice: fewer than 7 in effect
    assert roll_measures(_c_major_clip()[None], FRAME_S)["classes_per_clip"] == pytest.approx(
        effective_classes(np.array([4, 2, 2, 2, 2, 2, 2])))
    assert m["classes_per_clip"] > roll_measures(_c_major_clip()[None], FRAME_S)["classes_per_clip"]  # + F#, C#
    clip[_key(53), 61] = 0.3  # F3 a frame after F4 (frame 60): an octave, no clash
    clip[_key(66), 59] = 0.2  # F#4 a frame before F4: a minor second, both clash (F3 is two frames off)
    m = roll_measures(clip[None], FRAME_S)
    assert m["clashes"] == pytest.approx(4 / 20)


def test_roll_measures_count_the_seconds_without_an_onset():
    full = _c_major_clip()  # an onset every 20 frames (0.64 s): no second without one
    half = full.copy()
    half[:, 155:] = 0.0  # silent from frame 155: windows 5-9 of 31 frames (~1 s) hold no onset
    half[_key(60), 200] = 0.01  # a strike too faint to count as an onset does not end the rest
    m = roll_measures(np.stack([full, half]), FRAME_S)
    assert m["rest_seconds"] == pytest.approx(5 / 20) and m["clips_with_rest"] == pytest.approx(0.5)
    assert roll_measures(full[None], FRAME_S)["rest_seconds"] == 0.0
    assert math.isnan(roll_measures(full[None, :, :10], FRAME_S)["rest_seconds"])  # shorter than a second


def test_roll_measures_read_which_seventh_rises_to_the_tonic():
    clip = _c_major_clip()  # its B4s (frames 120, 280) reach C5 20 frames later: past half a second
    assert math.isnan(roll_measures(clip[None], FRAME_S)["leading_tones"])
    clip[_key(70), 135] = 0.2  # B-flat 4, C5 five frames later: a flat seventh rising
    assert roll_measures(clip[None], FRAME_S)["leading_tones"] == 0.0
    clip[_key(71), 295] = 0.2  # B4, C5 five frames later: the leading tone
    clip[_key(58), 10] = 0.2  # B-flat 3 with no C4 after it: not rising, not counted
    assert roll_measures(clip[None], FRAME_S)["leading_tones"] == pytest.approx(1 / 2)


def test_roll_measures_count_what_no_piano_key_can_play_and_skip_what_has_no_scale():
    loud = _c_major_clip()
    loud[_key(60), 0] = 5.0  # five times a full-velocity strike
    sparse = np.zeros((88, 320), np.float32)
    sparse[_key(61), 10] = 0.5  # one onset: no scale to measure against
    faint = np.zeros((88, 320), np.float32)
    faint[_key(61), ::10] = 0.01  # below the onset threshold: not onsets at all
    m = roll_measures(np.stack([loud, sparse, faint]), FRAME_S)
    assert m["clips"] == 3 and m["onsets_per_clip"] == pytest.approx(17 / 3)
    assert m["share_above_1"] == pytest.approx(1 / 17) and m["strike_max"] == 5.0
    assert m["off_scale"] == 0.0  # the sparse clip's lone C# is not judged against a scale
    assert math.isnan(m["off_scale_by_step"])  # no off-scale onset to move
    silent = roll_measures(np.zeros((2, 88, 32), np.float32), FRAME_S)
    assert silent["onsets_per_clip"] == 0 and math.isnan(silent["strike_q50"]) and math.isnan(silent["off_scale"])
    with pytest.raises(ValueError):
        roll_measures(np.zeros((2, 12, 32)), FRAME_S)


def _tiny_run(path, preset):
    """An untrained small longform generator with a notes head at ``preset``, saved as a run."""
    import torch

    from _serve_helpers import _save_run
    from pianogan.models import get_model
    from pianogan.spectrogram import Stats
    from test_longform import SMALL

    family = get_model("longform")
    small = {k: v for k, v in SMALL.items() if k not in ("sample_rate", "n_fft", "hop_length")}
    cfg = family.configure(family.Config(**small, render_fit_steps=4), preset, Stats(mean=-3.0, std=1.0),
                           ("chorale", "keyboard"), rolls=True)
    torch.manual_seed(0)
    G, _ = family.build(cfg, preset.image_shape)
    return _save_run(path, "longform", G, cfg, preset, 3)


def test_evaluate_rolls_reads_a_model_beside_the_dataset_rolls(tmp_path, capsys):
    from pianogan.cli import main
    from test_longform import PRESET, _dataset

    data = _dataset(tmp_path, n=16, midi=True)
    run = _tiny_run(tmp_path / "run", PRESET)
    assert main(["evaluate-rolls", "--real", str(data), "--fake", str(run), "--n", "8", "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["sets"]) == ["real", "run"] and report["fake"] == {"run": str(run)} and report["n"] == 8
    real = report["sets"]["real"]
    assert real["onsets_per_clip"] >= 4  # each synthetic clip strikes 4 notes (and catches its neighbours')
    assert real["strike_max"] == pytest.approx((90 / 127) ** 2)  # the notes' velocity, 90
    assert 0 < real["strike_q10"] <= real["strike_q50"] <= real["strike_q99"] <= real["strike_max"]
    assert real["share_above_1"] == 0.0 and report["sets"]["run"]["clips"] == 8
    assert main(["evaluate-rolls", "--real", str(data), "--fake", str(run), "--n", "8", "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "| off-scale among the 10 loudest |" in table and f"| onsets per clip | {real['onsets_per_clip']:.1f} |" in table
    # --set replaces a sampling setting in every model: the clash rule leaves no cluster behind
    raw = report["sets"]["run"]
    assert raw["clashes"] > 0.1  # an untrained generator strikes clusters
    runs = {}
    for rule in ("false", "true"):
        assert main(["evaluate-rolls", "--real", str(data), "--fake", str(run), "--n", "8", "--json", "--quiet",
                     "--set", f"drop_clashes={rule}"]) == 0
        runs[rule] = json.loads(capsys.readouterr().out)
        assert runs[rule]["settings"] == {"drop_clashes": rule}
    assert runs["false"]["sets"]["run"] == raw  # the run's own setting: nothing changes
    ruled = runs["true"]["sets"]["run"]
    assert ruled["clashes"] == 0.0 and ruled["onsets_per_clip"] < raw["onsets_per_clip"]
    assert runs["true"]["sets"]["real"] == report["sets"]["real"]  # the real rolls are not a model's
    assert main(["evaluate-rolls", "--real", str(data), "--fake", str(run), "--n", "8", "--quiet",
                 "--set", "drop_clashes=true"]) == 0
    assert "Sampling settings replaced in every model: drop_clashes=true." in capsys.readouterr().out


def test_the_json_report_is_strict_json_when_there_is_nothing_to_measure():
    from pianogan.commands.evaluate_rolls import json_safe

    sets = {"silent": roll_measures(np.zeros((2, 88, 32), np.float32), FRAME_S)}

    def strict(name):
        raise AssertionError(f"{name} is not JSON")

    back = json.loads(json.dumps(json_safe(sets)), parse_constant=strict)
    assert back["silent"]["off_scale"] is None and back["silent"]["onsets_per_clip"] == 0


@pytest.mark.parametrize("case", ["no rolls", "not a model", "bad n", "not a sampling setting", "bad value"])
def test_evaluate_rolls_bad_input_is_one_line(tmp_path, capsys, case):
    from pianogan.cli import main
    from test_longform import _dataset

    with_rolls = _dataset(tmp_path / "a", n=8, midi=True)
    args = {"no rolls": ["--real", str(_dataset(tmp_path / "b", n=8)), "--fake", "piano-longform"],
            "not a model": ["--real", str(with_rolls), "--fake", str(tmp_path / "nothing")],
            "bad n": ["--real", str(with_rolls), "--n", "0"],
            "not a sampling setting": ["--real", str(with_rolls), "--set", "plan_weight=3"],
            "bad value": ["--real", str(with_rolls), "--set", "drop_clashes=perhaps"]}[case]
    assert main(["evaluate-rolls", *args, "--quiet"]) == 2
    err = capsys.readouterr().err
    want = {"no rolls": "no performance MIDI", "not a model": "no such run", "bad n": "--n must be",
            "not a sampling setting": "not a sampling setting", "bad value": "is not a bool"}[case]
    assert want in err and err.count("\n") == 1
