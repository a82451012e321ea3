"""pianogan generate: shapes, rates, reproducibility, long pieces without clicks, interpolation, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from pianogan.cli import main
from pianogan.config import get_preset
from pianogan.chain import chain_length, join_magnitudes
from pianogan.generate import GenerateSettings, generate, regenerate, slerp
from pianogan.generate_files import read_records, write_outputs
from pianogan.phase import GLSettings
from pianogan.spectrogram import Stats, audio_to_image, audio_to_logmag
from pianogan.synth import piano_piece

PRESET = get_preset("tiny")


class PianoBankG(torch.nn.Module):
    """A generator whose images are a softmax(z)-weighted mix of real piano images.

    Smooth in z and piano-like (tonal partials, note onsets), so click checks at joins face
    realistic material; follows the generator interface (z_dim, latent, image_shape, sample_z).
    """

    def __init__(self, preset, stats, m=4, latent="normal"):
        super().__init__()
        bank = torch.stack([audio_to_image(piano_piece(preset.clip_seconds, preset.sample_rate,
                                                       seed=s), preset, stats) for s in range(m)])
        self.register_buffer("bank", bank)
        self.z_dim, self.latent, self.image_shape = 8, latent, preset.image_shape

    def sample_z(self, n, generator=None, device=None):
        if self.latent == "uniform":
            return torch.rand(n, self.z_dim, generator=generator) * 2 - 1
        return torch.randn(n, self.z_dim, generator=generator)

    def forward(self, z, **kwargs):
        w = torch.softmax(3 * z[:, :len(self.bank)], 1)
        return torch.einsum("nm,mhw->nhw", w, self.bank).unsqueeze(1)


@pytest.fixture(scope="module")
def model():
    audio = np.concatenate([piano_piece(2.0, PRESET.sample_rate, seed=s) for s in range(4)])
    lm = audio_to_logmag(audio, PRESET)
    stats = Stats(float(lm.mean()), float(lm.std()), lm.numel())
    info = {"model": "bank", "model_config": {}, "preset": PRESET, "stats": stats, "step": 7,
            "path": "bank.pt"}
    return PianoBankG(PRESET, stats), info


FAST = GenerateSettings(gl=GLSettings(n_iter=16))


def test_clips_have_rate_length_and_sound(model):
    G, info = model
    clips = generate(G, info, n=3, seed=0, settings=FAST, progress=False)
    assert len(clips) == 3
    for c in clips:
        assert c.sample_rate == PRESET.sample_rate
        assert c.audio.shape == (PRESET.n_samples,) and c.audio.dtype == np.float32
        assert np.all(np.isfinite(c.audio))
        assert np.sqrt(np.mean(c.audio ** 2)) > 1e-3  # not silent
        assert np.abs(c.audio).max() <= 0.99 + 1e-6
        assert c.images.shape == (1, *PRESET.image_shape)
        assert len(c.record["latents"]) == 1 and len(c.record["latents"][0]) == G.z_dim
    assert not np.allclose(clips[0].audio, clips[1].audio)


def test_clip_i_depends_only_on_its_seed(model):
    G, info = model
    a = generate(G, info, n=3, seed=10, settings=FAST, progress=False, batch_size=3)
    b = generate(G, info, n=1, seed=12, settings=FAST, progress=False)
    np.testing.assert_allclose(a[2].audio, b[0].audio, atol=1e-5)
    assert a[2].record["latents"] == b[0].record["latents"]


def test_regenerate_from_generated_json(model, tmp_path):
    G, info = model
    clips = generate(G, info, n=3, seed=4, settings=FAST, progress=False)
    clips += generate(G, info, n=1, seed=9, progress=False,
                      settings=GenerateSettings(gl=GLSettings(n_iter=16), seconds=5.0, sample_rate=11025))
    clips[-1].record["index"] = 3
    write_outputs(clips, tmp_path, info, plots=False)
    records = read_records(tmp_path / "generated.json")
    assert [r["file"] for r in records] == [f"clip-{i:04d}.wav" for i in range(4)]
    for rec, orig in zip(records, clips):
        again = regenerate(json.loads(json.dumps(rec)), G, info)
        np.testing.assert_allclose(again.audio, orig.audio, atol=1e-5)
        wav, sr = sf.read(tmp_path / rec["file"], dtype="float32")
        assert sr == again.sample_rate
        np.testing.assert_allclose(wav, again.audio, atol=2 / 32768)  # 16-bit file
    images = np.load(tmp_path / "images.npy")
    assert images.dtype == np.float32 and images.shape[1:] == PRESET.image_shape
    assert len(images) == sum(len(c.images) for c in clips)
    assert images.min() >= -1 and images.max() <= 1


def test_regenerate_refuses_other_step(model):
    G, info = model
    rec = generate(G, info, n=1, settings=FAST, progress=False)[0].record
    with pytest.raises(Exception, match="step"):
        regenerate(rec, G, {**info, "step": 8})


def max_jump_near(audio, centres, half_width):
    d = np.abs(np.diff(audio))
    return max(d[max(0, c - half_width):c + half_width].max() for c in centres)


def jump_outside(audio, centres, half_width):
    d = np.abs(np.diff(audio))
    mask = np.ones_like(d, dtype=bool)
    for c in centres:
        mask[max(0, c - half_width):c + half_width] = False
    return d[mask].max()


def _sc_db(a: np.ndarray, b: np.ndarray) -> float:
    """Spectral convergence (dB) of audio a against audio b on the preset's STFT."""
    from pianogan.spectrogram import stft_magnitude

    ma, mb = (stft_magnitude(torch.from_numpy(x), PRESET.n_fft, PRESET.hop_length) for x in (a, b))
    return float(20 * torch.log10((ma - mb).norm() / mb.norm()))


def test_long_piece_is_one_continuous_file_without_clicks(model):
    G, info = model
    seconds = 3 * PRESET.clip_seconds
    s = GenerateSettings(gl=GLSettings(n_iter=32), seconds=seconds)
    assert chain_length(PRESET, seconds, s.overlap_seconds) >= 3
    [clip] = generate(G, info, n=1, seed=1, settings=s, progress=False)
    sr = clip.sample_rate
    assert clip.audio.shape == (int(round(seconds * sr)),)
    assert np.all(np.isfinite(clip.audio)) and np.sqrt(np.mean(clip.audio ** 2)) > 1e-3
    joins = [int(j * sr) for j in clip.record["joins_seconds"]]
    assert len(joins) == len(clip.images) - 1 >= 2
    # the crossfade spans overlap_seconds around each join: look at all of it
    half = int(0.3 * sr)
    at_joins = max_jump_near(clip.audio, joins, half)
    own = jump_outside(clip.audio, joins, half)
    assert at_joins <= 1.2 * own, (at_joins, own)
    # the same check does catch a click: flip the sign after the first join
    clicked = clip.audio.copy()
    loud = joins[0] + int(np.argmax(np.abs(clicked[joins[0]:joins[0] + half])))
    clicked[loud:] *= -1
    assert max_jump_near(clicked, [loud], 5) > 1.2 * jump_outside(clicked, [loud], half)


def test_resampled_output_has_requested_rate_and_length(model, tmp_path):
    G, info = model
    clips = generate(G, info, n=1, settings=GenerateSettings(gl=GLSettings(n_iter=8), sample_rate=22050),
                     progress=False)
    assert clips[0].sample_rate == 22050
    assert clips[0].audio.shape == (int(round(PRESET.clip_seconds * 22050)),)
    write_outputs(clips, tmp_path, info, plots=False)
    info_sf = sf.info(tmp_path / "clip-0000.wav")
    assert info_sf.samplerate == 22050 and info_sf.frames == 44100


def test_interpolation_writes_k_clips_on_the_path(model, tmp_path):
    G, info = model
    clips = generate(G, info, interpolate=5, seed=3, to_seed=8, settings=FAST, progress=False)
    assert len(clips) == 5
    assert [c.record["t"] for c in clips] == [0, 0.25, 0.5, 0.75, 1.0]
    z0 = generate(G, info, n=1, seed=3, settings=FAST, progress=False)[0].record["latents"][0]
    z1 = generate(G, info, n=1, seed=8, settings=FAST, progress=False)[0].record["latents"][0]
    np.testing.assert_allclose(clips[0].record["latents"][0], z0, atol=1e-6)
    np.testing.assert_allclose(clips[-1].record["latents"][0], z1, atol=1e-6)
    write_outputs(clips, tmp_path, info)
    assert sorted(p.name for p in tmp_path.glob("clip-*.wav")) == [f"clip-{i:04d}.wav" for i in range(5)]
    assert (tmp_path / "grid.png").stat().st_size > 1000
    assert (tmp_path / "clip-0004.png").stat().st_size > 1000


def test_slerp_keeps_norm_and_lerp_stays_in_box(model):
    a, b = torch.randn(64, generator=torch.Generator().manual_seed(0)), torch.randn(64)
    mid = slerp(a, b, 0.5)
    assert abs(mid.norm() - (a.norm() + b.norm()) / 2) < 1e-4
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    G, info = model
    Gu = PianoBankG(PRESET, info["stats"], latent="uniform")
    clips = generate(Gu, info, interpolate=3, settings=FAST, progress=False)
    z = np.array([c.record["latents"][0] for c in clips])
    assert np.abs(z).max() <= 1
    np.testing.assert_allclose(z[1], (z[0] + z[2]) / 2, atol=1e-6)


def test_join_magnitudes_is_equal_power_and_counts_frames():
    mags = torch.full((3, 5, 20), 2.0)
    out, joins = join_magnitudes(mags, overlap=4, trim=1)
    assert out.shape == (5, 19 + 2 * (18 - 4) + 1)  # first keeps its start, last keeps its end
    torch.testing.assert_close(out, torch.full_like(out, 2.0))
    assert len(joins) == 2


# ----------------------------------------------------------------------------- CLI

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, model):
    """A run directory with an untrained tiny SpecGAN saved by the checkpoint module."""
    import dataclasses

    from pianogan.models import get_model
    from pianogan.train.checkpoint import save_generator

    family = get_model("specgan")
    cfg = family.CONFIGS["tiny"]
    torch.manual_seed(0)
    G, _ = family.build(cfg, PRESET.image_shape)
    run = tmp_path_factory.mktemp("run")
    save_generator(run, G.state_dict(), "specgan", dataclasses.asdict(cfg), PRESET, model[1]["stats"],
                   step=7)
    return run


def test_cli_generate_and_regenerate(tiny_run, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["generate", str(tiny_run), "--n", "2", "--seed", "5", "--n-iter", "8", "--out", str(out),
               "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 2 and len(summary["files"]) == 2 and summary["sample_rate"] == 8000
    doc = json.loads((out / "generated.json").read_text())
    assert doc["clips"][1]["seed"] == 6 and doc["clips"][1]["settings"]["gl"]["n_iter"] == 8
    assert doc["step"] == 7 and doc["checkpoint"].endswith("generator.safetensors")
    assert doc["model"] == "specgan" and doc["preset"]["name"] == "tiny"
    assert all(-1 <= v <= 1 for v in doc["clips"][0]["latents"][0])  # SpecGAN: U(-1, 1)
    assert (out / "clip-0001.png").is_file() and (out / "grid.png").is_file()
    again = tmp_path / "again"
    rc = main(["generate", "--from", str(out / "generated.json"), "--index", "1", "--out", str(again)])
    assert rc == 0
    a, _ = sf.read(out / "clip-0001.wav")
    b, _ = sf.read(again / "clip-0001.wav")
    np.testing.assert_allclose(a, b, atol=2 / 32768)


@pytest.mark.parametrize("name, content", [("nope", None), ("junk.pt", b"not a checkpoint"),
                                           ("g.safetensors", b"\x00" * 64), ("emptyrun", "dir")])
def test_cli_bad_checkpoint_is_one_line_error(tmp_path, capsys, name, content):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    rc = main(["generate", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("pianogan generate: error:") and name in err and "\n" not in err
    assert not (tmp_path / "o" / "generated.json").exists()


def test_cli_long_resampled_interpolation(tiny_run, tmp_path):
    out = tmp_path / "long"
    assert main(["generate", str(tiny_run), "--n", "1", "--seconds", "6", "--sr", "16000",
                 "--n-iter", "4", "--no-plots", "--out", str(out)]) == 0
    assert sf.info(out / "clip-0000.wav").frames == 6 * 16000
    assert sf.info(out / "clip-0000.wav").samplerate == 16000
    out = tmp_path / "interp"
    assert main(["generate", str(tiny_run), "--interpolate", "4", "--n-iter", "4", "--no-plots",
                 "--out", str(out)]) == 0
    assert len(list(out.glob("clip-*.wav"))) == 4


def test_cli_bad_index_and_missing_checkpoint(tiny_run, tmp_path, capsys):
    rc = main(["generate", str(tmp_path / "no-such-run"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "no-such-run" in err and err.count("\n") == 1 and not (tmp_path / "o").exists()
    rc = main(["generate", str(tiny_run), "--key", "D minor", "--out", str(tmp_path / "o")])
    assert rc == 2 and "plays no notes to transpose" in capsys.readouterr().err
    assert main(["generate", str(tiny_run), "--n", "1", "--n-iter", "2", "--no-plots",
                 "--out", str(tmp_path / "o")]) == 0
    rc = main(["generate", "--from", str(tmp_path / "o"), "--index", "3", "--out", str(tmp_path / "p")])
    assert rc == 2 and "--index 3" in capsys.readouterr().err


@pytest.mark.parametrize("seconds", ["1e9", "inf", "nan", "0"])
def test_cli_absurd_length_is_one_line_error(tiny_run, tmp_path, capsys, seconds):
    rc = main(["generate", str(tiny_run), "--seconds", seconds, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "at most 3600" in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_streamed_piece_equals_one_griffin_lim_when_it_fits(model, monkeypatch):
    """A piece shorter than a streaming block is exactly one Griffin-Lim over its magnitude; a
    longer one is streamed in blocks and keeps its length, joins and loudness."""
    import pianogan.phase_stream as ps
    from pianogan.phase import griffin_lim

    G, info = model
    s = GenerateSettings(gl=GLSettings(n_iter=8), seconds=3 * PRESET.clip_seconds)
    [clip] = generate(G, info, n=1, seed=2, settings=s, progress=False)
    one = griffin_lim(torch.from_numpy(clip.magnitude), PRESET.n_fft, PRESET.hop_length,
                      length=len(clip.audio), **s.gl.kwargs()).numpy()
    np.testing.assert_allclose(clip.audio, one * clip.record["gain"], atol=1e-6)
    monkeypatch.setattr(ps, "BLOCK_BYTES", 1)  # the smallest blocks: 2 overlaps
    assert ps.default_block_frames(PRESET.n_fft, PRESET.hop_length) < clip.magnitude.shape[1] / 2
    [blocks] = generate(G, info, n=1, seed=2, settings=s, progress=False)
    assert blocks.audio.shape == clip.audio.shape and blocks.record["joins_seconds"] == clip.record["joins_seconds"]
    assert _sc_db(blocks.audio, clip.audio) < -10  # the same piece, not sample for sample


def test_truncation_reaches_stylegan2_and_is_recorded(model):
    from pianogan.models import get_model

    family = get_model("stylegan2")
    torch.manual_seed(0)
    G, _ = family.build(family.CONFIGS["tiny"], PRESET.image_shape)
    info = {**model[1], "model": "stylegan2"}
    full = generate(G, info, n=2, settings=GenerateSettings(gl=GLSettings(n_iter=4)), progress=False)
    flat = generate(G, info, n=2, settings=GenerateSettings(gl=GLSettings(n_iter=4), truncation=0.0), progress=False)
    assert not np.allclose(full[0].images, full[1].images)
    np.testing.assert_allclose(flat[0].images, flat[1].images, atol=1e-6)  # psi=0: every z -> w_avg
    assert flat[1].record["settings"]["truncation"] == 0.0
    again = regenerate(flat[1].record, G, info)
    # regenerate renders a batch of one: images equal to the last bits, and the peak-locked start
    # (a discontinuous function of the magnitude: a peak either is one or is not) may differ in a
    # few bins; the sound is the same, the samples only nearly so
    np.testing.assert_allclose(again.images, flat[1].images, atol=1e-5)
    assert _sc_db(again.audio, flat[1].audio) < -25


def test_denoise_keeps_rate_and_length(model):
    G, info = model
    [clip] = generate(G, info, n=1, settings=GenerateSettings(gl=GLSettings(n_iter=8), denoise=True, sample_rate=16000),
                      progress=False)
    assert clip.audio.shape == (int(PRESET.clip_seconds * 16000),) and clip.sample_rate == 16000
    assert np.all(np.isfinite(clip.audio)) and np.sqrt(np.mean(clip.audio ** 2)) > 1e-4
    assert clip.record["settings"]["denoise"] is True


def test_style_mixing_changes_fine_styles_and_is_reproducible(model):
    from pianogan.models import get_model

    family = get_model("stylegan2")
    torch.manual_seed(0)
    G, _ = family.build(family.CONFIGS["tiny"], PRESET.image_shape)
    info = {**model[1], "model": "stylegan2"}
    plain = generate(G, info, n=1, settings=GenerateSettings(gl=GLSettings(n_iter=4)), progress=False)[0]
    mixed = generate(G, info, n=1, settings=GenerateSettings(gl=GLSettings(n_iter=4), mix_seed=100, mixing_cutoff=2),
                     progress=False)[0]
    assert not np.allclose(plain.images, mixed.images)  # fine styles came from another latent
    assert len(mixed.record["mix_latents"]) == len(mixed.record["latents"])
    again = regenerate(mixed.record, G, info)
    np.testing.assert_allclose(again.audio, mixed.audio, atol=1e-5)
