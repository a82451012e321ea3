"""Compare sets of spectrogram images with a real reference set: FD, NDB/K, diversity, music, notes.

Everything works on normalised magnitude images (n, H, W) in [-1, 1] of one preset, read with
one set of normalisation statistics (:class:`pianogan.spectrogram.Stats`) - real data and
generator output alike, so no phase retrieval is needed.

:func:`evaluate_images` compares one set with a real set. :func:`run_evaluation` is the full
protocol: the real set is split into two disjoint halves A (the reference) and B; B, the fake
set and a white-noise set - all of the same size n, because the FD is biased by sample size -
are each compared with A. B gives the *floor* (what a perfect generator would score), white
noise the *ceiling*. With ``notes=True`` every set is also turned into audio (Griffin-Lim),
transcribed by a pretrained piano transcriber and measured note by note (:mod:`.notes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import Preset
from ..errors import PianoGANError
from ..spectrogram import Stats
from . import music
from . import notes as note_measures
from .features import (FEATURE_NAMES, FEATURE_SPACE, FEATURE_SPACE_DESCRIPTION, Descriptors, feature_groups,
                       image_descriptors)
from .frechet import frechet_by_group, frechet_from_moments, gaussian
from .ndb import assign, default_bins, kmeans, mean_pairwise_distance, ndb

FORMAT_VERSION = 2
# key_agreement / key_consistency of the chroma (music.key_metrics) are not reported: a stationary
# spectrum (an untrained generator) scores higher than real music on both (docs/evaluate.md).
REPORTED_MUSIC = ["key_clarity", "onset_density", "harmonic_share"]
SET_KEYS = ["n", "fd", "ndb", "ndb_k", "ndb_js", "mpd_features", "mpd_images", *REPORTED_MUSIC,
            *[f"{m}_std" for m in REPORTED_MUSIC], "key_histogram", "ndb_shares", "feature_mean", "fd_groups"]
NOTE_KEYS = note_measures.SET_NOTE_KEYS  # added to every set with notes=True
NOTES_GL_ITER = 32  # Griffin-Lim iterations before transcription (F1 flat from 16 on, docs/evaluate.md)


@dataclass
class Reference:
    """A real reference set, ready to compare others with: standardisation, Gaussian, NDB bins."""

    preset: Preset
    stats: Stats
    center: np.ndarray  # (d,) feature means of the reference
    scale: np.ndarray  # (d,) feature stds of the reference (1 where constant)
    mu: np.ndarray  # (d,) mean of the standardised features (0 by construction)
    cov: np.ndarray  # (d, d) covariance of the standardised features
    centres: np.ndarray  # (bins, d) k-means centres in the standardised space
    labels: np.ndarray  # (n,) bin of each reference clip
    alpha: float
    notes: note_measures.NotesReference | None = None  # with a transcriber: half A's note measures
    transcriber: object = field(default=None, repr=False)

    @property
    def bins(self) -> int:
        return len(self.centres)

    def standardise(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, np.float64) - self.center) / self.scale


def _check_images(images: np.ndarray, preset: Preset, what: str) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise PianoGANError(f"{what}: expected images (n, H, W), got shape {images.shape}")
    if tuple(images.shape[1:]) != preset.image_shape:
        h, w = images.shape[1:]
        raise PianoGANError(f"{what} images are {h}x{w} but preset {preset.name!r} makes "
                            f"{preset.image_height}x{preset.image_width} images")
    if not np.all(np.isfinite(images)):
        raise PianoGANError(f"{what}: images contain NaN or infinite values")
    return images


def build_reference(real: np.ndarray | Descriptors, preset: Preset, stats: Stats, bins: int | None = None,
                    alpha: float = 0.05, seed: int = 0, progress: bool = False,
                    batch_size: int = 32, transcriber=None, real_images: np.ndarray | None = None) -> Reference:
    """Reference from real images (n, H, W) (or their precomputed :class:`Descriptors`).

    ``transcriber`` (a :class:`pianogan.transcribe.Transcriber`): also transcribe the images
    (``real_images`` when ``real`` is Descriptors) for the note-level measures.
    """
    if isinstance(real, Descriptors):
        desc = real
    else:
        desc = image_descriptors(_check_images(real, preset, "real"), preset, stats, batch_size, progress,
                                 desc="features (real reference)")
    if len(desc) < 2:
        raise PianoGANError(f"need at least 2 real clips to compare with, got {len(desc)}")
    center = desc.features.mean(0)
    scale = desc.features.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    z = (desc.features - center) / scale
    mu, cov = gaussian(z)
    bins = default_bins(len(z)) if bins is None else int(bins)
    if not 2 <= bins <= len(z):
        raise PianoGANError(f"NDB bins must be between 2 and the number of real clips ({len(z)}), got {bins}")
    centres = kmeans(z, bins, seed=seed)
    notes_ref = None
    if transcriber is not None:
        images = real if real_images is None else real_images
        notes_ref = note_measures.build_notes_reference(_note_set(images, preset, stats, transcriber, progress,
                                                                  "notes (real reference)"))
    return Reference(preset, stats, center, scale, mu, cov, centres, assign(z, centres), float(alpha),
                     notes_ref, transcriber)


def _note_set(images: np.ndarray, preset: Preset, stats: Stats, transcriber, progress: bool,
              desc: str) -> note_measures.NoteSet:
    trs = note_measures.transcribe_images(images, preset, stats, transcriber, NOTES_GL_ITER, progress, desc)
    return note_measures.measure_set(trs)


def compare(ref: Reference, images: np.ndarray, desc: Descriptors | None = None, label: str = "fake",
            progress: bool = False, batch_size: int = 32) -> dict:
    """Metrics of one image set (n, H, W) against the reference (keys: ``SET_KEYS``)."""
    images = _check_images(images, ref.preset, label)
    if len(images) < 2:
        raise PianoGANError(f"{label}: need at least 2 clips, got {len(images)}")
    if desc is None:
        desc = image_descriptors(images, ref.preset, ref.stats, batch_size, progress, desc=f"features ({label})")
    z = ref.standardise(desc.features)
    labels = assign(z, ref.centres)
    nd = ndb(ref.labels, labels, ref.bins, ref.alpha)
    mu, cov = gaussian(z)
    out = {
        "n": int(len(images)),
        "fd": frechet_from_moments(ref.mu, ref.cov, mu, cov),
        "ndb": nd["ndb"],
        "ndb_k": nd["ndb_k"],
        "ndb_js": nd["ndb_js"],
        "mpd_features": mean_pairwise_distance(z),
        # RMS difference per pixel, in normalised image units ([-1, 1] images).
        "mpd_images": mean_pairwise_distance(images.reshape(len(images), -1)) / np.sqrt(images[0].size),
    }
    for m in REPORTED_MUSIC:
        out[m] = float(np.mean(desc.music[m]))
    for m in REPORTED_MUSIC:
        out[f"{m}_std"] = float(np.std(desc.music[m]))
    out["key_histogram"] = (np.bincount(desc.music["key"].astype(int), minlength=24) / len(images)).tolist()
    out["ndb_shares"] = nd["test_share"]
    out["feature_mean"] = z.mean(0).tolist()
    out["fd_groups"] = frechet_by_group(ref.mu, ref.cov, mu, cov, feature_groups())
    if ref.notes is not None:
        out.update(note_measures.compare_notes(ref.notes, _note_set(images, ref.preset, ref.stats, ref.transcriber,
                                                                    progress, f"notes ({label})")))
    return out


def evaluate_images(real: np.ndarray, fake: np.ndarray, preset: Preset, stats: Stats, *,
                    bins: int | None = None, alpha: float = 0.05, seed: int = 0, progress: bool = False,
                    batch_size: int = 32) -> dict:
    """Metrics of ``fake`` (m, H, W) against ``real`` (n, H, W) - one column of the report.

    Keys: ``SET_KEYS`` (documented in docs/evaluate.md) plus ``"bins"``. For a fair FD use
    m == n and compare with :func:`run_evaluation`'s floor; this function does no splitting.
    """
    ref = build_reference(real, preset, stats, bins, alpha, seed, progress, batch_size)
    return {**compare(ref, fake, label="fake", progress=progress, batch_size=batch_size), "bins": ref.bins}


def white_noise_images(n: int, preset: Preset, stats: Stats, seed: int = 0) -> np.ndarray:
    """(n, H, W) images of Gaussian white noise, scaled so that its mean log|STFT| is the data's."""
    import torch

    from ..spectrogram import audio_to_image, audio_to_logmag

    rng = np.random.default_rng(seed)
    audio = rng.standard_normal((n, preset.n_samples)).astype(np.float32)
    level = float(audio_to_logmag(torch.from_numpy(audio[:1]), preset).mean())
    audio *= np.float32(np.exp(stats.mean - level))
    return audio_to_image(torch.from_numpy(audio), preset, stats).numpy()


def _subset(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) == n else x[np.sort(rng.choice(len(x), n, replace=False))]


def run_evaluation(real: np.ndarray, fake: np.ndarray | None, preset: Preset, stats: Stats, *,
                   n: int | None = None, seed: int = 0, bins: int | None = None, alpha: float = 0.05,
                   noise: bool = True, out_dir=None, plot: bool = True, meta: dict | None = None,
                   progress: bool = True, batch_size: int = 32, notes: bool = False,
                   transcriber=None) -> dict:
    """The full protocol: real half B (floor), fake, white noise (ceiling), each vs real half A.

    ``real`` (N, H, W): the real clips; they are shuffled with ``seed`` and split into two disjoint
    halves of n clips. n = min(N // 2, len(fake), ``n``). ``fake`` may be None (floor and
    ceiling only). Returns the report dict (see docs/evaluate.md); with ``out_dir`` also writes
    ``metrics.json``, ``metrics.md`` and (``plot``) ``metrics.png`` there. ``notes``: add the
    note-level measures (:data:`NOTE_KEYS`) read by ``transcriber`` (default: a 2-thread
    :class:`pianogan.transcribe.Transcriber`).
    """
    real = _check_images(real, preset, "real")
    if fake is not None:
        fake = _check_images(fake, preset, "fake")
        if len(fake) < 2:
            raise PianoGANError(f"need at least 2 fake clips, got {len(fake)}")
    cap = len(real) // 2
    if fake is not None:
        cap = min(cap, len(fake))
    if n is not None:
        if n < 2:
            raise PianoGANError(f"--n must be at least 2, got {n}")
        cap = min(cap, n)
    if cap < 2:
        raise PianoGANError(f"the real set has {len(real)} clips; need at least 4 (two halves of 2)")
    n = cap
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real))
    half_a, half_b = real[np.sort(order[:n])], real[np.sort(order[n:2 * n])]
    if notes and transcriber is None:
        from ..transcribe import Transcriber

        transcriber = Transcriber()
    ref = build_reference(half_a, preset, stats, bins, alpha, seed, progress, batch_size,
                          transcriber=transcriber if notes else None)
    sets: dict[str, dict] = {"real": compare(ref, half_b, label="real (floor)", progress=progress,
                                             batch_size=batch_size)}
    if fake is not None:
        sets["fake"] = compare(ref, _subset(fake, n, rng), label="fake", progress=progress, batch_size=batch_size)
    if noise:
        sets["noise"] = compare(ref, white_noise_images(n, preset, stats, seed), label="noise (ceiling)",
                                progress=progress, batch_size=batch_size)
    report = {
        "format_version": FORMAT_VERSION,
        "feature_space": {"name": FEATURE_SPACE, "dim": len(FEATURE_NAMES),
                          "description": FEATURE_SPACE_DESCRIPTION, "features": FEATURE_NAMES},
        "settings": {"n": n, "n_real_total": int(len(real)), "n_fake_total": None if fake is None else int(len(fake)),
                     "seed": int(seed), "bins": ref.bins, "alpha": ref.alpha, "preset": preset.to_dict(),
                     "stats": stats.to_dict(), "chroma_band_hz": list(music.chroma_band(preset)),
                     "notes": bool(notes), **({"notes_gl_iter": NOTES_GL_ITER} if notes else {}),
                     **(meta or {})},
        "reference": {"ndb_shares": np.bincount(ref.labels, minlength=ref.bins).astype(float).tolist()},
        "sets": sets,
        "summary": summarise(sets),
    }
    report["reference"]["ndb_shares"] = [c / n for c in report["reference"]["ndb_shares"]]
    if out_dir is not None:
        from .report import write_report

        report["files"] = write_report(report, out_dir, plot=plot)
    return report


def summarise(sets: dict[str, dict]) -> dict:
    """Headline numbers; keys with "fake" only when a fake set was given, "noise" likewise.

    fd_score = (fd_fake - fd_floor) / (fd_noise - fd_floor): 0 = as close to real as real data
    is, 1 = as far as white noise. fd_ratio = fd_fake / fd_floor (1 = the floor; compare with the
    perturbed-real references of docs/evaluate.md); fd_notes_* likewise for the note FD.
    mpd_ratio = diversity of fake / diversity of real (~1 is right, ~0 is mode collapse).
    """
    floor = sets["real"]["fd"]
    out = {"fd_floor": floor, "ndb_k_floor": sets["real"]["ndb_k"]}
    notes_floor = sets["real"].get("fd_notes")
    if notes_floor is not None:
        out["fd_notes_floor"] = notes_floor
    if "noise" in sets:
        out["fd_noise"] = sets["noise"]["fd"]
        if notes_floor is not None:
            out["fd_notes_noise"] = sets["noise"]["fd_notes"]
    if "fake" in sets:
        fake = sets["fake"]
        out["fd_fake"] = fake["fd"]
        out["ndb_k_fake"] = fake["ndb_k"]
        out["mpd_ratio"] = fake["mpd_features"] / max(sets["real"]["mpd_features"], 1e-12)
        out["fd_ratio"] = fake["fd"] / max(floor, 1e-12)
        if notes_floor is not None:
            out["fd_notes_fake"] = fake["fd_notes"]
            out["fd_notes_ratio"] = fake["fd_notes"] / max(notes_floor, 1e-12)
        if "noise" in sets:
            span = sets["noise"]["fd"] - floor
            out["fd_score"] = (fake["fd"] - floor) / span if span > 0 else None
    return out
