"""How far to trust the transcriber: note F1 on built-in corpus excerpts whose notes are known.

The built-in corpus is rendered from scores (:mod:`pianogan.data.builtin`), so every excerpt comes
with the MIDI it was rendered from. :func:`corpus_excerpt` renders a stretch of one piece and
returns its audio with the notes that start inside it; :func:`note_f1` scores a transcription
against them with ``mir_eval.transcription`` (onset within 50 ms and the same pitch; offsets
ignored, the usual "note F1" for piano, where the pedal makes offsets ill-defined).
"""

from __future__ import annotations

import numpy as np

ONSET_TOLERANCE_S = 0.05  # mir_eval's default onset tolerance
LEAD_S = 4.0  # seconds rendered before an excerpt, so that earlier notes still sound into it


def corpus_excerpt(ref: str, start_s: float, seconds: float, sample_rate: int,
                   soundfont=None) -> tuple[np.ndarray, np.ndarray]:
    """Render ``seconds`` of corpus piece ``ref`` (music21 path) from ``start_s``.

    Returns (audio (samples,) float32 at ``sample_rate``, notes (k, 4): onset s, offset s, MIDI
    pitch, velocity, times relative to the excerpt, only notes with their onset inside it).
    """
    from ..audio import resample
    from ..data.builtin import corpus_pieces, performance
    from ..data.render import RENDER_RATE, Note, PianoRenderer, find_soundfont, notes_from_midi

    kind = next((p.kind for p in corpus_pieces() if p.ref == ref), "keyboard")
    notes = notes_from_midi(performance(ref, kind))
    end_s = start_s + seconds
    # Render only what sounds in the excerpt: notes from LEAD_S before it on (so notes struck
    # earlier still ring into it), then cut the lead off.
    t0 = max(0.0, start_s - LEAD_S)
    part = [Note(n.start - t0, n.end - t0, n.pitch, n.velocity) for n in notes if t0 <= n.start < end_s]
    audio = PianoRenderer(find_soundfont(soundfont).path).render(part)
    audio = audio[int((start_s - t0) * RENDER_RATE):int((end_s - t0) * RENDER_RATE)]
    audio = np.pad(audio, (0, max(0, int(seconds * RENDER_RATE) - len(audio))))
    audio = resample(audio, RENDER_RATE, sample_rate)
    inside = [(n.start - start_s, min(n.end, end_s) - start_s, n.pitch, n.velocity)
              for n in notes if start_s <= n.start < end_s - ONSET_TOLERANCE_S]
    return audio.astype(np.float32), np.array(inside, np.float64).reshape(-1, 4)


def note_f1(reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Onset-only note precision / recall / F1 of ``estimate`` against ``reference`` (both (k, 4))."""
    import librosa
    from mir_eval.transcription import precision_recall_f1_overlap

    ref = np.asarray(reference, np.float64).reshape(-1, 4)
    est = np.asarray(estimate, np.float64).reshape(-1, 4)
    if len(ref) == 0 or len(est) == 0:
        return {"precision": float(len(ref) == len(est)), "recall": float(len(ref) == len(est)),
                "f1": float(len(ref) == len(est)), "n_ref": len(ref), "n_est": len(est)}

    def intervals(n):
        return np.stack([n[:, 0], np.maximum(n[:, 1], n[:, 0] + 1e-3)], 1)

    p, r, f, _ = precision_recall_f1_overlap(intervals(ref), librosa.midi_to_hz(ref[:, 2]), intervals(est),
                                             librosa.midi_to_hz(est[:, 2]), onset_tolerance=ONSET_TOLERANCE_S,
                                             offset_ratio=None)
    return {"precision": float(p), "recall": float(r), "f1": float(f), "n_ref": len(ref), "n_est": len(est)}
