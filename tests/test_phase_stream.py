"""Streaming Griffin-Lim (pianogan.phase_stream): equal to one run when it fits, close to it and
without clicks at block borders when it does not."""

import librosa
import numpy as np
import pytest
import torch

from pianogan import PianoGANError
from pianogan.phase import GLSettings, griffin_lim, peak_locked_phase, peak_locked_phase_from
from pianogan.phase_stream import default_overlap, edge_frames, griffin_lim_stream
from pianogan.synth import piano_piece

SR, N_FFT, HOP = 8000, 256, 128  # the tiny preset's STFT


@pytest.fixture(scope="module")
def piece() -> tuple[np.ndarray, np.ndarray]:
    y = piano_piece(12.0, SR, seed=4)
    return y, np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)).astype(np.float32)


def _blocks(mag: np.ndarray, size: int):
    """The magnitude in blocks of ``size`` frames (the last one shorter), lazily."""
    for i in range(0, mag.shape[1], size):
        yield torch.from_numpy(mag[:, i:i + size])


def _stream(mag, length, gl, block_frames, size=37):
    return np.concatenate(list(griffin_lim_stream(_blocks(mag, size), N_FFT, HOP, gl, length=length,
                                                  block_frames=block_frames)))


def _sc_db(audio: np.ndarray, mag: np.ndarray) -> float:
    rebuilt = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP))
    return float(20 * np.log10(np.linalg.norm(rebuilt - mag) / np.linalg.norm(mag)))


def _excess_flux(audio: np.ndarray, mag: np.ndarray) -> np.ndarray:
    """Per frame: spectral flux of the audio minus that of the target magnitude, in units of the
    target's mean flux. A click or a phase jump is a broadband rise: a spike here."""
    def flux(m):
        return np.concatenate([[0.0], np.maximum(np.diff(m, axis=1), 0).sum(0)])
    rebuilt = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP))
    ref = flux(mag)
    return (flux(rebuilt) - ref) / ref.mean()


@pytest.mark.parametrize("init", ["peaks", "random", "zeros"])
def test_one_block_equals_one_shot(piece, init):
    y, mag = piece
    gl = GLSettings(n_iter=8, init=init, seed=3)
    one = griffin_lim(torch.from_numpy(mag), N_FFT, HOP, length=len(y), **gl.kwargs()).numpy()
    np.testing.assert_array_equal(_stream(mag, len(y), gl, block_frames=mag.shape[1]), one)


def test_peak_phase_continues_across_blocks(piece):
    _, mag = piece
    m = torch.from_numpy(mag).double()
    whole = peak_locked_phase(m, N_FFT, HOP)
    first, psi = peak_locked_phase_from(m[:, :300], N_FFT, HOP, None)
    rest, _ = peak_locked_phase_from(m[:, 300:], N_FFT, HOP, psi[:, -1])
    joined = torch.cat([first, rest], dim=1)
    diff = torch.remainder(joined - whole + torch.pi, 2 * torch.pi) - torch.pi  # mod 2 pi
    assert diff.abs().max() < 1e-6


@pytest.mark.parametrize("block_frames", [160, 300])
def test_blocks_match_one_shot_quality_without_clicks(piece, block_frames):
    y, mag = piece
    gl = GLSettings(n_iter=32)
    one = griffin_lim(torch.from_numpy(mag), N_FFT, HOP, length=len(y), **gl.kwargs()).numpy()
    streamed = _stream(mag, len(y), gl, block_frames)
    assert streamed.shape == y.shape and streamed.dtype == np.float32
    # as consistent with the target magnitude as one run over all of it
    assert abs(_sc_db(streamed, mag) - _sc_db(one, mag)) < 0.5
    # the crossfades between blocks (segments start every block_frames - overlap frames)
    e, ov = edge_frames(N_FFT, HOP), default_overlap(N_FFT, HOP)
    starts = range(block_frames - ov, mag.shape[1] - ov, block_frames - ov)
    near = np.zeros(mag.shape[1], bool)
    for a in starts:
        near[max(0, a - 2):a + ov + 2] = True
    assert near.any()
    flux = _excess_flux(streamed, mag)
    # no more excess flux at the borders than the one-shot result has anywhere
    assert flux[near].max() <= max(_excess_flux(one, mag).max(), flux[~near].max())
    # and the measure does see a click: a sign flip in the middle of a crossfade
    clicked = streamed.copy()
    at = (next(iter(starts)) + ov // 2) * HOP
    clicked[at:] *= -1
    assert _excess_flux(clicked, mag)[near].max() > 1.5 * flux[near].max()


def test_lengths_and_bad_input(piece):
    _, mag = piece
    gl = GLSettings(n_iter=1)
    n = mag.shape[1]
    assert _stream(mag, None, gl, 200).shape == (HOP * (n - 1),)
    assert _stream(mag, 1000, gl, 200).shape == (1000,)
    padded = _stream(mag, HOP * n + 3000, gl, 200)
    assert padded.shape == (HOP * n + 3000,) and np.all(padded[-2000:] == 0)
    with pytest.raises(PianoGANError, match="no frames"):
        list(griffin_lim_stream(iter([]), N_FFT, HOP, gl))
    with pytest.raises(PianoGANError, match="overlap"):
        list(griffin_lim_stream(_blocks(mag, 50), N_FFT, HOP, gl, overlap=2))
    with pytest.raises(PianoGANError, match="bins"):
        list(griffin_lim_stream([torch.ones(129, 10), torch.ones(65, 10)], N_FFT, HOP, gl))
