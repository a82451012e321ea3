"""Harder references than white noise: real clips broken in one known way each, and an untrained
generator. A metric is only worth reporting if it ranks real above the breakages it claims to
detect; :func:`validate` measures that (docs/evaluate.md has the table, tests assert it).

Every function maps images (n, H, W) in [-1, 1] of a preset to images of the same shape.
"""

from __future__ import annotations

import numpy as np

from ..config import Preset
from ..spectrogram import Stats

REAL_A, REAL_B = "real half A (reference)", "real half B (floor)"
# What each reported measure detects: (direction, the breakages it ranks below real half B).
# Measured at 10s-256 on the built-in corpus (docs/evaluate.md, benchmarks/bench_transcribe.py);
# tests/test_transcribe.py asserts every entry on a small set. "near": |x - A| larger than |B - A|.
DETECTS = {
    "fd": ("lower", ["white noise", "blurred spectra", "pitch shift per window", "one stationary chord",
                     "untrained generator"]),
    "fd_notes": ("lower", ["white noise", "blurred spectra", "pitch shift per window", "one stationary chord",
                           "untrained generator"]),
    "key_clarity": ("higher", ["white noise", "blurred spectra", "pitch shift per window", "one stationary chord",
                               "untrained generator"]),
    "onset_density": ("near", ["white noise", "one stationary chord", "untrained generator"]),
    "harmonic_share": ("near", ["white noise", "blurred spectra", "untrained generator"]),
    "notes_per_s": ("near", ["white noise", "untrained generator"]),
    "polyphony": ("near", ["white noise", "blurred spectra", "untrained generator"]),
    "pitch_range": ("near", ["white noise", "one stationary chord", "untrained generator"]),
    "pc_js": ("lower", ["white noise", "pitch shift per window", "one stationary chord", "untrained generator"]),
    "pc_js_aligned": ("lower", ["white noise", "pitch shift per window", "one stationary chord",
                                "untrained generator"]),
    "in_key_share": ("higher", ["white noise", "pitch shift per window", "untrained generator"]),
    "key_agreement_notes": ("higher", ["white noise", "pitch shift per window", "untrained generator"]),
    "ioi_median_s": ("near", ["white noise", "blurred spectra", "untrained generator"]),
    "ioi_cv": ("near", ["blurred spectra"]),
}


def ranks_real_best(sets: dict[str, dict], metric: str, breakage: str) -> bool:
    """Does ``metric`` rank real half B better than ``breakage`` (in :func:`validate`'s output)?"""
    direction = DETECTS[metric][0]
    a, b, x = sets[REAL_A].get(metric), sets[REAL_B][metric], sets[breakage][metric]
    if x is None:
        return True  # not measurable on the breakage at all (e.g. no key in any clip)
    if direction == "higher":
        return b > x
    if direction == "lower":
        return b < x
    return abs(x - a) > abs(b - a)


BLUR_PX = 2.0  # Gaussian blur (pixels, both axes) of "blurred spectra"
WINDOWS = 4  # windows per clip of the pitch-shift and time-shuffle breakages
MAX_SHIFT = 6  # semitones, largest random pitch shift of a window


def blurred(images: np.ndarray, px: float = BLUR_PX) -> np.ndarray:
    """Each image blurred by a Gaussian of ``px`` pixels (time and frequency)."""
    from scipy import ndimage

    return ndimage.gaussian_filter(np.asarray(images, np.float32), (0, px, px)).astype(np.float32)


def _window_edges(width: int, windows: int) -> np.ndarray:
    return np.linspace(0, width, windows + 1).round().astype(int)


def shuffled_windows(images: np.ndarray, seed: int = 0, windows: int = WINDOWS) -> np.ndarray:
    """Each clip's time axis cut into ``windows`` equal windows put in a random (non-identity) order."""
    rng = np.random.default_rng(seed)
    edges = _window_edges(images.shape[-1], windows)
    out = np.empty_like(images)
    for i, img in enumerate(images):
        order = rng.permutation(windows)
        while windows > 1 and np.all(order == np.arange(windows)):
            order = rng.permutation(windows)
        out[i] = np.concatenate([img[:, edges[k]:edges[k + 1]] for k in order], axis=1)
    return out


def _row_hz(preset: Preset) -> np.ndarray:
    from ..spectrogram import row_to_hz

    return row_to_hz(np.arange(preset.image_height), preset)


def pitch_shifted_windows(images: np.ndarray, preset: Preset, seed: int = 0, windows: int = WINDOWS,
                          max_shift: int = MAX_SHIFT) -> np.ndarray:
    """Each window of a clip moved by its own random non-zero shift of -max..+max semitones.

    Done on the image: every frequency f takes the value at f / 2^(s/12) (linear interpolation
    along the image's frequency axis; rows beyond the data get the image minimum, -1). The
    notes in each window stay in tune with each other, but the key jumps between windows.
    """
    rng = np.random.default_rng(seed)
    hz = _row_hz(preset)
    edges = _window_edges(images.shape[-1], windows)
    out = np.array(images, np.float32, copy=True)
    for i in range(len(images)):
        for k in range(windows):
            s = 0
            while s == 0:
                s = int(rng.integers(-max_shift, max_shift + 1))
            src = hz / 2 ** (s / 12)
            block = images[i, :, edges[k]:edges[k + 1]]
            out[i, :, edges[k]:edges[k + 1]] = np.stack(
                [np.interp(src, hz, col, left=-1.0, right=-1.0) for col in block.T], axis=1)
    return out


def stationary_chord(images: np.ndarray) -> np.ndarray:
    """Each clip replaced by its loudest frame held for the whole clip: one chord, no events."""
    loudest = np.asarray(images).mean(1).argmax(-1)  # (n,) column of the most energy
    cols = np.asarray(images)[np.arange(len(images)), :, loudest]  # (n, H)
    return np.repeat(cols[:, :, None], images.shape[-1], axis=2).astype(np.float32)


def untrained_generator(preset: Preset, n: int, seed: int = 0, model: str = "specgan",
                        config: str = "tiny") -> np.ndarray:
    """n images from a generator at its initial (random) weights."""
    import torch

    from ..models import get_model
    from .sources import sample_generator

    fam = get_model(model)
    torch.manual_seed(seed)
    G, _ = fam.build(fam.CONFIGS[config], preset.image_shape)
    return sample_generator(G.eval(), n, seed=seed)


def breakages(images: np.ndarray, preset: Preset, stats: Stats, seed: int = 0,
              untrained: bool = True) -> dict[str, np.ndarray]:
    """{name: images} of every reference of the validation table, made from ``images``."""
    from .core import white_noise_images

    out = {
        "white noise": white_noise_images(len(images), preset, stats, seed),
        "blurred spectra": blurred(images),
        "pitch shift per window": pitch_shifted_windows(images, preset, seed),
        "time-shuffled windows": shuffled_windows(images, seed),
        "one stationary chord": stationary_chord(images),
    }
    if untrained:
        out["untrained generator"] = untrained_generator(preset, len(images), seed)
    return out


def validate(real: np.ndarray, preset: Preset, stats: Stats, seed: int = 0, notes: bool = True,
             transcriber=None, untrained: bool = True, progress: bool = False) -> dict[str, dict]:
    """Real half B and each breakage of half B, compared with real half A: {set name: metrics}.

    ``real`` (2n, H, W) is shuffled with ``seed`` and split like :func:`run_evaluation` does; half A
    itself is in the output too (:data:`REAL_A`), the target of the "near real" measures.
    """
    from .core import build_reference, compare

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real))
    n = len(real) // 2
    half_a, half_b = real[np.sort(order[:n])], real[np.sort(order[n:2 * n])]
    if notes and transcriber is None:
        from ..transcribe import Transcriber

        transcriber = Transcriber()
    ref = build_reference(half_a, preset, stats, seed=seed, progress=progress,
                          transcriber=transcriber if notes else None)
    sets = {REAL_A: compare(ref, half_a, label="real A", progress=progress),
            REAL_B: compare(ref, half_b, label="real B", progress=progress)}
    for name, images in breakages(half_b, preset, stats, seed, untrained).items():
        sets[name] = compare(ref, images, label=name, progress=progress)
    return sets
