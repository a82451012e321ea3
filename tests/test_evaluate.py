"""`pianogan evaluate` and pianogan.evaluate: FD, NDB/K, diversity, music measures, report, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import ndimage

from pianogan.cli import main
from pianogan.config import get_preset
from pianogan.data.dataset import write_dataset
from pianogan.evaluate import (FEATURE_NAMES, SET_KEYS, evaluate_images, frechet_distance, image_descriptors,
                               mean_pairwise_distance, ndb, renormalize, run_evaluation, sample_generator,
                               white_noise_images)
from pianogan.evaluate.features import FEATURE_GROUPS, feature_groups
from pianogan.evaluate.frechet import frechet_by_group, frechet_from_moments, gaussian
from pianogan.spectrogram import Stats, audio_to_image, audio_to_logmag
from pianogan.synth import piano_note, piano_piece

PRESET = get_preset("tiny")
N_REAL = 160


def _images(audio: np.ndarray, stats: Stats) -> np.ndarray:
    return audio_to_image(torch.from_numpy(audio), PRESET, stats).numpy()


def _pieces(seeds, key=None) -> np.ndarray:
    return np.stack([piano_piece(PRESET.clip_seconds, PRESET.sample_rate, seed=int(s), key=key) for s in seeds])


@pytest.fixture(scope="module")
def real():
    """160 real clips (piano pieces in random keys), their stats, and 80 more from the same source."""
    audio = _pieces(range(N_REAL))
    logmag = audio_to_logmag(torch.from_numpy(audio), PRESET)
    stats = Stats(float(logmag.mean()), float(logmag.std()), int(logmag.numel()))
    fresh = _images(_pieces(range(1000, 1000 + N_REAL // 2)), stats)
    return _images(audio, stats), stats, fresh


@pytest.fixture(scope="module")
def dataset(real, tmp_path_factory):
    images, stats, _ = real
    return write_dataset(tmp_path_factory.mktemp("real") / "ds", images, PRESET, stats)


@pytest.fixture(scope="module")
def report_fresh(real, tmp_path_factory):
    images, stats, fresh = real
    return run_evaluation(images, fresh, PRESET, stats, seed=0, bins=10, progress=False,
                          out_dir=tmp_path_factory.mktemp("eval"))


# ----------------------------------------------------------------------------- Fréchet distance

def test_frechet_known_values():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, a + [3.0, 0, 0, 0]) == pytest.approx(9.0, rel=1e-9)  # mean shift only
    # 1-D Gaussians: (m1 - m2)^2 + (s1 - s2)^2
    fd = frechet_from_moments(np.array([1.0]), np.array([[4.0]]), np.array([-1.0]), np.array([[1.0]]))
    assert fd == pytest.approx(4.0 + 1.0)
    # diagonal covariances: sum over dims of (sqrt(a) - sqrt(b))^2
    fd = frechet_from_moments(np.zeros(3), np.diag([1.0, 4.0, 9.0]), np.zeros(3), np.diag([4.0, 4.0, 1.0]))
    assert fd == pytest.approx(1.0 + 0.0 + 4.0)


def test_frechet_singular_covariance_is_finite():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((10, 73)), rng.standard_normal((10, 73)) + 1.0  # n < d: singular
    fd = frechet_distance(a, b)
    assert np.isfinite(fd) and fd > frechet_distance(a, a) >= 0
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fd_ranks_real_floor_below_degraded_below_noise(real, report_fresh):
    images, stats, fresh = real
    s = report_fresh["summary"]
    assert s["fd_noise"] > 10 * s["fd_floor"]  # a clear margin
    assert s["fd_fake"] < 2 * s["fd_floor"]  # fresh clips of the same source score like real ones
    blurred = ndimage.gaussian_filter(fresh, (0, 2, 2))  # smeared in time and frequency
    fd_blur = run_evaluation(images, blurred, PRESET, stats, seed=0, noise=False, progress=False)["summary"]["fd_fake"]
    assert s["fd_floor"] < 3 * s["fd_floor"] < fd_blur < s["fd_noise"]
    assert 0.05 < (fd_blur - s["fd_floor"]) / (s["fd_noise"] - s["fd_floor"]) < 0.95


def test_frechet_by_group_is_the_fd_of_each_group_s_dimensions():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((400, 6))
    b = a.copy()
    b[:, 3:] = 2.0 * b[:, 3:] + 1.0  # only the second group differs
    groups = frechet_by_group(*gaussian(a), *gaussian(b), {"same": [0, 1, 2], "moved": [3, 4, 5]})
    assert groups["same"] == pytest.approx(0.0, abs=1e-9)
    assert groups["moved"] == pytest.approx(frechet_distance(a[:, 3:], b[:, 3:]))
    assert groups["moved"] > 3.0  # three unit mean shifts at least


def test_feature_groups_split_every_descriptor_once():
    groups = feature_groups()
    assert list(groups) == list(FEATURE_GROUPS) and all(groups.values())
    assert sorted(i for idx in groups.values() for i in idx) == list(range(len(FEATURE_NAMES)))
    assert [FEATURE_NAMES[i] for i in groups["pitch_classes"]] == [n for n in FEATURE_NAMES if n.startswith("chroma_")]
    with pytest.raises(ValueError, match="in no FEATURE_GROUPS group"):
        feature_groups([*FEATURE_NAMES, "tempo"])


def test_fd_groups_point_at_what_differs(real, report_fresh):
    """The same fresh clips 6 dB quieter: a level change moves the log-mel means and nothing
    else (timbre, pitch classes, onsets and modulation are all level-free), so only that group's
    FD rises."""
    images, stats, _ = real
    quieter = _images(0.5 * _pieces(range(1000, 1000 + N_REAL // 2)), stats)  # `real`'s fresh clips
    rep = run_evaluation(images, quieter, PRESET, stats, seed=0, noise=False, progress=False)
    before, after = report_fresh["sets"]["fake"]["fd_groups"], rep["sets"]["fake"]["fd_groups"]
    floor = rep["sets"]["real"]["fd_groups"]
    assert after["loudness_bands"] > 10 * max(before["loudness_bands"], floor["loudness_bands"])
    for g in FEATURE_GROUPS:
        if g != "loudness_bands":
            assert after[g] == pytest.approx(before[g], rel=0.25, abs=0.1), g


# ----------------------------------------------------------------------------- mode collapse

def test_ndb_z_test_known_bins():
    ref = np.repeat(np.arange(4), 50)  # 50 per bin
    same = ndb(ref, ref.copy(), 4)
    assert same["ndb"] == 0 and same["ndb_js"] == pytest.approx(0.0)
    collapsed = ndb(ref, np.zeros(200, int), 4)
    assert collapsed["ndb"] == 4 and collapsed["ndb_k"] == 1.0
    assert 0.5 < collapsed["ndb_js"] <= 1.0
    slight = ndb(ref, np.repeat(np.arange(4), [55, 45, 50, 50]), 4)  # within noise: z ~ 1
    assert slight["ndb"] == 0


def test_ndb_real_vs_real_low_collapsed_high(real, report_fresh):
    images, stats, fresh = real
    assert report_fresh["settings"]["bins"] == 10
    assert report_fresh["sets"]["real"]["ndb_k"] <= 0.2
    assert report_fresh["sets"]["fake"]["ndb_k"] <= 0.2
    collapsed = np.repeat(fresh[:1], len(fresh), axis=0)
    m = evaluate_images(images[:80], collapsed, PRESET, stats, bins=10)
    # every clip in one bin: that bin and every well-filled real bin differ (bins holding only a
    # few real clips do not reach significance when empty, so NDB/K stays below 1)
    assert m["ndb_k"] >= 0.4 and m["ndb_js"] > 0.5
    assert m["mpd_features"] < 1e-6 * report_fresh["sets"]["real"]["mpd_features"]
    assert m["mpd_images"] < 1e-3 * report_fresh["sets"]["real"]["mpd_images"]


def test_mean_pairwise_distance_known():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    assert mean_pairwise_distance(x) == pytest.approx((5 + 0 + 5) / 3)
    assert mean_pairwise_distance(np.ones((5, 7))) == 0.0


# ----------------------------------------------------------------------------- music measures

def test_key_clarity_piece_above_noise(real):
    _, stats, fresh = real
    piece = image_descriptors(fresh[:32], PRESET, stats).music
    noise = image_descriptors(white_noise_images(32, PRESET, stats, seed=3), PRESET, stats).music
    assert piece["key_clarity"].mean() > noise["key_clarity"].mean() + 0.05
    assert piece["harmonic_share"].mean() > 0.75 > 0.6 > noise["harmonic_share"].mean()
    assert abs(noise["key_consistency"].mean()) < 0.15


def test_key_agreement_one_key_above_key_change(real):
    _, stats, _ = real
    n, half = 24, PRESET.n_samples // 2
    one_key = np.stack([piano_piece(PRESET.clip_seconds, PRESET.sample_rate, seed=s, key=s % 12) for s in range(n)])
    other = np.stack([piano_piece(PRESET.clip_seconds, PRESET.sample_rate, seed=500 + s, key=(s + 6) % 12)
                      for s in range(n)])  # a tritone away: the most distant key
    changed = np.concatenate([one_key[:, :half], other[:, half:]], axis=1)
    a = image_descriptors(_images(one_key, stats), PRESET, stats).music
    b = image_descriptors(_images(changed, stats), PRESET, stats).music
    assert a["key_consistency"].mean() > 0.35
    assert a["key_consistency"].mean() > b["key_consistency"].mean() + 0.3
    assert a["key_agreement"].mean() > b["key_agreement"].mean()


def test_onset_density_counts_notes(real):
    _, stats, _ = real
    sr = PRESET.sample_rate
    audio = np.zeros(PRESET.n_samples, np.float32)
    for t in (0.1, 0.6, 1.1, 1.6):  # 4 notes in 2 s = 2 onsets per second
        note = piano_note(440.0, 0.5, sr, 0.8)
        audio[int(t * sr):int(t * sr) + len(note)] += note[: PRESET.n_samples - int(t * sr)]
    music = image_descriptors(_images(audio[None], stats), PRESET, stats).music
    assert music["onset_density"][0] == pytest.approx(2.0, abs=0.5)


@pytest.mark.parametrize("value", [-1.0, 0.0, 1.0])
def test_silent_and_constant_clips_have_no_key_or_onsets(real, value):
    _, stats, _ = real
    d = image_descriptors(np.full((2, *PRESET.image_shape), value, np.float32), PRESET, stats)
    assert np.all(np.isfinite(d.features))
    for k in ("key_clarity", "key_agreement", "key_consistency", "onset_density"):
        assert np.all(d.music[k] == 0), k  # rounding noise must not pick a key or onsets


def test_log_frequency_preset_features_finite():
    from pianogan.config import Preset

    preset = Preset("log-test", 8000, 512, 128, 2.0, 96, 64, freq_scale="log")
    audio = torch.from_numpy(_pieces(range(3)))
    stats = Stats(float(audio_to_logmag(audio, preset).mean()), 2.0)
    d = image_descriptors(audio_to_image(audio, preset, stats).numpy(), preset, stats)
    assert d.features.shape == (3, 73) and np.all(np.isfinite(d.features))
    assert d.music["harmonic_share"].min() > 0.5


# ----------------------------------------------------------------------------- report

def test_report_has_documented_keys_and_files(report_fresh):
    r = report_fresh
    assert set(r) == {"format_version", "feature_space", "settings", "reference", "sets", "summary", "files"}
    assert r["feature_space"]["dim"] == len(r["feature_space"]["features"]) == len(FEATURE_NAMES) == 73
    assert set(r["sets"]) == {"real", "fake", "noise"}
    for s in r["sets"].values():
        assert set(s) == set(SET_KEYS)
        assert s["n"] == N_REAL // 2 and len(s["feature_mean"]) == 73 and len(s["key_histogram"]) == 24
        assert all(np.isfinite(s[k]) for k in SET_KEYS if isinstance(s[k], (int, float)))
    assert set(r["summary"]) == {"fd_floor", "fd_noise", "fd_fake", "fd_score", "ndb_k_floor", "ndb_k_fake",
                                 "mpd_ratio", "fd_ratio"}
    assert r["summary"]["fd_ratio"] == pytest.approx(r["summary"]["fd_fake"] / r["summary"]["fd_floor"])
    assert not r["settings"]["notes"] and "fd_notes" not in r["sets"]["real"]  # notes=False by default
    on_disk = json.loads(open(r["files"]["json"]).read())
    assert on_disk["summary"] == r["summary"]
    md = open(r["files"]["markdown"]).read()
    assert "| metric | real (floor) | fake | white noise (ceiling) |" in md
    assert "| descriptor group | dims | real (floor) | fake | white noise (ceiling) | fake / floor |" in md
    assert all(set(s["fd_groups"]) == set(FEATURE_GROUPS) for s in r["sets"].values())
    assert open(r["files"]["plot"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_evaluate_images_keys(real):
    images, stats, fresh = real
    m = evaluate_images(images[:40], fresh[:40], PRESET, stats)
    assert set(m) == set(SET_KEYS) | {"bins"} and m["bins"] == 4


def test_renormalize_roundtrip(real):
    images, stats, _ = real
    other = Stats(stats.mean + 0.5, stats.std * 1.2)
    x = images[:4] * 0.5  # away from the clip limits
    back = renormalize(renormalize(x, PRESET, stats, other), PRESET, other, stats)
    np.testing.assert_allclose(back, x, atol=1e-5)


class StandIn(torch.nn.Module):
    """Stands in for a trained generator: sample_z + forward -> (n, 1, H, W) in [-1, 1]."""

    z_dim, latent, image_shape = 8, "normal", PRESET.image_shape

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(8, PRESET.image_height * PRESET.image_width)

    def sample_z(self, n, generator=None, device=None):
        return torch.randn(n, self.z_dim, generator=generator, device=device)

    def forward(self, z, **kwargs):
        return torch.tanh(self.lin(z)).view(-1, 1, *self.image_shape)


def test_sample_generator_reproducible():
    g = StandIn().eval()
    a, b = sample_generator(g, 5, seed=7, batch_size=2), sample_generator(g, 5, seed=7, batch_size=5)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert a.shape == (5, *PRESET.image_shape)
    assert not np.allclose(a, sample_generator(g, 5, seed=8))


# ----------------------------------------------------------------------------- CLI

def test_cli_noise_json(dataset, tmp_path, capsys):
    rc = main(["evaluate", "--real", str(dataset), "--fake", "noise", "--json", "--quiet", "--n", "40",
               "--out", str(tmp_path / "e")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["sets"]) == {"real", "noise"} and out["settings"]["n"] == 40
    assert out["settings"]["notes"] and out["summary"]["fd_notes_noise"] > out["summary"]["fd_notes_floor"]
    assert out["summary"]["fd_noise"] > 5 * out["summary"]["fd_floor"]
    assert (tmp_path / "e" / "metrics.md").is_file() and (tmp_path / "e" / "metrics.png").is_file()


def test_cli_audio_dir_and_images_npy(dataset, real, tmp_path, capsys):
    from pianogan.audio import write_audio

    _, stats, _ = real
    wavs = tmp_path / "wavs"
    for i in range(6):  # 6 files of 2 clips each = 12 clips
        write_audio(wavs / f"x{i}.wav", piano_piece(2 * PRESET.clip_seconds, PRESET.sample_rate, seed=70 + i),
                    PRESET.sample_rate)
    assert main(["evaluate", "--real", str(dataset), "--fake", str(wavs), "--json", "--quiet", "--no-plot",
                 "--no-notes"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["fake_kind"] == "audio" and out["settings"]["n_fake_total"] == 12
    assert out["sets"]["fake"]["n"] == 12 and (wavs / "eval" / "metrics.json").is_file()

    gen = tmp_path / "gen"
    gen.mkdir()
    other = Stats(stats.mean + 1.0, stats.std)  # images saved in another normalisation
    imgs = renormalize(_images(_pieces(range(80, 92)), stats), PRESET, stats, other)
    np.save(gen / "images.npy", imgs)
    (gen / "generated.json").write_text(json.dumps({"stats": other.to_dict()}))
    assert main(["evaluate", "--real", str(dataset), "--fake", str(gen), "--json", "--quiet", "--no-plot",
                 "--no-notes"]) == 0
    out2 = json.loads(capsys.readouterr().out)
    assert out2["settings"]["fake_kind"] == "images"
    assert out2["summary"]["fd_score"] < 0.2  # renormalised back: scores like real


def test_cli_run_dir_with_stand_in_generator(dataset, real, tmp_path, capsys, monkeypatch):
    _, stats, _ = real
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    calls = []

    def fake_load(path, device):
        calls.append((path, device))
        return StandIn().eval(), {"model": "standin", "preset": PRESET, "stats": stats, "step": 3, "path": str(path)}

    monkeypatch.setattr("pianogan.evaluate.sources._load_generator", fake_load)
    rc = main(["evaluate", "--real", str(dataset), "--fake", str(run_dir), "--n", "30", "--json", "--quiet",
               "--no-plot", "--device", "cpu", "--no-notes"])
    assert rc == 0 and calls == [(run_dir, "cpu")]
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["fake_kind"] == "generator" and out["settings"]["step"] == 3
    assert out["sets"]["fake"]["n"] == 30
    assert out["summary"]["fd_fake"] > out["summary"]["fd_floor"]  # an untrained net is not music


def test_cli_repeats_report_the_fd_spread_over_draws(dataset, real, tmp_path, capsys, monkeypatch):
    _, stats, _ = real
    gen = tmp_path / "gen"
    gen.mkdir()
    np.save(gen / "images.npy", _images(_pieces(range(300, 360)), stats))  # a fixed set of 60 clips
    assert main(["evaluate", "--real", str(dataset), "--fake", str(gen), "--n", "30", "--repeats", "3", "--json",
                 "--quiet", "--no-plot", "--no-notes"]) == 0
    out = json.loads(capsys.readouterr().out)
    rep, draws = out["repeats"], out["repeats"]["draws"]
    assert [d["seed"] for d in draws] == [0, 1, 2]
    assert draws[0]["fd_fake"] == out["summary"]["fd_fake"] and draws[0]["fd_floor"] == out["summary"]["fd_floor"]
    # each draw is a new real split and a new 30 of the 60 fakes: the figures move
    assert len({d["fd_floor"] for d in draws}) == 3 and len({d["fd_fake"] for d in draws}) == 3
    for k in ("fd_floor", "fd_fake", "fd_ratio"):
        values = [d[k] for d in draws]
        assert rep["mean"][k] == pytest.approx(np.mean(values)) and rep["sd"][k] == pytest.approx(np.std(values, ddof=1))
        assert rep["min"][k] == min(values) and rep["max"][k] == max(values)
    assert draws[0]["fd_groups"]["fake"] == out["sets"]["fake"]["fd_groups"]
    for g in FEATURE_GROUPS:  # the table's group FDs are the means over the draws
        assert rep["fd_groups_mean"]["fake"][g] == pytest.approx(np.mean([d["fd_groups"]["fake"][g] for d in draws]))

    # a generator draws new latents for every seed; the table says what was repeated
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    seeds = []
    real_sample = sample_generator

    def spy(G, n, seed=0, **kw):
        seeds.append(seed)
        return real_sample(G, n, seed=seed, **kw)

    monkeypatch.setattr("pianogan.evaluate.sources._load_generator", lambda path, device: (
        StandIn().eval(), {"model": "standin", "preset": PRESET, "stats": stats, "step": 3, "path": str(path)}))
    monkeypatch.setattr("pianogan.evaluate.sources.sample_generator", spy)
    assert main(["evaluate", "--real", str(dataset), "--fake", str(run_dir), "--n", "20", "--repeats", "2",
                 "--seed", "5", "--quiet", "--no-plot", "--no-notes", "--out", str(tmp_path / "e")]) == 0
    assert seeds == [5, 6]
    assert "FD over 2 draws (seeds 5-6" in capsys.readouterr().out
    assert "FD over 2 draws" in (tmp_path / "e" / "metrics.md").read_text()
    assert "FD within each descriptor group (mean over 2 draws" in (tmp_path / "e" / "metrics.md").read_text()


@pytest.mark.parametrize("case, message", [
    ("no-dataset", "real dataset not found"),
    ("not-a-dataset", "not a prepared dataset"),
    ("missing-fake", "fake input not found"),
    ("empty-fake", "no images.npy, audio files, dataset or checkpoint found"),
    ("wrong-size", "fake images are 32x32 but preset 'tiny' makes 64x128 images"),
    ("bad-n", "--n must be at least 2"),
    ("bad-repeats", "--repeats must be at least 1"),
])
def test_cli_errors_are_one_line(case, message, dataset, tmp_path, capsys):
    real, fake, extra = str(dataset), "noise", []
    if case == "no-dataset":
        real = str(tmp_path / "nope")
    elif case == "not-a-dataset":
        (tmp_path / "d").mkdir()
        real = str(tmp_path / "d")
    elif case == "missing-fake":
        fake = str(tmp_path / "missing")
    elif case == "empty-fake":
        (tmp_path / "empty").mkdir()
        fake = str(tmp_path / "empty")
    elif case == "wrong-size":
        np.save(tmp_path / "images.npy", np.zeros((6, 32, 32), np.float32))
        fake = str(tmp_path)
    elif case == "bad-n":
        extra = ["--n", "1"]
    elif case == "bad-repeats":
        extra = ["--repeats", "0"]
    rc = main(["evaluate", "--real", real, "--fake", fake, "--quiet", "--out", str(tmp_path / "o"), "--no-notes",
               *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("pianogan evaluate: error: ") and message in err and "\n" not in err


def test_cli_entry_point_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pianogan", "evaluate", "--real", str(tmp_path / "x"),
                           "--fake", "noise"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"pianogan evaluate: error: real dataset not found: {tmp_path / 'x'}"]
