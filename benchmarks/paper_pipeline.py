"""The paper's audio <-> image pipeline, rebuilt faithfully - for comparison only, never used by
PianoGAN itself (see ../../shared/seed/NOTES.md, "Pipeline as it was").

Forward: librosa.stft (n_fft 1024, hop 256 at 10 kHz for the 20 s / 512x512 data) -> |.| ->
np.log (no eps) -> per-clip (x - mean) / std -> clip +-3 -> / 3 -> cv2.resize(..., (512, 512),
INTER_AREA).  Inverse: cv2.resize back (INTER_AREA) -> * 3 -> * std + mean -> exp ->
librosa.griffinlim (32 iterations, librosa's default momentum 0.99 and random initial phase).

Two choices, both in the paper's favour:
* the inverse uses the clip's *own* mean and std (an oracle; the paper's code used a dataset
  average or hard-coded numbers there, which loses loudness as well);
* OpenCV is not a PianoGAN dependency, so :func:`cv2_area_resize` re-implements
  ``cv2.resize(..., interpolation=cv2.INTER_AREA)`` for single-channel float images: true area
  averaging when both axes shrink (OpenCV's ``resizeArea``) and OpenCV's "area" bilinear weights
  when both grow (``fx = (dx + 1) - (sx + 1) / scale``). It matched cv2 5.0 (opencv-python-headless) to 5e-7 on
  random float images for 513x782 <-> 512x512, 257x430 <-> 256x256 and 1025x862 <-> 512x512.
The paper's librosa (0.8) padded STFT frames by reflection; current librosa pads with zeros. We
use the current default for both pipelines so that only the representation differs.
"""

from __future__ import annotations

import numpy as np

PAPER = dict(sample_rate=10_000, n_fft=1024, hop_length=256, seconds=20.0, image=(512, 512),
             clip=3.0, n_iter=32, momentum=0.99)


def _area_down_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of OpenCV INTER_AREA shrinking: mean over [d*s, (d+1)*s), s = n_in/n_out."""
    scale = n_in / n_out
    w = np.zeros((n_out, n_in), np.float64)
    for d in range(n_out):
        lo, hi = d * scale, (d + 1) * scale
        for s in range(int(np.floor(lo)), min(n_in, int(np.ceil(hi)))):
            w[d, s] = max(0.0, min(hi, s + 1) - max(lo, s))
    return w / scale


def _area_up_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of OpenCV INTER_AREA growing (resize.cpp, ``area_mode`` branch)."""
    scale = n_in / n_out  # < 1
    inv = n_out / n_in
    w = np.zeros((n_out, n_in), np.float64)
    for d in range(n_out):
        s = int(np.floor(d * scale))
        f = np.float32((d + 1) - (s + 1) * inv)
        f = 0.0 if f <= 0 else float(f - np.floor(f))
        if s < 0:
            s, f = 0, 0.0
        if s >= n_in - 1:
            s, f = n_in - 1, 0.0
        w[d, s] += 1.0 - f
        if f:
            w[d, s + 1] += f
    return w


def cv2_area_resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)`` for a 2-D float image.

    Only the two cases the paper used: both axes shrink (or stay) or both grow.
    """
    h, w = img.shape
    if height <= h and width <= w:
        make = _area_down_matrix
    elif height >= h and width >= w:
        make = _area_up_matrix
    else:
        raise ValueError("cv2_area_resize: mixed shrink/grow is not emulated")
    rows = make(h, height) if height != h else np.eye(h)
    cols = make(w, width) if width != w else np.eye(w)
    return (rows @ img.astype(np.float64) @ cols.T).astype(np.float32)


def paper_forward(audio: np.ndarray, p: dict = PAPER) -> tuple[np.ndarray, float, float]:
    """(samples,) at p's rate -> (512x512 image in [-1, 1], clip mean, clip std)."""
    import librosa

    mag = np.abs(librosa.stft(audio, n_fft=p["n_fft"], hop_length=p["hop_length"]))
    with np.errstate(divide="ignore"):
        logmag = np.log(mag)
    finite = logmag[np.isfinite(logmag)]  # the paper skipped -inf values when averaging
    mean, std = float(finite.mean()), float(finite.std())
    norm = np.clip((logmag - mean) / std, -p["clip"], p["clip"]) / p["clip"]
    return cv2_area_resize(norm, *p["image"]), mean, std


def paper_inverse_magnitude(image: np.ndarray, mean: float, std: float, n_frames: int,
                            p: dict = PAPER) -> np.ndarray:
    """Image -> |STFT| (n_fft//2+1, n_frames): resize back, undo the scaling, exp."""
    norm = cv2_area_resize(image, p["n_fft"] // 2 + 1, n_frames)
    return np.exp(norm * p["clip"] * std + mean).astype(np.float32)


def paper_round_trip(audio: np.ndarray, p: dict = PAPER, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(samples,) -> (round-tripped audio (samples,), magnitude before phase retrieval)."""
    import librosa

    image, mean, std = paper_forward(audio, p)
    n_frames = 1 + len(audio) // p["hop_length"]
    mag = paper_inverse_magnitude(image, mean, std, n_frames, p)
    out = librosa.griffinlim(mag, n_iter=p["n_iter"], hop_length=p["hop_length"], n_fft=p["n_fft"],
                             momentum=p["momentum"], length=len(audio), random_state=seed)
    return out.astype(np.float32), mag
