"""The built-in piano corpus: scores that ship inside music21, performed as MIDI with a human touch.

No download: music21 (BSD-3-Clause) installs a corpus of encoded scores. We use its keyboard
pieces, Bach's four-part chorales, string quartets (played as piano reductions) and song
accompaniments - :mod:`pianogan.data.builtin_corpus` lists them with their durations (made by
``tools/survey_builtin_corpus.py``). A score is turned into a *performance* (:func:`perform`),
so the rendered audio is not robotic:

- tempo: the score's metronome marks (or a default for the genre), a random ±6 % for the
  piece, slow rubato (two sinusoids over 2 and 8 bars, ±4 %), fermatas held 1.3-1.7x, and a
  ritardando over the last two bars;
- dynamics: the score's dynamic marks (or a random base level), phrase swells over 4 bars, metric
  accents from music21's beat strength, the outer voices brought out, random jitter;
- timing: onsets jittered by ~6 ms with chords slightly spread, legato 85-98 % of the notated
  length, staccato 45 %;
- sustain pedal (CC64): changed on every harmonic unit (beat, half bar or bar, the shortest that
  lasts >= 0.45 s), pressed 50-110 ms after the change and lifted just before the next one.

Every random choice comes from a seed derived from the corpus path, so a piece is performed the
same way on every run (resume gives identical data).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..errors import PianoGANError, describe
from .render import fold_to_piano
from .items import stable_unit

SPLIT_FRACTIONS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))
PERFORM_VERSION = 1  # bump when perform() changes: prepared pieces are then redone on resume


@dataclass(frozen=True)
class CorpusPiece:
    ref: str  # path inside music21's corpus, e.g. "bach/bwv297.mxl"
    composer: str
    title: str
    kind: str  # "keyboard", "chorale", "quartet" or "song"
    seconds: float  # duration of the default performance (for --max-hours and progress)

    @property
    def work(self) -> str:
        """The work a file belongs to (movements and chorale variants share it): split unit."""
        stem = self.ref.rsplit(".", 1)[0]
        if "/movement" in stem:
            return stem.rsplit("/", 1)[0]
        if self.kind == "chorale":
            return stem.split("-")[0]
        return stem

    @property
    def split(self) -> str:
        return split_for(self.work)


def split_for(work: str) -> str:
    u, acc = stable_unit("split:" + work), 0.0
    for name, frac in SPLIT_FRACTIONS:
        acc += frac
        if u < acc:
            return name
    return SPLIT_FRACTIONS[-1][0]


def seed_for(ref: str) -> int:
    return int(hashlib.sha1(("perform:" + ref).encode()).hexdigest()[:8], 16)


def load_score(ref: str):
    """Parse a corpus score with music21 (raises PianoGANError if it is missing or unparsable)."""
    from music21 import corpus

    try:
        return corpus.parse(ref)
    except Exception as e:
        raise PianoGANError(f"music21 corpus: cannot parse {ref} ({describe(e)})") from None


DEFAULT_TEMPO = {"chorale": (58.0, 72.0), "quartet": (80.0, 112.0), "keyboard": (84.0, 112.0),
                 "song": (66.0, 90.0)}  # quarter notes per minute, when the score has no mark


def _smooth(q: np.ndarray, rng: np.random.Generator, periods: list[float], amps: list[float]) -> np.ndarray:
    """Sum of sinusoids of the given periods (quarter notes) with random phases: slow variation."""
    out = np.zeros_like(q)
    for period, amp in zip(periods, amps):
        out += amp * rng.uniform(0.6, 1.0) * np.sin(2 * np.pi * q / period + rng.uniform(0, 2 * np.pi))
    return out


def _tempo_curve(score, grid: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Quarter notes per minute at each grid offset: the score's metronome marks where it has
    them (clipped to 40..240), a genre default before the first one or when it has none."""
    lo, hi = DEFAULT_TEMPO.get(kind, DEFAULT_TEMPO["keyboard"])
    default = rng.uniform(lo, hi)
    explicit = {id(m) for m in score.recurse().getElementsByClass("MetronomeMark")}
    bpm = np.full(len(grid), default)
    if explicit:
        for start, end, mark in score.metronomeMarkBoundaries():
            value = mark.getQuarterBPM() if id(mark) in explicit else None
            if value and end > start:
                bpm[(grid >= start) & (grid < end)] = float(np.clip(value, 40, 240))
        last = score.metronomeMarkBoundaries()[-1]
        if id(last[2]) in explicit and last[2].getQuarterBPM():
            bpm[grid >= last[1]] = float(np.clip(last[2].getQuarterBPM(), 40, 240))
    return bpm


def perform(score, seed: int, kind: str = "keyboard"):
    """A music21 score -> ``pretty_midi.PrettyMIDI`` (one piano track with CC64 pedal), humanised."""
    import pretty_midi

    rng = np.random.default_rng(seed)
    parts = list(score.parts) or [score]
    ts = score.recurse().getElementsByClass("TimeSignature").first()
    bar_q = float(ts.barDuration.quarterLength) if ts is not None else 4.0
    beat_q = float(ts.beatDuration.quarterLength) if ts is not None else 1.0
    raw = []
    for pi, part in enumerate(parts):
        raw += _part_notes(part, pi, bar_q, beat_q)
    if not raw:
        raise PianoGANError("score has no notes")
    raw.sort(key=lambda r: (r[0], r[3], r[2]))
    end_q = max(q + max(d, 0.25) for q, d, *_ in raw)

    # Tempo map: seconds per quarter note on a fine grid, integrated to a time map t(q).
    step = 1 / 48
    grid = np.arange(0, end_q + 4 + step, step)
    bpm = _tempo_curve(score, grid, kind, rng) * float(np.exp(rng.normal(0, 0.06)))
    spq = 60.0 / bpm * np.exp(_smooth(grid, rng, [2 * bar_q, 8 * bar_q], [0.025, 0.035]))
    rit_start = max(0.0, end_q - 2 * bar_q)
    spq *= 1 + 0.35 * np.clip((grid - rit_start) / max(end_q - rit_start, 1e-6), 0, 1) ** 2
    held = np.zeros(len(grid), bool)  # fermatas: every voice may carry one, hold the time once
    for q, dur, _, _, _, _, ferm, _ in raw:
        if ferm:
            held |= (grid >= q) & (grid < q + max(dur, beat_q))
    spq[held] *= rng.uniform(1.3, 1.7)
    t_grid = np.concatenate([[0.0], np.cumsum(spq[:-1] * step)])

    def t(qs):
        return np.interp(qs, grid, t_grid)

    # Dynamics: the score's marks (any part), else a base level; phrase swells; accents; voicing.
    base = rng.uniform(56, 78)
    dyn_marks = sorted((float(d.getOffsetInHierarchy(score)), float(d.volumeScalar))
                       for d in score.recurse().getElementsByClass("Dynamic") if d.volumeScalar)
    dyn_q = np.array([q for q, _ in dyn_marks])
    dyn_v = np.array([25 + 85 * v for _, v in dyn_marks])
    swell_phase = _smooth(grid, rng, [4 * bar_q, 16 * bar_q], [9.0, 6.0])
    n_parts = len(parts)

    instrument = pretty_midi.Instrument(program=0, name="Piano")
    onset_jitter: dict[float, float] = {}
    for q, dur, p, pi, strength, stacc, ferm, top in raw:
        if q not in onset_jitter:
            onset_jitter[q] = rng.normal(0, 0.006)
        start = float(t(q)) + onset_jitter[q] + rng.normal(0, 0.003)
        if dur <= 0:  # grace note: a short note just before the beat
            start, length = start - 0.07, 0.07
        else:
            notated = float(t(q + dur) - t(q))
            length = notated * (0.45 if stacc else rng.uniform(0.85, 0.98))
        length = max(length, 0.05)
        if len(dyn_q):
            i = int(np.searchsorted(dyn_q, q, side="right")) - 1
            level = dyn_v[i] if i >= 0 else base
        else:
            level = base
        level += np.interp(q, grid, swell_phase) + 10 * (strength - 0.5)
        if n_parts > 1:
            level += 6 if pi == 0 else (2 if pi == n_parts - 1 else -6)
        vel = level + (4 if p == top and top is not None else 0) - (2 if top is not None and p != top else 0)
        vel += rng.normal(0, 4)
        instrument.notes.append(pretty_midi.Note(
            velocity=int(np.clip(round(vel), 15, 120)), pitch=fold_to_piano(p),
            start=max(0.0, start), end=max(0.0, start) + length))
    instrument.notes = _merge_unisons(instrument.notes)

    # Sustain pedal: lifted at each harmonic unit, pressed again shortly after.
    unit = next((u for u in (beat_q, bar_q / 2, bar_q) if float(t(u) - t(0)) >= 0.45), bar_q)
    changes = np.arange(0, end_q, unit)
    for c0, c1 in zip(changes, np.append(changes[1:], end_q)):
        down, up = float(t(c0)) + rng.uniform(0.05, 0.11), float(t(c1)) - 0.01
        if up > down:
            instrument.control_changes.append(pretty_midi.ControlChange(64, 127, down))
            instrument.control_changes.append(pretty_midi.ControlChange(64, 0, up))
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    pm.instruments.append(instrument)
    return pm


def _part_notes(part, pi: int, bar_q: float, beat_q: float) -> list:
    """One part's notes, ties joined, one entry per key: (onset q, duration q, midi key, part index,
    metric weight 0..1, staccato, fermata, top key of its chord or None). Ties are joined here
    rather than with music21's stripTies, which is ~50x slower on a long quartet movement."""
    from music21 import articulations, expressions

    flat = part.flatten()
    bars = np.array(sorted({float(m.getOffsetBySite(part)) for m in part.getElementsByClass("Measure")}))
    out: list[list] = []
    open_ties: dict[int, int] = {}
    for el in flat.notes:
        q = float(el.getOffsetBySite(flat))
        dur = float(el.quarterLength)
        members = list(el.notes) if el.isChord else [el]
        stacc = any(isinstance(a, (articulations.Staccato, articulations.Staccatissimo))
                    for a in el.articulations)
        ferm = any(isinstance(e, expressions.Fermata) for e in el.expressions)
        i = int(np.searchsorted(bars, q, side="right")) - 1 if len(bars) else -1
        pos = q - (bars[i] if i >= 0 else 0.0)
        if abs(pos) < 1e-6 or abs(pos % bar_q) < 1e-6:
            strength = 1.0
        elif abs(pos % (bar_q / 2)) < 1e-6 and bar_q / beat_q % 2 == 0:
            strength = 0.5
        elif abs(pos % beat_q) < 1e-6:
            strength = 0.25
        else:
            strength = 0.125
        keys = [int(m.pitch.midi) for m in members]
        top = max(keys) if len(keys) > 1 else None
        for m, key in zip(members, keys):
            tie = m.tie.type if m.tie is not None else None
            if tie in ("stop", "continue") and key in open_ties:
                prev = out[open_ties[key]]
                prev[1] = q + dur - prev[0]
                if tie == "stop":
                    del open_ties[key]
                continue
            out.append([q, dur, key, pi, strength, stacc, ferm, top])
            if tie == "start":
                open_ties[key] = len(out) - 1
    return [tuple(r) for r in out]


def _merge_unisons(notes):
    """Two voices on the same key at (almost) the same time are one piano key: keep the louder,
    longer one."""
    notes = sorted(notes, key=lambda n: (n.pitch, n.start))
    out = []
    for n in notes:
        if out and out[-1].pitch == n.pitch and n.start - out[-1].start < 0.03:
            prev = out[-1]
            prev.velocity = max(prev.velocity, n.velocity)
            prev.end = max(prev.end, n.end)
            continue
        out.append(n)
    return sorted(out, key=lambda n: (n.start, n.pitch))


def corpus_pieces() -> list[CorpusPiece]:
    """The curated built-in corpus (pieces missing from the installed music21 are skipped later)."""
    from .builtin_corpus import PIECES

    return [CorpusPiece(*p) for p in PIECES]


def performance(ref: str, kind: str):
    """Parse and perform the corpus score ``ref`` (a piece of the given kind) -> PrettyMIDI; the
    same performance on every run (the seed comes from ``ref``)."""
    import warnings

    score = load_score(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return perform(score, seed_for(ref), kind)
