"""Fast Griffin-Lim (pianogan.phase.griffin_lim) against librosa.griffinlim."""

import librosa
import numpy as np
import pytest
import torch

from pianogan import PianoGANError, griffin_lim
from pianogan.synth import piano_piece

SR, N_FFT, HOP = 8000, 256, 64


def _sc_db(audio: np.ndarray, target_mag: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> float:
    rebuilt = np.abs(librosa.stft(audio, n_fft=n_fft, hop_length=hop))
    return float(20 * np.log10(np.linalg.norm(rebuilt - target_mag) / np.linalg.norm(target_mag)))


@pytest.fixture(scope="module")
def piece() -> tuple[np.ndarray, np.ndarray]:
    y = piano_piece(1.5, SR, seed=3)
    return y, np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)).astype(np.float32)


def test_zero_iterations_is_librosa_istft(piece):
    y, mag = piece
    ours = griffin_lim(torch.from_numpy(mag), N_FFT, HOP, n_iter=0, length=len(y), init="zeros").numpy()
    ref = librosa.istft(mag.astype(np.complex64), hop_length=HOP, n_fft=N_FFT, length=len(y))
    np.testing.assert_allclose(ours, ref, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("hop", [HOP, 100])  # 100 does not divide 256: the F.fold path
def test_matches_librosa_same_init(piece, hop):
    y, _ = piece
    mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=hop)).astype(np.float32)
    ref = librosa.griffinlim(mag, n_iter=16, hop_length=hop, n_fft=N_FFT, length=len(y), init=None,
                             momentum=0.99)
    ours = griffin_lim(torch.from_numpy(mag), N_FFT, hop, n_iter=16, momentum=0.99, length=len(y),
                       init="zeros").numpy()
    assert ours.shape == ref.shape == y.shape
    # Same algorithm, same start: float32 rounding only.
    assert np.abs(ours - ref).max() < 1e-2 * np.abs(ref).max()
    assert abs(_sc_db(ours, mag, hop=hop) - _sc_db(ref, mag, hop=hop)) < 0.05


def test_random_init_converges_like_librosa(piece):
    y, mag = piece
    ref = librosa.griffinlim(mag, n_iter=32, hop_length=HOP, n_fft=N_FFT, length=len(y), random_state=0)
    ours = griffin_lim(torch.from_numpy(mag), N_FFT, HOP, n_iter=32, length=len(y), seed=0,
                       init="random").numpy()
    sc_ours, sc_ref = _sc_db(ours, mag), _sc_db(ref, mag)
    assert sc_ours < -12  # it converges: far below the ~0 dB of a random phase
    assert abs(sc_ours - sc_ref) < 1.5  # different random draws: a looser bound


def test_momentum_helps(piece):
    y, mag = piece
    plain = griffin_lim(torch.from_numpy(mag), N_FFT, HOP, n_iter=16, momentum=0.0, length=len(y), init="random")
    fast = griffin_lim(torch.from_numpy(mag), N_FFT, HOP, n_iter=16, momentum=0.99, length=len(y), init="random")
    assert _sc_db(fast.numpy(), mag) < _sc_db(plain.numpy(), mag) - 1.0


def test_batched_equals_unbatched(piece):
    y, _ = piece
    clips = np.stack([y, 0.5 * y[::-1].copy(), np.roll(y, 1234)])
    mags = torch.stack([torch.from_numpy(np.abs(librosa.stft(c, n_fft=N_FFT, hop_length=HOP)))
                        for c in clips]).float()
    batched = griffin_lim(mags, N_FFT, HOP, n_iter=8, length=len(y), seed=5, init="random")
    chunked = griffin_lim(mags, N_FFT, HOP, n_iter=8, length=len(y), seed=5, chunk_size=1, init="random")
    assert batched.shape == (3, len(y))
    torch.testing.assert_close(batched, chunked, rtol=0, atol=1e-6)
    # clip 0 of a batch gets the same random phase as the unbatched call (2-D in, 1-D out)
    single = griffin_lim(mags[0], N_FFT, HOP, n_iter=8, length=len(y), seed=5, init="random")
    assert single.shape == (len(y),)
    torch.testing.assert_close(batched[0], single, rtol=0, atol=1e-6)
    # with a deterministic start every clip equals its own unbatched run
    zb = griffin_lim(mags, N_FFT, HOP, n_iter=8, length=len(y), init="zeros")
    for i in range(3):
        zi = griffin_lim(mags[i], N_FFT, HOP, n_iter=8, length=len(y), init="zeros")
        torch.testing.assert_close(zb[i], zi, rtol=0, atol=1e-6)


def test_seed_reproducible_and_different(piece):
    _, mag = piece
    m = torch.from_numpy(mag)
    a = griffin_lim(m, N_FFT, HOP, n_iter=2, seed=1, init="random")
    b = griffin_lim(m, N_FFT, HOP, n_iter=2, seed=1, init="random")
    c = griffin_lim(m, N_FFT, HOP, n_iter=2, seed=2, init="random")
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_lengths_and_dtypes(piece):
    _, mag = piece
    m = torch.from_numpy(mag)
    frames = m.shape[-1]
    assert griffin_lim(m, N_FFT, HOP, n_iter=1).shape == (HOP * (frames - 1),)
    assert griffin_lim(m, N_FFT, HOP, n_iter=1, length=100).shape == (100,)
    long = griffin_lim(m, N_FFT, HOP, n_iter=1, length=HOP * frames + 5000)
    assert long.shape == (HOP * frames + 5000,)
    assert torch.all(long[-4000:] == 0)  # beyond what the frames cover: zeros
    assert griffin_lim(m.double(), N_FFT, HOP, n_iter=1).dtype == torch.float64
    assert griffin_lim(mag, N_FFT, HOP, n_iter=1).dtype == torch.float32  # numpy input


def test_silence_and_bad_values_give_finite_output():
    silent = torch.zeros(2, N_FFT // 2 + 1, 20)
    out = griffin_lim(silent, N_FFT, HOP, n_iter=4)
    assert torch.all(out == 0)
    bad = torch.rand(N_FFT // 2 + 1, 20)
    bad[3, 4] = float("nan")
    bad[5, 6] = float("inf")
    bad[7, 8] = -1.0
    assert torch.isfinite(griffin_lim(bad, N_FFT, HOP, n_iter=4)).all()
    one_frame = torch.rand(N_FFT // 2 + 1, 1)
    assert torch.isfinite(griffin_lim(one_frame, N_FFT, HOP, n_iter=4, length=10)).all()


@pytest.mark.parametrize("kwargs", [
    dict(magnitude=torch.rand(10, 20), n_fft=N_FFT, hop_length=HOP),  # wrong bin count
    dict(magnitude=torch.rand(1, 1, 129, 20), n_fft=N_FFT, hop_length=HOP),  # 4-D
    dict(magnitude=torch.rand(129, 20), n_fft=N_FFT, hop_length=0),
    dict(magnitude=torch.rand(129, 20), n_fft=N_FFT, hop_length=HOP, n_iter=-1),
    dict(magnitude=torch.rand(129, 20), n_fft=N_FFT, hop_length=HOP, init="magic"),
])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(PianoGANError):
        griffin_lim(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(piece):
    _, mag = piece
    m = torch.from_numpy(mag)
    cpu = griffin_lim(m, N_FFT, HOP, n_iter=4, init="zeros")
    gpu = griffin_lim(m.cuda(), N_FFT, HOP, n_iter=4, init="zeros")
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-3 * float(cpu.abs().max()))


def test_peak_locked_init_beats_random(piece):
    y, mag = piece
    m = torch.from_numpy(mag)
    rand = griffin_lim(m, N_FFT, HOP, n_iter=16, length=len(y), init="random").numpy()
    peaks = griffin_lim(m, N_FFT, HOP, n_iter=16, length=len(y), init="peaks").numpy()
    assert _sc_db(peaks, mag) < _sc_db(rand, mag) - 1.0
    # a phase tensor as init: its own angles, any batch broadcast
    phase = torch.zeros_like(m)
    torch.testing.assert_close(griffin_lim(m, N_FFT, HOP, n_iter=3, init=phase),
                               griffin_lim(m, N_FFT, HOP, n_iter=3, init="zeros"))
    with pytest.raises(PianoGANError):
        griffin_lim(m, N_FFT, HOP, n_iter=1, init=torch.zeros(3, 4))


def test_every_entry_point_starts_from_the_one_default(monkeypatch, tmp_path):
    """generate (short and long), reconstruct (library and CLI flags), image_to_audio and the
    trainer's sample WAVs all pass DEFAULT_GL to Griffin-Lim unless told otherwise (the demo
    runs `pianogan generate` without Griffin-Lim flags: see test_demo)."""
    import dataclasses

    import pianogan.phase as phase
    import pianogan.phase_stream as phase_stream
    from pianogan.cli import build_parser
    from pianogan.config import get_preset
    from pianogan.chain import chain_length
    from pianogan.generate import GenerateSettings, images_to_clips
    from pianogan.phase import DEFAULT_GL, GLSettings
    from pianogan.roundtrip import round_trip
    from pianogan.spectrogram import Stats, image_to_audio
    from pianogan.train.samples import save_audio

    assert DEFAULT_GL == GLSettings() and DEFAULT_GL.init == "peaks"  # the measured best start
    seen: list[dict] = []

    def fake(magnitude, n_fft, hop_length, n_iter=-1, momentum=-1, length=None, seed=None,
             init=None, chunk_size=None):
        start = "random" if isinstance(init, torch.Tensor) else init  # a tensor: per-clip start
        seen.append({"n_iter": n_iter, "momentum": momentum, "init": start})
        shape = magnitude.shape[:-2] + (length if length is not None else 0,)
        return torch.zeros(shape)

    def fake_stream(blocks, n_fft, hop_length, gl=None, length=None, **kwargs):
        list(blocks)
        seen.append({"n_iter": gl.n_iter, "momentum": gl.momentum, "init": gl.init})
        yield np.zeros(length, np.float32)

    monkeypatch.setattr(phase, "griffin_lim", fake)
    monkeypatch.setattr(phase_stream, "griffin_lim_stream", fake_stream)
    preset, stats = get_preset("tiny"), Stats(0.0, 1.0, 1)
    images = np.zeros((1, *preset.image_shape), np.float32)
    want = {k: v for k, v in dataclasses.asdict(DEFAULT_GL).items() if k != "seed"}

    def check(what, **changed):
        assert seen, what
        got = seen.pop()
        assert got == {**want, **changed}, what
        seen.clear()

    assert GenerateSettings().gl is DEFAULT_GL
    images_to_clips([images], preset, stats, preset.clip_seconds, GenerateSettings(), [0])
    check("generate, one clip")
    k = chain_length(preset, 3 * preset.clip_seconds)
    images_to_clips([np.concatenate([images] * k)], preset, stats, 3 * preset.clip_seconds,
                    GenerateSettings(), [0])
    check("generate, a long piece")
    round_trip(np.zeros(preset.n_samples, np.float32), preset, stats, variants=("image",))
    check("reconstruct")
    image_to_audio(images, preset, stats)
    check("image_to_audio")
    save_audio(images, preset, stats, tmp_path, "s")
    check("trainer samples")
    save_audio(images, preset, stats, tmp_path, "s", n_iter=32)
    check("trainer samples, its own iteration count", n_iter=32)
    parser = build_parser()
    for argv in (["generate", "RUN", "--out", "x"], ["reconstruct", "in.wav"]):
        args = parser.parse_args(argv)
        assert (args.n_iter, args.momentum, args.init) == (DEFAULT_GL.n_iter, DEFAULT_GL.momentum,
                                                           DEFAULT_GL.init), argv[0]
