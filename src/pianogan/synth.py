"""Piano-like test audio made from scratch (no data download): for tests, benchmarks and demos.

Each note is a sum of slightly inharmonic partials (f_k = k f0 sqrt(1 + B k^2), B ~ 1e-4 as in a
piano string) with a fast attack, a two-stage exponential decay that is faster for higher
partials, and a short noisy hammer transient. Notes follow a random walk through a diatonic scale
with occasional chords, so the result has harmonic structure, onsets and a key - unlike a sine.
"""

from __future__ import annotations

import numpy as np

MAJOR = (0, 2, 4, 5, 7, 9, 11)


def piano_note(f0: float, seconds: float, sample_rate: int, velocity: float = 0.7,
               rng: np.random.Generator | None = None) -> np.ndarray:
    """One piano-like note: (round(seconds * sample_rate),) float32, peak about ``velocity``."""
    rng = rng or np.random.default_rng(0)
    n = max(1, int(round(seconds * sample_rate)))
    t = np.arange(n) / sample_rate
    out = np.zeros(n, np.float64)
    b = 1e-4
    nyquist = sample_rate / 2
    for k in range(1, 16):
        fk = k * f0 * np.sqrt(1 + b * k * k)
        if fk >= nyquist * 0.95:
            break
        amp = velocity / k ** (1.2 - 0.4 * velocity)
        decay = 1.5 + 0.9 * k + f0 / 400
        env = 0.7 * np.exp(-t * decay) + 0.3 * np.exp(-t * decay * 0.15)
        out += amp * env * np.sin(2 * np.pi * fk * t + rng.uniform(0, 2 * np.pi))
    attack = min(n, int(0.004 * sample_rate))
    out[:attack] *= np.linspace(0, 1, attack, endpoint=False)
    hammer = min(n, int(0.02 * sample_rate))
    out[:hammer] += 0.05 * velocity * rng.standard_normal(hammer) * np.exp(-np.arange(hammer) / (hammer / 4))
    return out.astype(np.float32)


def piano_piece(seconds: float, sample_rate: int, seed: int = 0, tempo_bpm: float = 100.0,
                key: int | None = None) -> np.ndarray:
    """A piano-like piece: (round(seconds * sample_rate),) float32 in [-1, 1], peak ~0.8.

    Deterministic for a given ``seed``. ``key`` is the tonic pitch class (0 = C); random if None.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    out = np.zeros(n + sample_rate * 3, np.float32)
    key = int(rng.integers(0, 12)) if key is None else key
    beat = 60.0 / tempo_bpm
    degree = 0
    pos = 0.0
    while pos < seconds:
        degree = int(np.clip(degree + rng.integers(-2, 3), -7, 10))
        octave, step = divmod(degree, 7)
        midi = 60 + key + 12 * octave + MAJOR[step]
        pitches = [midi]
        if rng.random() < 0.3:  # a triad in the bass
            root = 48 + key + MAJOR[int(rng.integers(0, 7))] - 12 * int(rng.random() < 0.5)
            pitches += [root, root + 4 if rng.random() < 0.5 else root + 3, root + 7]
        dur = beat * float(rng.choice([0.5, 1.0, 1.0, 2.0]))
        for p in pitches:
            f0 = 440.0 * 2 ** ((p - 69) / 12)
            vel = float(rng.uniform(0.35, 0.9))
            note = piano_note(f0, dur + 1.5, sample_rate, vel, rng)
            start = int(pos * sample_rate)
            out[start:start + len(note)] += note[: len(out) - start]
        pos += dur
    out = out[:n]
    peak = float(np.abs(out).max()) or 1.0
    return (0.8 * out / peak).astype(np.float32)
