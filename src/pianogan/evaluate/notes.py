"""Note-level measures of a set of clips, read by a pretrained piano transcriber.

Images are turned into audio (Griffin-Lim, the same for every set), transcribed by
:class:`pianogan.transcribe.Transcriber` (basic-pitch on onnxruntime) and measured here. Per clip
(:func:`clip_measures`), averaged over a set:

- ``notes_per_s``; ``polyphony`` (mean number of notes sounding while any does); ``pitch_range``
  (highest - lowest pitch, semitones);
- ``in_key_share``: share S of the note time (durations) inside the best-fitting diatonic scale
  (the 12 major scales; a minor key shares its relative major's scale), the scale estimated
  from the notes themselves, *above chance*: (S - E) / (1 - E), where E is the mean S of the same
  notes with random pitch classes (a few random notes always fit some scale). 1 = all in one
  scale, ~0 = no more in key than random pitches; clips with fewer than MIN_KEY_NOTES notes score 0;
- ``key_agreement_notes``: 1 where both halves of a clip have at least :data:`MIN_KEY_NOTES`
  notes starting in them and the same best scale, else 0; ``window_key_agreement``: the same
  across consecutive :data:`KEY_WINDOW_S` windows of clips of at least two windows (else None);
- ``ioi_cv``: coefficient of variation of the inter-onset intervals (chord onsets within
  :data:`CHORD_S` merged), the rhythmic (ir)regularity; ``ioi_median_s``;
- ``pulse``: whether the onsets keep a beat: the highest autocorrelation of the onset envelope
  (notes starting per 25 ms, smoothed over three bins) at lags of :data:`PULSE_PERIODS_S`,
  0 below MIN_KEY_NOTES notes. Transcribed 20 s excerpts of the built-in corpus score 0.46; the
  same notes moved to random times score ~0.1 (docs/results.md, section 19).

Per set, against real reference half A (:func:`compare_notes`): ``pc_js`` (Jensen-Shannon
divergence, base 2, of the set's pitch-class histogram to A's), ``pc_js_aligned`` (the same on
histograms rotated to each clip's best scale: the tonal profile, blind to which key) and
``fd_notes``, a Fréchet distance on :data:`NOTE_FEATURES` (note statistics and posteriorgram
summaries per clip), standardised with A's mean and std as the descriptor FD is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..transcribe import FPS, N_KEYS, Transcription
from .frechet import frechet_from_moments, gaussian

MAJOR_SCALE = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)  # from its tonic
MIN_KEY_NOTES = 6  # notes a half / window needs to have a key
CHORD_S = 0.03  # onsets closer than this are one event
KEY_WINDOW_S = 10.0  # seconds per window of window_key_agreement
PULSE_FPS = 40.0  # bins per second of pulse's onset envelope
PULSE_PERIODS_S = (0.3, 1.5)  # beat periods pulse reads: 200 down to 40 beats a minute
NOTE_METRICS = ["notes_per_s", "polyphony", "pitch_range", "in_key_share", "key_agreement_notes",
                "window_key_agreement", "ioi_median_s", "ioi_cv", "pulse"]
SET_NOTE_KEYS = [*NOTE_METRICS, "pc_js", "pc_js_aligned", "fd_notes", "pc_histogram"]
OCTAVE_BANDS = 8  # posteriorgram summary: mean note posterior in 8 bands of 11 keys
NOTE_FEATURES = (["notes_per_s", "polyphony", "pitch_range", "pitch_mean", "pitch_std", "in_key_share",
                  "key_agreement_notes", "log_ioi_median", "ioi_cv", "log_duration_mean", "amplitude_mean"]
                 + [f"pc_aligned_{i}" for i in range(12)]
                 + [f"note_post_band_{i}" for i in range(OCTAVE_BANDS)]
                 + ["onset_post_mean", "note_post_flux", "active_frame_share"])


def pitch_class_histogram(notes: np.ndarray) -> np.ndarray:
    """Notes (k, 4) -> (12,) duration-weighted pitch-class shares C..B (zeros without notes)."""
    h = np.zeros(12)
    if len(notes):
        np.add.at(h, notes[:, 2].astype(int) % 12, np.maximum(notes[:, 1] - notes[:, 0], 1e-3))
    s = h.sum()
    return h / s if s > 0 else h


def best_scale(hist: np.ndarray) -> tuple[int, float]:
    """(12,) pitch-class weights -> (tonic of the best major scale 0..11, share inside it)."""
    shares = np.array([hist[np.roll(MAJOR_SCALE, k)].sum() for k in range(12)])
    k = int(np.argmax(shares))
    total = hist.sum()
    return k, float(shares[k] / total) if total > 0 else 0.0


SHARE_MATRIX = np.stack([np.roll(MAJOR_SCALE, k) for k in range(12)]).T.astype(np.float64)  # (12 pc, 12 scales)
CHANCE_DRAWS = 256  # random pitch-class draws for the chance level of in_key_share


def best_scales(hists: np.ndarray) -> np.ndarray:
    """Pitch-class weights (..., 12) (C = 0) -> (...,) the tonic of each one's best major scale,
    all at once (:func:`best_scale`'s choice, ties to the lowest tonic alike)."""
    return (np.asarray(hists, np.float64) @ SHARE_MATRIX).argmax(-1)


def chance_scale_share(weights: np.ndarray, draws: int = CHANCE_DRAWS, seed: int = 0) -> float:
    """Mean best-scale share of notes with these weights (k,) and uniformly random pitch classes."""
    w = np.asarray(weights, np.float64)
    if len(w) == 0 or w.sum() <= 0:
        return 1.0
    pcs = np.random.default_rng(seed).integers(0, 12, (draws, len(w)))
    hist = np.zeros((draws, 12))
    np.add.at(hist, (np.repeat(np.arange(draws), len(w)), pcs.reshape(-1)), np.tile(w, draws))
    return float(((hist @ SHARE_MATRIX).max(1) / w.sum()).mean())


def in_key_share(notes: np.ndarray) -> float:
    """Best-scale share of the note time above chance, (S - E) / (1 - E); 0 below MIN_KEY_NOTES notes."""
    if len(notes) < MIN_KEY_NOTES:
        return 0.0
    share = best_scale(pitch_class_histogram(notes))[1]
    chance = chance_scale_share(np.maximum(notes[:, 1] - notes[:, 0], 1e-3))
    return float((share - chance) / (1 - chance)) if chance < 1 else 0.0


def _scale_of(notes: np.ndarray) -> int | None:
    return best_scale(pitch_class_histogram(notes))[0] if len(notes) >= MIN_KEY_NOTES else None


def window_scales(notes: np.ndarray, seconds: float, window_s: float) -> list[int | None]:
    """Best scale of the notes starting in each consecutive window (None: too few notes)."""
    n = max(1, int(seconds // window_s))
    return [_scale_of(notes[(notes[:, 0] >= i * window_s) & (notes[:, 0] < (i + 1) * window_s)]) for i in range(n)]


def _agreement(scales: list[int | None]) -> float:
    pairs = list(zip(scales, scales[1:]))
    return float(np.mean([a is not None and a == b for a, b in pairs])) if pairs else float("nan")


def onset_events(notes: np.ndarray) -> np.ndarray:
    """Onset times (s) with chord notes (within CHORD_S of the previous onset) merged."""
    t = np.sort(notes[:, 0]) if len(notes) else np.zeros(0)
    if len(t) < 2:
        return t
    return t[np.concatenate([[True], np.diff(t) > CHORD_S])]


def pulse(notes: np.ndarray, seconds: float) -> float:
    """Notes (k, 4) of a clip of ``seconds`` -> the highest autocorrelation (lag 0 = 1) of its
    onset envelope at lags within PULSE_PERIODS_S; 0 below MIN_KEY_NOTES notes."""
    if len(notes) < MIN_KEY_NOTES:
        return 0.0
    n = int(np.ceil(seconds * PULSE_FPS)) + 1
    env = np.bincount(np.clip((notes[:, 0] * PULSE_FPS).astype(int), 0, n - 1), minlength=n).astype(np.float64)
    env = np.convolve(env, [0.25, 0.5, 0.25], "same")
    env -= env.mean()
    r = np.correlate(env, env, "full")[n - 1:]
    lo, hi = (int(round(p * PULSE_FPS)) for p in PULSE_PERIODS_S)
    return float(r[lo:hi + 1].max() / r[0]) if r[0] > 0 and lo < n else 0.0


def clip_measures(tr: Transcription) -> dict[str, float]:
    """Per-clip note measures (keys: NOTE_METRICS); 0 where a measure needs notes that are absent."""
    notes, seconds = tr.notes, max(tr.seconds, 1e-6)
    out = {"notes_per_s": len(notes) / seconds, "polyphony": 0.0, "pitch_range": 0.0, "in_key_share": 0.0,
           "ioi_median_s": 0.0, "ioi_cv": 0.0, "pulse": pulse(notes, seconds)}
    if len(notes):
        grid = np.zeros(int(np.ceil(seconds * FPS)) + 1)
        for a, b in (notes[:, :2] * FPS).astype(int):
            grid[a:max(b, a + 1)] += 1
        out["polyphony"] = float(grid[grid > 0].mean())
        out["pitch_range"] = float(np.ptp(notes[:, 2]))
        out["in_key_share"] = in_key_share(notes)
    ioi = np.diff(onset_events(notes))
    if len(ioi) >= 2:
        out["ioi_median_s"] = float(np.median(ioi))
        out["ioi_cv"] = float(ioi.std() / max(ioi.mean(), 1e-9))
    out["key_agreement_notes"] = _agreement(window_scales(notes, seconds, seconds / 2))
    windows = window_scales(notes, seconds, KEY_WINDOW_S)
    out["window_key_agreement"] = _agreement(windows) if len(windows) >= 2 else float("nan")
    return out


def clip_features(tr: Transcription, measures: dict[str, float] | None = None) -> np.ndarray:
    """(len(NOTE_FEATURES),) features of one clip for the note FD (finite for any clip)."""
    m = measures or clip_measures(tr)
    notes = tr.notes
    hist = pitch_class_histogram(notes)
    aligned = np.roll(hist, -best_scale(hist)[0])
    if len(notes):
        pitch, dur, amp = notes[:, 2], np.maximum(notes[:, 1] - notes[:, 0], 1e-3), notes[:, 3]
        stats = [pitch.mean(), pitch.std(), np.log(dur).mean(), amp.mean()]
    else:
        stats = [0.0, 0.0, np.log(1e-3), 0.0]
    post = tr.note if len(tr.note) else np.zeros((1, N_KEYS), np.float32)
    onset = tr.onset if len(tr.onset) else np.zeros((1, N_KEYS), np.float32)
    bands = [b.mean() for b in np.array_split(post, OCTAVE_BANDS, axis=1)]
    flux = float(np.abs(np.diff(post, axis=0)).mean()) if len(post) > 1 else 0.0
    f = [m["notes_per_s"], m["polyphony"], m["pitch_range"], stats[0], stats[1], m["in_key_share"],
         m["key_agreement_notes"], np.log(max(m["ioi_median_s"], 1e-2)), m["ioi_cv"], stats[2], stats[3],
         *aligned, *bands, float(onset.mean()), flux, float((post.max(1) > 0.5).mean())]
    return np.nan_to_num(np.asarray(f, np.float64))


@dataclass
class NoteSet:
    """Measures of one set: per-clip measures (dict of (n,) arrays), features (n, d), histograms."""

    measures: dict[str, np.ndarray]
    features: np.ndarray
    pc_histogram: np.ndarray  # (12,) of the whole set
    pc_aligned: np.ndarray  # (12,) mean of the clips' scale-aligned histograms


def pitch_class_seconds(transcriptions: list[Transcription]) -> np.ndarray:
    """(n, 12) seconds of note time per pitch class C..B of each clip: summed over any subset of
    clips and normalised, the subset's pitch-class histogram (as ``NoteSet.pc_histogram``)."""
    out = np.zeros((len(transcriptions), 12))
    for i, t in enumerate(transcriptions):
        h = pitch_class_histogram(t.notes)
        out[i] = h * (np.maximum(t.notes[:, 1] - t.notes[:, 0], 0).sum() if len(t.notes) else 0.0)
    return out


def split_groups(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random split of items into two halves that keeps every group (piece) whole: (n,) bool,
    True = half B. The groups go in a random order, each to the half holding fewer items so far."""
    ids, sizes = np.unique(groups, return_counts=True)
    in_b, count = [], [0, 0]
    for j in rng.permutation(len(ids)):
        half = int(count[1] < count[0])
        count[half] += int(sizes[j])
        if half:
            in_b.append(ids[j])
    return np.isin(groups, in_b)


def pc_js_repeats(real_seconds: np.ndarray, real_groups: np.ndarray, fake_seconds: np.ndarray,
                  repeats: int, seed: int = 0) -> dict:
    """The pitch-class JS floor and a fake set's JS over ``repeats`` splits of the real clips.

    ``real_seconds`` (n, 12) and ``fake_seconds`` (m, 12) from :func:`pitch_class_seconds`;
    ``real_groups`` (n,) the piece of each real clip. Each split (:func:`split_groups`, seeded
    ``seed``, ``seed + 1``, ...) puts whole pieces in halves A and B: floor = JS(B, A), fake =
    JS(fake, A). One split's floor swings by half its value or more (section 17 of
    docs/results.md: 0.0036 +- 0.0020 over 10 splits at 20 s), so a ratio to one draw mostly
    measures the draw. Keys: ``repeats``, ``floor`` / ``fake`` (lists), ``floor_mean``,
    ``floor_sd``, ``fake_mean``, ``fake_sd``, ``ratio`` (fake_mean / floor_mean).
    """
    floor, fake = [], []
    total_fake = fake_seconds.sum(0)
    for r in range(repeats):
        in_b = split_groups(real_groups, np.random.default_rng(seed + r))
        a = real_seconds[~in_b].sum(0)
        floor.append(js_divergence(real_seconds[in_b].sum(0), a))
        fake.append(js_divergence(total_fake, a))
    f, g = np.array(floor), np.array(fake)
    return {"repeats": int(repeats), "floor": f.tolist(), "fake": g.tolist(), "floor_mean": float(f.mean()),
            "floor_sd": float(f.std()), "fake_mean": float(g.mean()), "fake_sd": float(g.std()),
            "ratio": float(g.mean() / max(f.mean(), 1e-12))}


def measure_set(transcriptions: list[Transcription]) -> NoteSet:
    per = [clip_measures(t) for t in transcriptions]
    feats = np.stack([clip_features(t, m) for t, m in zip(transcriptions, per)])
    hists = [pitch_class_histogram(t.notes) for t in transcriptions]
    total = pitch_class_seconds(transcriptions).sum(0)
    aligned = [np.roll(h, -best_scale(h)[0]) for h in hists if h.sum() > 0]
    return NoteSet({k: np.array([p[k] for p in per], np.float64) for k in NOTE_METRICS}, feats,
                   total / total.sum() if total.sum() > 0 else total,
                   np.mean(aligned, 0) if aligned else np.zeros(12))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two histograms; 1 if either is empty."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return 1.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a, b):
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / b[nz])).sum())

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


@dataclass
class NotesReference:
    """Real half A, ready to compare sets with: standardisation and Gaussian of its note features."""

    reference: NoteSet
    center: np.ndarray
    scale: np.ndarray
    mu: np.ndarray
    cov: np.ndarray


def build_notes_reference(ref: NoteSet) -> NotesReference:
    center = ref.features.mean(0)
    scale = ref.features.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    return NotesReference(ref, center, scale, *gaussian((ref.features - center) / scale))


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else None


def compare_notes(ref: NotesReference, s: NoteSet) -> dict:
    """Set-level note measures of ``s`` against the reference (keys: SET_NOTE_KEYS)."""
    out: dict = {k: _mean(s.measures[k]) for k in NOTE_METRICS}
    out["pc_js"] = js_divergence(s.pc_histogram, ref.reference.pc_histogram)
    out["pc_js_aligned"] = js_divergence(s.pc_aligned, ref.reference.pc_aligned)
    z = (s.features - ref.center) / ref.scale
    out["fd_notes"] = frechet_from_moments(ref.mu, ref.cov, *gaussian(z))
    out["pc_histogram"] = s.pc_histogram.tolist()
    return out


def images_to_audio(images: np.ndarray, preset, stats, n_iter: int = 32, chunk: int = 32) -> np.ndarray:
    """Images (n, H, W) -> audio (n, preset.n_samples) by Griffin-Lim (peak-locked start)."""
    import torch

    from ..spectrogram import image_to_audio

    with torch.no_grad():
        return np.concatenate([image_to_audio(torch.as_tensor(images[i:i + chunk]), preset, stats,
                                              n_iter=n_iter).numpy() for i in range(0, len(images), chunk)])


def transcribe_images(images: np.ndarray, preset, stats, transcriber, n_iter: int = 32, progress: bool = False,
                      desc: str = "notes") -> list[Transcription]:
    """Images (n, H, W) -> Griffin-Lim audio -> one Transcription per clip."""
    from tqdm.auto import tqdm

    out: list[Transcription] = []
    step = 32
    with tqdm(total=len(images), desc=desc, unit="clip", disable=not progress, leave=False) as bar:
        for lo in range(0, len(images), step):
            audio = images_to_audio(images[lo:lo + step], preset, stats, n_iter)
            out += transcriber.transcribe(list(audio), preset.sample_rate)
            bar.update(len(audio))
    return out
