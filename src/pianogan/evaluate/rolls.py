"""What is played, read from piano rolls rather than from audio: onset counts, strike values and
the off-scale notes, for real rolls and for the rolls a ``longform`` generator plays.

Why rolls and not a transcription: the transcriber adds spurious notes of its own, and a measure
of *which* off-scale notes are played (loud or soft, moving by step or not) drowned in them
(docs/results.md, section 25). Two models can share an in-key share and differ in how it is made:
few loud off-scale notes that resolve by step (passing and neighbour tones, what real music has)
or many loud ones out of nowhere, which a listener hears as wrong notes. These figures tell the
two apart.

Units: strikes (n, 88, T) >= 0, ``(velocity / 127) ** 2`` for real rolls
(:data:`pianogan.data.rolls.STRIKE_POWER`); key 0 is A0 (MIDI 21); T frames of ``frame_s`` seconds.
"""

from __future__ import annotations

import numpy as np
import torch

from ..clusters import clash_rival
from ..data.render import PIANO_RANGE
from ..keys import keys_of_notes
from ..modes import FLAT_SEVENTH, struck_ahead
from .notes import MAJOR_SCALE, best_scale

PIANO_LOW = PIANO_RANGE[0]  # MIDI number of key 0 (A0)
ONSET_MIN = 0.05  # a strike at or above this is an onset (velocity ~28 of 127)
LOUDEST = 10  # the "loudest notes" of a clip: its 10 strongest onsets
STEP_SECONDS = 0.3  # an in-scale onset 1-2 semitones away within this time is a move by step
RESOLVE_SECONDS = 0.5  # a seventh degree with the tonic a step above within this time rises to it
MIN_ONSETS = 6  # a clip with fewer onsets has no scale to speak of (left out of the scale figures)
REST_SECONDS = 1.0  # a window this long without an onset is a rest (or a chord held through it)
QUANTILES = (0.1, 0.5, 0.9, 0.99)

_KEY_CLASS = (np.arange(88) + PIANO_LOW) % 12  # class 0 = C, as in .notes


def clip_scale(onsets: np.ndarray) -> np.ndarray:
    """Onsets (88, T) bool -> (12,) bool: the pitch classes of the major scale holding most of the
    clip's onsets (a minor key is its relative major's scale)."""
    counts = np.zeros(12)
    np.add.at(counts, _KEY_CLASS, onsets.sum(-1))
    return np.roll(MAJOR_SCALE, best_scale(counts)[0])  # the transcribed measures' own scale choice


def effective_classes(counts: np.ndarray) -> float:
    """Pitch-class counts (12,) -> exp(entropy of their shares): how many classes they use, each
    class counted by its share (12 for all alike, 1 for one class; 0 without counts)."""
    from scipy.stats import entropy

    c = np.asarray(counts, np.float64)
    return float(np.exp(entropy(c))) if c.sum() > 0 else 0.0  # entropy() normalises the counts


def _by_step(in_scale_onsets: np.ndarray, key: int, t: int, window: int) -> bool:
    """Whether an in-scale onset 1-2 keys from ``key`` strikes within ``window`` frames of ``t``
    (before or after, not at ``t`` itself)."""
    rows = [k for k in (key - 2, key - 1, key + 1, key + 2) if 0 <= k < 88]
    near = in_scale_onsets[rows]
    return bool(near[:, max(0, t - window):t].any() or near[:, t + 1:t + 1 + window].any())


def roll_measures(strikes: np.ndarray, frame_s: float) -> dict:
    """Strikes (n, 88, T) -> figures of what is played (plain floats; NaN where there is nothing
    to measure):

    - ``onsets_per_clip``: onsets (strikes >= :data:`ONSET_MIN`) per clip;
    - ``strike_q10`` .. ``strike_q99``: quantiles of the onset strikes; ``strike_max``;
      ``share_above_1``: onsets louder than a full-velocity strike (none in real rolls);
    - ``off_scale``: share of onsets outside their clip's best major scale (:func:`clip_scale`);
    - ``classes_per_clip``: the effective number of pitch classes a clip's onsets use (the
      exponential of the entropy of its class counts: 7 for a clip that plays seven classes
      alike; the corpus about 7.2, the plan models 6.4; docs/results.md, section 45);
    - ``off_scale_loudest``: the same share among each clip's :data:`LOUDEST` strongest onsets
      (clips averaged);
    - ``off_scale_by_step``: share of off-scale onsets with an in-scale onset 1-2 semitones away
      within :data:`STEP_SECONDS` before or after (passing and neighbour tones);
    - ``clashes``: share of onsets struck within a frame of another onset a semitone away at any
      octave (minor second, major seventh, minor ninth, ...: :mod:`pianogan.clusters`), the
      clusters a listener hears as a wrong note in the chord (real rolls: under 1 %);
    - ``leading_tones``: of the onsets on either seventh degree of the clip's key
      (:func:`pianogan.keys.keys_of_notes`) with the tonic a step above within
      :data:`RESOLVE_SECONDS` after, the share on the raised one, the leading tone (real rolls:
      about two thirds; a model playing modal cadences scores low);
    - ``rest_seconds``: share of a clip's whole :data:`REST_SECONDS` windows with no onset (rests,
      fermatas, held chords, endings; the corpus about 8 %, docs/results.md, section 47), and
      ``clips_with_rest``: share of clips with at least one (the corpus about 42 %). The clips
      whose loudness moves most are these.
    """
    strikes = np.asarray(strikes, np.float32)
    if strikes.ndim != 3 or strikes.shape[1] != 88:
        raise ValueError(f"strikes must be (n, 88, T), got {strikes.shape}")
    window = max(1, int(round(STEP_SECONDS / frame_s)))
    values, loudest, classes = [], [], []
    n_off = n_scaled = n_step = 0
    onsets = strikes >= ONSET_MIN
    # an onset with a clashing onset within a frame (clash_rival of 0/1 onsets is 1 there)
    n_clash = int((onsets & (clash_rival(torch.from_numpy(onsets.astype(np.float32))).numpy() > 0)).sum())
    n_raised, n_rising = _sevenths_rising(onsets, keys_of_notes(torch.from_numpy(strikes)),
                                          max(1, int(round(RESOLVE_SECONDS / frame_s))))
    for clip, on in zip(strikes, onsets):
        keys, times = np.nonzero(on)
        values.append(clip[keys, times])
        if len(keys) < MIN_ONSETS:
            continue
        scale = clip_scale(on)
        inside = scale[_KEY_CLASS[keys]]
        in_scale_onsets = on & scale[_KEY_CLASS][:, None]
        n_scaled += len(keys)
        classes.append(effective_classes(np.bincount(_KEY_CLASS[keys], minlength=12)))
        n_off += int((~inside).sum())
        n_step += sum(_by_step(in_scale_onsets, int(k), int(t), window) for k, t in zip(keys[~inside], times[~inside]))
        top = np.argsort(-clip[keys, times], kind="stable")[:LOUDEST]
        loudest.append(float((~inside[top]).mean()))
    v = np.concatenate(values) if values else np.zeros(0, np.float32)
    nan = float("nan")
    out = {"clips": int(len(strikes)), "onsets_per_clip": float(len(v) / max(len(strikes), 1))}
    for q in QUANTILES:
        out[f"strike_q{int(round(q * 100))}"] = float(np.quantile(v, q)) if len(v) else nan
    out["strike_max"] = float(v.max()) if len(v) else nan
    out["share_above_1"] = float((v > 1.0).mean()) if len(v) else nan
    out["off_scale"] = n_off / n_scaled if n_scaled else nan
    out["classes_per_clip"] = float(np.mean(classes)) if classes else nan
    out["off_scale_loudest"] = float(np.mean(loudest)) if loudest else nan
    out["off_scale_by_step"] = n_step / n_off if n_off else nan
    out["clashes"] = n_clash / len(v) if len(v) else nan
    out["leading_tones"] = n_raised / n_rising if n_rising else nan
    w = max(1, int(round(REST_SECONDS / frame_s)))
    n_w = onsets.shape[-1] // w
    if n_w:
        rests = ~onsets[..., :n_w * w].reshape(len(onsets), 88, n_w, w).any(axis=(1, 3))  # (n, windows)
        out["rest_seconds"], out["clips_with_rest"] = float(rests.mean()), float(rests.any(-1).mean())
    else:
        out["rest_seconds"] = out["clips_with_rest"] = nan
    return out


def _sevenths_rising(onsets: np.ndarray, clip_keys: np.ndarray, reach: int) -> tuple[int, int]:
    """Onsets (n, 88, T) bool and each clip's key (n,) (-1: none) -> (onsets on the leading tone,
    onsets on either seventh degree) among those with the tonic struck a step above within
    ``reach`` frames after."""
    on = torch.from_numpy(onsets.astype(np.float32))
    to_tonic = {FLAT_SEVENTH: struck_ahead(on, reach, 2).numpy(), FLAT_SEVENTH + 1: struck_ahead(on, reach, 1).numpy()}
    counts = {FLAT_SEVENTH: 0, FLAT_SEVENTH + 1: 0}
    for i, key in enumerate(clip_keys):
        if key < 0:
            continue
        for degree, rising in to_tonic.items():
            rows = _KEY_CLASS == (key % 12 + degree) % 12
            counts[degree] += int((onsets[i, rows] & rising[i, rows]).sum())
    return counts[FLAT_SEVENTH + 1], counts[FLAT_SEVENTH] + counts[FLAT_SEVENTH + 1]


__all__ = ["LOUDEST", "ONSET_MIN", "RESOLVE_SECONDS", "STEP_SECONDS", "clip_scale", "roll_measures"]
