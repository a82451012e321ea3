"""Audio <-> image transform (pianogan.spectrogram), presets and quality metrics."""

import json

import librosa
import numpy as np
import pytest
import torch

from pianogan import PRESETS, PianoGANError, Preset, get_preset
from pianogan import spectrogram as sp
from pianogan.quality import (log_spectral_distance, lsd_from_magnitudes, sc_from_magnitudes,
                              spectral_convergence)
from pianogan.synth import piano_piece

TINY = get_preset("tiny")


@pytest.mark.parametrize("n_fft,hop", [(256, 128), (1024, 256), (1022, 391)])
def test_stft_magnitude_matches_librosa(n_fft, hop):
    y = piano_piece(1.0, 8000, seed=1)
    ours = sp.stft_magnitude(torch.from_numpy(y), n_fft, hop).numpy()
    ref = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * ref.max())


def test_normalize_denormalize_invert_where_not_clipped():
    stats = sp.Stats(mean=-3.0, std=2.0)
    x = torch.linspace(-3.0 - 5.9, -3.0 + 5.9, 101)  # all within +-3 sigma
    back = sp.denormalize(sp.normalize(x, stats, 3.0), stats, 3.0)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-5)
    wide = torch.tensor([-100.0, 100.0])
    assert sp.normalize(wide, stats, 3.0).tolist() == [-1.0, 1.0]  # clipped, not wrapped


def test_stats_of_and_roundtrip_json(tmp_path):
    st = sp.stats_of(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert st.mean == pytest.approx(2.5) and st.std == pytest.approx(np.std([1, 2, 3, 4])) and st.count == 4
    assert sp.stats_of(torch.zeros(10)).std == 1.0  # constant input stays usable
    st.save(tmp_path / "s.json")
    assert sp.Stats.load(tmp_path / "s.json") == st
    with pytest.raises(PianoGANError):
        sp.Stats(0.0, 0.0)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_shapes_and_exact_length(name):
    p = PRESETS[name]
    y = piano_piece(p.clip_seconds, p.sample_rate, seed=2)
    stats = sp.stats_of(sp.audio_to_logmag(y, p))
    img = sp.audio_to_image(y, p, stats)
    assert img.shape == p.image_shape and float(img.abs().max()) <= 1.0
    mag = sp.image_to_magnitude(img, p, stats)
    assert mag.shape == (p.n_freq, p.n_frames) and float(mag.min()) >= 0
    audio = sp.image_to_audio(img[None].repeat(2, 1, 1), p, stats, n_iter=1)
    assert audio.shape == (2, p.n_samples) and torch.isfinite(audio).all()


def test_paper_presets_keep_their_numbers():
    assert (PRESETS["20s-512"].n_freq, PRESETS["20s-512"].n_frames) == (513, 782)
    assert (PRESETS["10s-256"].n_freq, PRESETS["10s-256"].n_frames) == (257, 430)
    assert (PRESETS["22k-512"].n_freq, PRESETS["22k-512"].n_frames) == (1025, 862)
    assert TINY.image_shape == (64, 128)
    nr = PRESETS["20s-512-noresize"]
    assert (nr.n_freq, nr.n_frames) == nr.image_shape == (512, 512) and not nr.needs_resize


def test_no_resize_preset_is_lossless_before_phase_retrieval():
    p = PRESETS["20s-512-noresize"]
    y = piano_piece(p.clip_seconds, p.sample_rate, seed=0)
    logmag = sp.audio_to_logmag(y, p)
    stats = sp.stats_of(logmag)
    assert float(((logmag - stats.mean) / stats.std).abs().max()) < p.clip_sigma  # nothing clipped
    mag = sp.image_to_magnitude(sp.audio_to_image(y, p, stats), p, stats)
    true = sp.stft_magnitude(torch.from_numpy(y), p.n_fft, p.hop_length)
    assert sc_from_magnitudes(true, mag) < -80


def test_resize_commutes_with_normalisation():
    x = torch.randn(2, 129, 128)
    a = sp.to_image(2.0 * x + 1.0, TINY)
    b = 2.0 * sp.to_image(x, TINY) + 1.0
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


def test_log_frequency_axis():
    p = Preset("log-test", 8000, 512, 128, 2.032, 64, 128, freq_scale="log", fmin=55.0)
    fwd, inv = sp.log_frequency_matrices(p)
    assert fwd.shape == (64, 257) and inv.shape == (257, 64)
    torch.testing.assert_close(fwd.sum(1), torch.ones(64))
    torch.testing.assert_close(inv.sum(1), torch.ones(257))
    # a constant spectrogram survives the round trip; a tone stays near its frequency
    const = torch.full((1, 257, p.n_frames), 0.25)
    torch.testing.assert_close(sp.from_image(sp.to_image(const, p), p), const, rtol=0, atol=1e-5)
    t = np.arange(p.n_samples) / p.sample_rate
    y = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stats = sp.stats_of(sp.audio_to_logmag(y, p))
    mag = sp.image_to_magnitude(sp.audio_to_image(y, p, stats), p, stats)
    peak_hz = float(mag.mean(-1).argmax()) * p.sample_rate / p.n_fft
    assert abs(peak_hz - 440) < 30
    with pytest.raises(PianoGANError):
        sp.log_frequency_matrices(Preset("bad", 8000, 512, 128, 1.0, 64, 64, freq_scale="log", fmin=5000))


@pytest.mark.parametrize("kind", ["silence", "dc", "clipping", "short", "nan"])
def test_edge_inputs_give_finite_output(kind):
    n = TINY.n_samples
    y = {"silence": np.zeros(n), "dc": np.full(n, 0.5), "clipping": np.sign(np.sin(np.arange(n) * 0.3)),
         "short": np.array([0.3, -0.2, 0.1]), "nan": np.full(n, np.nan)}[kind].astype(np.float32)
    logmag = sp.audio_to_logmag(y, TINY)
    assert logmag.shape == (TINY.n_freq, TINY.n_frames) and torch.isfinite(logmag).all()
    stats = sp.stats_of(logmag)
    img = sp.audio_to_image(y, TINY, stats)
    assert torch.isfinite(img).all()
    audio = sp.image_to_audio(img, TINY, stats, n_iter=4)
    assert audio.shape == (n,) and torch.isfinite(audio).all()


def test_empty_audio_is_a_clear_error():
    with pytest.raises(PianoGANError, match="empty"):
        sp.stft_magnitude(torch.zeros(0), 256, 128)
    with pytest.raises(PianoGANError):
        sp.audio_to_image(torch.zeros(2, 3, 4), TINY, sp.Stats(0.0, 1.0))


def test_custom_preset_json(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"base": "20s-512-noresize", "freq_scale": "log", "n_fft": 2048}))
    p = get_preset(path)
    assert p.name == "mine" and p.freq_scale == "log" and p.n_freq == 1025 and p.image_shape == (512, 512)
    with pytest.raises(PianoGANError):
        get_preset("no-such-preset")


def test_quality_metrics_known_values():
    y = piano_piece(1.0, 8000, seed=5)
    assert spectral_convergence(y, y, TINY) == -np.inf
    assert log_spectral_distance(y, y, TINY) == 0.0
    assert spectral_convergence(y, 0.5 * y, TINY) == pytest.approx(20 * np.log10(0.5), abs=1e-3)
    # LSD of a gain is the gain in dB (6.02) where both are above the floor, less below it
    assert 3.0 < log_spectral_distance(y, 0.5 * y, TINY) <= 6.03
    batch = spectral_convergence(np.stack([y, y]), np.stack([y, 0.1 * y]), TINY)
    assert batch.shape == (2,) and batch[1] == pytest.approx(20 * np.log10(0.9), abs=1e-3)
    ref = np.abs(np.random.default_rng(0).standard_normal((5, 7)))
    assert lsd_from_magnitudes(ref, ref * 10) == pytest.approx(20, abs=1e-6)
    assert sc_from_magnitudes(np.zeros((5, 7)), np.zeros((5, 7))) == -np.inf
    with pytest.raises(PianoGANError):
        spectral_convergence(y, y[:-1], TINY)
