"""The pretrained model that ships in the package: loads by hash from safetensors, plays any length
and style from a bare `pianogan generate` (issue 10)."""

from __future__ import annotations

import json
import struct

import pytest

from pianogan.pretrained import HERE, MAX_BYTES, load_pretrained, registry, sha256, shipped_models

NAME = "piano-longform"


def test_the_shipped_file_is_safetensors_within_the_limit_and_matches_its_hash():
    assert NAME in shipped_models()
    entry = registry()[NAME]
    path = HERE / entry["file"]
    raw = path.read_bytes()
    assert len(raw) == entry["bytes"] <= MAX_BYTES
    (header_len,) = struct.unpack("<Q", raw[:8])  # safetensors: a length, a JSON header, raw tensors
    header = json.loads(raw[8:8 + header_len])
    assert header["__metadata__"]["model"] == "longform"
    config = json.loads(header["__metadata__"]["model_config"])
    assert {"truncation", "key_shares", "strike_gain"} <= set(config)  # pinned, not left to defaults
    assert all(v["dtype"] == "F16" for k, v in header.items() if k != "__metadata__" and v["dtype"].startswith("F"))
    assert sha256(path) == entry["sha256"]
    assert (HERE / entry["card"]).is_file()


def test_the_shipped_model_carries_its_calibration():
    G, info = load_pretrained()
    assert info["pretrained"] == NAME and info["model"] == "longform"
    assert G.cfg.styles == ("chorale", "keyboard", "quartet")
    assert len(G.cfg.key_shares) == 24 and sum(G.cfg.key_shares) == pytest.approx(1.0, abs=1e-3)
    assert G.cfg.strike_gain == pytest.approx(registry()[NAME]["level"]["gain"], rel=1e-4)
    assert 0 < G.cfg.truncation < 1
    # a beat clock with each style's tempi, the damper dips filled at sampling (section 27), and
    # no key struck harder than full velocity (section 28), and its strikes mapped to the
    # corpus's dynamics (section 29)
    assert G.cfg.beat_clock and len(G.cfg.beat_periods) > 0 and G.cfg.gate_fill_seconds > 0
    assert G.cfg.strike_ceiling == 1.0
    assert G.cfg.match_dynamics and len(G.cfg.strike_map) == 2 * 24 * len(G.cfg.styles)  # a map per style
    assert list(G.cfg.strike_map) == pytest.approx(registry()[NAME]["dynamics"]["knots"], abs=1e-5)


def test_the_shipped_model_strikes_no_two_keys_a_semitone_apart_at_once():
    import torch

    from pianogan.clusters import clash_rival

    G, _ = load_pretrained()
    assert G.cfg.drop_clashes  # section 38: set at export, a sampling setting
    z = G.sample_z(8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        strikes, _ = G.played(z)
    struck = strikes > 0
    assert struck.sum() > 100  # it plays
    assert not (struck & (clash_rival(strikes) > strikes)).any()  # no strike has a louder semitone rival


def test_the_shipped_model_raises_the_sevenths_that_rise_to_the_tonic():
    import dataclasses

    from pianogan.evaluate.rolls import roll_measures
    from pianogan.models.longform_dynamics import played_strikes

    G, info = load_pretrained()
    assert G.cfg.leading_tone_seconds > 0  # section 39: set at export, a sampling setting
    frame_s = info["preset"].hop_length / info["preset"].sample_rate
    raised = roll_measures(played_strikes(G, 48, 0), frame_s)["leading_tones"]
    G.cfg = dataclasses.replace(G.cfg, leading_tone_seconds=0.0)
    modal = roll_measures(played_strikes(G, 48, 0), frame_s)["leading_tones"]
    assert raised > 0.5 > 0.3 > modal  # the corpus: 0.62; the weights on their own: ~0.1


def test_generate_without_a_run_plays_the_shipped_model(tmp_path, capsys):
    from pianogan.cli import main

    out = tmp_path / "gen"
    assert main(["generate", "--out", str(out), "--seconds", "3", "--n", "2", "--style", "chorale",
                 "--seed", "7", "--no-plots", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["seconds"] == [pytest.approx(3.0, abs=1e-2)] * 2
    clips = json.loads((out / "generated.json").read_text())["clips"]
    assert [c["style"] for c in clips] == ["chorale", "chorale"] and clips[0]["pretrained"] == NAME


def test_a_requested_key_is_the_key_played(tmp_path, capsys):
    import torch

    from pianogan.cli import main
    from pianogan.keys import KEY_NAMES, keys_of_notes, parse_key

    G, _ = load_pretrained()
    z = G.sample_z(6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for name in ("D minor", "Eb"):
            keys = keys_of_notes(G.notes(z, key=parse_key(name)))
            # every clip in the key asked for, or in its relative key when the clip is in the other mode
            allowed = {"D minor": {"D minor", "F major"}, "Eb": {"Eb major", "C minor"}}[name]
            assert {KEY_NAMES[k] for k in keys} <= allowed, (name, keys)
    out = tmp_path / "k"
    assert main(["generate", "--out", str(out), "--seconds", "2", "--n", "1", "--key", "F#m",
                 "--no-plots"]) == 0
    [clip] = json.loads((out / "generated.json").read_text())["clips"]
    assert clip["settings"]["key"] == "F#m"
    capsys.readouterr()
    assert main(["generate", "--out", str(tmp_path / "bad"), "--key", "H minor"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'H minor'" in err and err.count("\n") == 1


def test_commands_take_a_shipped_models_name_hash_checked(tmp_path):
    from pianogan.errors import PianoGANError
    from pianogan.pretrained import resolve_input

    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"weights")
    (tmp_path / "MODELS.json").write_text(json.dumps({"m": {"file": "m.safetensors", "sha256": sha256(weights)}}))
    assert resolve_input("m", folder=tmp_path) == str(weights)
    # a path that exists is itself, and what is neither is left for the command to reject
    assert resolve_input(str(tmp_path), folder=tmp_path) == str(tmp_path)
    assert resolve_input("runs/none", folder=tmp_path) == "runs/none"
    weights.write_bytes(b"tampered")
    with pytest.raises(PianoGANError, match="does not match its recorded hash"):
        resolve_input("m", folder=tmp_path)
    assert resolve_input(NAME) == str(HERE / registry()[NAME]["file"])  # the real one, by name


def test_generate_set_replaces_a_sampling_setting_for_those_clips_and_the_record_replays_it(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from pianogan.cli import main

    args = ["generate", "--seconds", "4", "--n", "1", "--seed", "2", "--style", "chorale", "--no-plots"]
    assert main([*args, "--out", str(tmp_path / "rule")]) == 0
    assert main([*args, "--out", str(tmp_path / "raw"), "--set", "drop_clashes=false"]) == 0
    rule, _ = sf.read(tmp_path / "rule" / "clip-0000.wav")
    raw, _ = sf.read(tmp_path / "raw" / "clip-0000.wav")
    assert np.abs(rule - raw).max() > 0.01  # the clusters come back
    [clip] = json.loads((tmp_path / "raw" / "generated.json").read_text())["clips"]
    assert clip["settings"]["model_settings"] == [["drop_clashes", "false"]]
    assert main(["generate", "--from", str(tmp_path / "raw" / "generated.json"), "--out", str(tmp_path / "again"),
                 "--no-plots"]) == 0
    again, _ = sf.read(tmp_path / "again" / "clip-0000.wav")
    np.testing.assert_allclose(again, raw, atol=2 / 32768)  # the record carries the setting
    G, _ = load_pretrained()
    assert G.cfg.drop_clashes  # the shipped model itself is left as it was
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--set", "steps=3"]) == 2
    assert "not a sampling setting" in capsys.readouterr().err


def test_an_export_says_whether_it_is_the_shipped_model_bit_for_bit(tmp_path):
    from safetensors.numpy import load_file, save_file

    from pianogan.pretrained import compare_to_shipped

    entry = registry()[NAME]
    assert "same file" in compare_to_shipped(NAME, HERE / entry["file"])
    with open(HERE / entry["file"], "rb") as f:  # the metadata (the calibration) as the header holds it
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    meta = {**header["__metadata__"], "step": "5499"}
    tensors = load_file(str(HERE / entry["file"]))
    save_file(tensors, str(tmp_path / "recalibrated.safetensors"), metadata=meta)
    assert "same weights" in compare_to_shipped(NAME, tmp_path / "recalibrated.safetensors")
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] + 1
    save_file(tensors, str(tmp_path / "other.safetensors"), metadata=meta)
    other = compare_to_shipped(NAME, tmp_path / "other.safetensors")
    assert other.startswith(f"not the shipped {NAME}: {len(tensors) - 1} of {len(tensors)}")
    assert compare_to_shipped("no-such-model", tmp_path / "other.safetensors") is None
