"""Musical keys: the Krumhansl-Schmuckler key finder, and the keys of generated notes.

Key finding (numpy, shared by the evaluator and the generator): a pitch-class distribution is
correlated with the 24 Krumhansl & Kessler (1982) key profiles; the best one is the key.

Key calibration (torch, the ``longform`` generator's sampling): a generator learns the corpus's
harmony but not its share of each key. The recipe's step 5500 played D minor and F major in 24 %
of its clips (the corpus: 11 %) and C major in 11 % (the corpus: 20 %), and the FD's chroma part
was its largest (docs/results.md, section 12). Transposing a clip's notes by a few semitones is
the same music in another key, so at sampling each clip's notes are moved to a key drawn from the
corpus's key shares, in the clip's own mode (transposition cannot turn major into minor). The
shares are a statistic of the training rolls, read at export like the loudness, not fitted to a
score. The same transposition puts a piece in the key a user asks for (``generate --key``).
"""

from __future__ import annotations

import numpy as np
import torch

from .data.rolls import PIANO_LOW  # MIDI note of a roll's key 0 (A0)
from .errors import PianoGANError

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
PITCH_CLASSES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
KEY_NAMES = [f"{p} major" for p in PITCH_CLASSES] + [f"{p} minor" for p in PITCH_CLASSES]
N_KEYS_MUSICAL = 24
FLAT_CV = 1e-3  # a distribution whose std / mean is below this is flat (silence, constant spectrum)


def key_profiles() -> np.ndarray:
    """(24, 12) KK profiles: rows 0-11 major keys C..B, rows 12-23 minor keys C..B."""
    return np.stack([np.roll(KK_MAJOR, k) for k in range(12)] + [np.roll(KK_MINOR, k) for k in range(12)])


def row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis, broadcast; 0 where either side is constant."""
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    return np.where(den > 1e-12, (a * b).sum(-1) / np.maximum(den, 1e-30), 0.0)


def key_strengths(pitch_class: np.ndarray) -> np.ndarray:
    """(..., 12) pitch-class distribution (C first) -> (..., 24) correlation with each KK profile.

    All 0 for a flat distribution: its rounding noise must not pick a key.
    """
    pitch_class = np.asarray(pitch_class, np.float64)
    mean = pitch_class.mean(-1, keepdims=True)
    flat = pitch_class.std(-1, keepdims=True) <= FLAT_CV * np.abs(mean)
    return np.where(flat, 0.0, row_corr(pitch_class[..., None, :], key_profiles()))


# ------------------------------------------------------------------ keys of notes (torch)

def pitch_class_totals(strikes: torch.Tensor, low: int = PIANO_LOW) -> torch.Tensor:
    """Strikes (n, keys, T) >= 0 of a piano roll whose key 0 is MIDI ``low`` -> (n, 12) summed
    strike strength per pitch class, C first."""
    n, keys, _ = strikes.shape
    classes = (torch.arange(keys, device=strikes.device) + low) % 12
    per_key = strikes.detach().float().clamp_min(0).sum(-1)  # (n, keys)
    return torch.zeros(n, 12, device=strikes.device).index_add_(1, classes, per_key)


def keys_of_profiles(pitch_class: torch.Tensor) -> torch.Tensor:
    """(n, 12) pitch-class distributions (C first) -> (n,) key index into :data:`KEY_NAMES`, on
    the tensor's device and without gradient: :func:`key_strengths`'s best key (0 for a flat one)."""
    strengths = key_strengths(pitch_class.detach().float().cpu().numpy())
    return torch.as_tensor(strengths.argmax(-1), device=pitch_class.device)


def keys_of_notes(strikes: torch.Tensor) -> np.ndarray:
    """(n, keys, T) strikes -> (n,) key index into :data:`KEY_NAMES`, -1 where a clip is silent."""
    s = key_strengths(pitch_class_totals(strikes).cpu().numpy())
    return np.where(s.any(-1), s.argmax(-1), -1)


def key_shares(strikes: torch.Tensor) -> np.ndarray:
    """(24,) share of the non-silent clips of ``strikes`` (n, keys, T) in each key (uniform if none)."""
    k = keys_of_notes(strikes)
    k = k[k >= 0]
    return np.bincount(k, minlength=N_KEYS_MUSICAL) / len(k) if len(k) else np.full(N_KEYS_MUSICAL, 1 / N_KEYS_MUSICAL)


_TONICS = {"C": 0, "B#": 0, "C#": 1, "DB": 1, "D": 2, "D#": 3, "EB": 3, "E": 4, "FB": 4, "F": 5, "E#": 5,
           "F#": 6, "GB": 6, "G": 7, "G#": 8, "AB": 8, "A": 9, "A#": 10, "BB": 10, "B": 11, "CB": 11}


def parse_key(name: str) -> int:
    """A key name -> its index into :data:`KEY_NAMES`: "D", "D major", "Dm", "D minor", "F#m",
    "Bb minor" (case-insensitive, ``b`` / ``#`` accidentals)."""
    text = " ".join(str(name).split()).lower()
    mode = 0
    for suffix, m in ((" major", 0), (" minor", 12), (" maj", 0), (" min", 12), ("m", 12)):
        if text.endswith(suffix) and len(text) > len(suffix):
            text, mode = text[: -len(suffix)].strip(), m
            break
    tonic = _TONICS.get(text.upper())
    if tonic is None:
        raise PianoGANError(f"unknown key {name!r}: give a tonic and a mode, e.g. 'C', 'D minor', 'F#m', 'Bb major'")
    return mode + tonic


def _shifts(strikes: torch.Tensor, target_tonic) -> torch.Tensor:
    """Semitones (n,) in -5..6 (the shortest way, up on a tritone) from each clip's key to
    ``target_tonic(i, key)`` (a pitch class, or None: stay put); silent clips stay put."""
    keys = keys_of_notes(strikes)
    out = np.zeros(len(keys), np.int64)
    for i, k in enumerate(keys):
        target = None if k < 0 else target_tonic(i, int(k))
        if target is not None:
            out[i] = (target - k % 12 + 5) % 12 - 5
    return torch.as_tensor(out, device=strikes.device)


def shifts_to_key(strikes: torch.Tensor, key: int) -> torch.Tensor:
    """Semitones (n,) in -5..6 that move each clip of ``strikes`` (n, keys, T) to ``key`` (an
    index into :data:`KEY_NAMES`): to that key when the clip is in its mode, else to its relative
    key in the clip's mode (D minor asked of a major clip gives F major: the same notes, the
    clip's own character). Silent clips stay put."""
    return _shifts(strikes, lambda i, k: key % 12 + (0 if k // 12 == key // 12 else (3 if key >= 12 else -3)))


def style_key_shares(strikes: torch.Tensor, labels: np.ndarray, n_styles: int, prior: float = 24.0) -> np.ndarray:
    """(n_styles, 24) share of each key among the non-silent clips of each style: ``strikes``
    (n, keys, T), ``labels`` (n,) style indices. Each style's counts get ``prior`` clips' worth of
    the corpus-wide shares (:func:`key_shares`), so a rare style is not left with a few keys only."""
    k = keys_of_notes(strikes)
    labels = np.asarray(labels)
    corpus = key_shares(strikes)
    out = np.empty((n_styles, N_KEYS_MUSICAL))
    for s in range(n_styles):
        counts = np.bincount(k[(labels == s) & (k >= 0)], minlength=N_KEYS_MUSICAL)
        out[s] = (counts + prior * corpus) / (counts.sum() + prior)
    return out


def calibration_shifts(strikes: torch.Tensor, shares, u: torch.Tensor) -> torch.Tensor:
    """Semitones (n,) in -5..6 that move each clip of ``strikes`` (n, keys, T) to a key drawn
    from ``shares`` within its own mode: (24,) for every clip, or (n, 24) one row per clip. ``u``
    (n,) in [0, 1) picks the draw (inverse CDF), so the same latent gives the same key. Silent
    clips, and modes without shares, stay put."""
    tables = np.asarray(shares, np.float64).reshape(-1, 2, 12)
    u = u.detach().float().cpu().numpy()

    def drawn(i: int, k: int) -> int | None:
        mode = tables[i if len(tables) > 1 else 0][k // 12]
        if mode.sum() <= 0:
            return None
        return min(int(np.searchsorted(np.cumsum(mode / mode.sum()), u[i], side="right")), 11)

    return _shifts(strikes, drawn)


def transpose(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Roll-like (n, keys, T) moved up by ``shifts`` (n,) keys each; keys pushed off the keyboard
    are dropped, the ones left empty are zero."""
    out = torch.zeros_like(x)
    keys = x.shape[1]
    for i, d in enumerate(shifts.tolist()):
        if d >= 0:
            out[i, d:] = x[i, :keys - d]
        else:
            out[i, :keys + d] = x[i, -d:]
    return out


__all__ = ["FLAT_CV", "KEY_NAMES", "KK_MAJOR", "KK_MINOR", "PITCH_CLASSES", "calibration_shifts", "key_profiles",
           "key_shares", "key_strengths", "keys_of_notes", "keys_of_profiles", "parse_key", "pitch_class_totals", "row_corr",
           "shifts_to_key", "style_key_shares", "transpose"]
