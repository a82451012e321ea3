"""Measures of long pieces (60 s and more): key held across 10 s windows, and seams at block joins.

Images here are normalised magnitude images of *any* width: (n, F, T) or one (F, T), F = the
preset's STFT bins (no resize: the ``10s-8k`` kind of preset), T frames at ``hop / sample_rate``
seconds each. They are read with :func:`pianogan.pieces.frames_to_magnitude`, which keeps every
frame (``image_to_magnitude`` would squeeze a piece into one clip's frames).

- :func:`real_excerpts`: real long excerpts, consecutive clips of one piece joined on the STFT
  frame grid (clip k's last frame and clip k+1's first are the same instant);
- :func:`window_key_agreement`: Griffin-Lim -> basic-pitch notes -> best major scale of each
  consecutive :data:`~.notes.KEY_WINDOW_S` window; share of neighbouring windows with the same one;
- :func:`frame_flux`, :func:`flux_p99`, :func:`join_flux`: spectral flux per frame (nats) and how
  it behaves at block boundaries against real music's 99th percentile;
- :func:`piece_report`: all of it for a fake set and for real excerpts of the same length;
- :func:`piece_notes_report`: the note measures of :mod:`~.notes` (in-key share, notes per
  second, polyphony, key agreement of the halves, pitch-class divergence) on whole pieces (e.g.
  20 s), against real excerpts of the same length, with a real-vs-real floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from ..config import Preset
from ..errors import PianoGANError
from ..spectrogram import Stats
from . import notes as note_measures

if TYPE_CHECKING:
    from ..data.dataset import PianoDataset

OFFSET_TOL_S = 1e-3  # consecutive clips: offsets differ by one clip length within this
NOTES_GL_ITER = 32  # Griffin-Lim iterations before transcription (as `evaluate`)
PC_JS_REPEATS = 20  # splits of the real excerpts' pieces behind the pitch-class JS floor


def _as_batch(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, np.float32)
    x = x[None] if x.ndim == 2 else x
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise PianoGANError(f"expected images (n, H, W) or (H, W), got shape {np.shape(images)}")
    if not np.all(np.isfinite(x)):
        raise PianoGANError("images contain NaN or infinite values")
    return x


def edge_pad(preset: Preset) -> int:
    """Frames at each end of a clip whose centred STFT window reaches into the zero padding."""
    return math.ceil((preset.n_fft // 2) / preset.hop_length)


def _runs(dataset: PianoDataset, need: int) -> list[list[list[int]]]:
    """Per piece (same shard and source), the non-overlapping runs of ``need`` consecutive clips."""
    clip_s = dataset.preset.clip_seconds
    pieces: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for i, r in enumerate(dataset.rows):
        pieces.setdefault((r["shard"], r.get("source", "")), []).append((float(r["offset_seconds"]), i))
    out = []
    for key in sorted(pieces):
        runs, cur, prev = [], [], 0.0
        for offset, j in sorted(pieces[key]):
            if cur and abs(offset - prev - clip_s) > OFFSET_TOL_S:
                cur = []  # a gap: start again
            cur.append(j)
            prev = offset
            if len(cur) == need:
                runs.append(cur)
                cur = []
        if runs:
            out.append(runs)
    return out


def join_clips(clips: np.ndarray, preset: Preset) -> np.ndarray:
    """Consecutive clip images (k, F, W0) -> one image (F, k * (W0 - 1) + 1) on the frame grid.

    Each clip was a separate centred STFT, so the :func:`edge_pad` frames at either side of a
    join saw zero padding (a broadband "cut" in the data); the ``2 * pad - 1`` grid frames of a
    join are replaced by a linear interpolation (normalised log-magnitude) between the last
    clean frame before it and the first clean frame after it (96 ms at ``10s-8k``).
    """
    k, _, w0 = clips.shape
    pad = edge_pad(preset)
    stride = w0 - 1
    out = np.empty((clips.shape[1], k * stride + 1), np.float32)
    for i in range(k):
        out[:, i * stride:i * stride + w0] = clips[i]
    for i in range(1, k):
        lo, hi = i * stride - pad, i * stride + pad  # last clean frame before, first after
        t = (np.arange(1, hi - lo) / (hi - lo))[None]
        out[:, lo + 1:hi] = (1 - t) * clips[i - 1][:, stride - pad][:, None] + t * clips[i][:, pad][:, None]
    return out


def real_excerpts(dataset: PianoDataset, seconds: float = 60.0, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Real excerpts (n, F, preset.frames_for(seconds)) of ``seconds``: consecutive clips of one piece
    (same shard and source, offsets one clip length apart) joined by :func:`join_clips`.

    Excerpts do not overlap; the first ones come from as many different pieces as there are
    (round-robin over the pieces in a ``seed`` order), and each piece's excerpts come in a
    ``seed`` order too: taking every piece's first excerpt first made a small reference of
    openings, which hold their key more than music at large (20 s halves key agreement 0.70 on
    openings against 0.52 on excerpts from anywhere, docs/results.md, section 14). ``n`` None:
    all that exist. :func:`excerpt_runs` names the clips of each.
    """
    frames, _ = _excerpt_frames(dataset.preset, seconds)
    return _join_runs(dataset, excerpt_runs(dataset, seconds, n, seed), frames)


def excerpt_runs(dataset: PianoDataset, seconds: float = 60.0, n: int | None = None, seed: int = 0) -> list[list[int]]:
    """The clip indices of each of :func:`real_excerpts`' excerpts, in its order (no images read)."""
    _, need = _excerpt_frames(dataset.preset, seconds)
    picked = _round_robin(_runs(dataset, need), np.random.default_rng(seed))
    if n is not None:
        picked = picked[:n]
    if not picked or (n is not None and len(picked) < n):
        raise PianoGANError(f"{dataset.root}: {len(picked)} excerpts of {seconds:g} s ({need} consecutive "
                            f"clips of one piece){'' if n is None else f', {n} asked'}")
    return picked


def _excerpt_frames(preset: Preset, seconds: float) -> tuple[int, int]:
    """(frames of a ``seconds`` excerpt, consecutive clips it needs); refuses presets that cannot join."""
    if preset.needs_resize or preset.image_height != preset.n_freq:
        raise PianoGANError(f"preset {preset.name!r}: long excerpts need image rows = STFT bins, no resize")
    if preset.n_samples % preset.hop_length:
        raise PianoGANError(f"preset {preset.name!r}: a clip is not a whole number of hops; clips "
                            f"cannot be joined on one frame grid")
    frames = preset.frames_for(seconds)
    return frames, max(1, math.ceil((frames - 1) / (preset.n_frames - 1)))


def _round_robin(runs: list[list], rng: np.random.Generator) -> list:
    """Every piece's runs (any items) in a seeded order, taken one per piece per round, pieces in a seeded order."""
    order = rng.permutation(len(runs))
    runs = [[piece[j] for j in rng.permutation(len(piece))] for piece in runs]
    return [runs[p][r] for r in range(max((len(x) for x in runs), default=0)) for p in order if r < len(runs[p])]


def _join_runs(dataset: PianoDataset, picked: list[list[int]], frames: int) -> np.ndarray:
    return np.stack([join_clips(dataset.images(run), dataset.preset)[:, :frames] for run in picked])


class RealHalves(NamedTuple):
    """Real excerpts in two halves: images (n, F, T) and the piece (an index) of each excerpt."""

    a: np.ndarray
    b: np.ndarray
    pieces_a: np.ndarray
    pieces_b: np.ndarray
    disjoint: bool  # no piece in both halves (False: the dataset has one piece)


def real_excerpt_halves(dataset: PianoDataset, seconds: float, n: int, seed: int = 0) -> RealHalves:
    """Two sets of real excerpts (:func:`real_excerpts`' kind) *from disjoint pieces*, up to ``n`` each.

    The pieces are split in two, whole (:func:`~.notes.split_groups`, balanced by their runs);
    each half is then drawn round-robin over its own pieces. A generator's pieces share no piece
    with the reference half A, so the floor (B against A) must not either: halves cut from one
    round-robin list shared most pieces (with 141 pieces and 128 excerpts a half, 112 of B's 128
    came from A's pieces), which put the pitch-class JS floor at 0.0005, the spread of two
    excerpts of the *same* pieces, not of two sets of music (docs/results.md, section 17). With
    one piece only, ``disjoint`` is False and the halves split its excerpts.
    """
    frames, _ = _excerpt_frames(dataset.preset, seconds)
    runs = excerpt_half_runs(dataset, seconds, n, seed)
    return RealHalves(_join_runs(dataset, runs.a, frames), _join_runs(dataset, runs.b, frames), runs.pieces_a,
                      runs.pieces_b, runs.disjoint)


class HalfRuns(NamedTuple):
    """:class:`RealHalves` before the clips are joined: each excerpt as the list of its clips' indices."""

    a: list[list[int]]
    b: list[list[int]]
    pieces_a: np.ndarray
    pieces_b: np.ndarray
    disjoint: bool


def excerpt_half_runs(dataset: PianoDataset, seconds: float, n: int, seed: int = 0) -> HalfRuns:
    """:func:`real_excerpt_halves` without the images."""
    _, need = _excerpt_frames(dataset.preset, seconds)
    runs = _runs(dataset, need)
    rng = np.random.default_rng(seed)
    tagged = [[(p, r) for r in piece] for p, piece in enumerate(runs)]  # each run with its piece
    if len(runs) < 2:
        picked = _round_robin(tagged, rng)
        half = min(n, len(picked) // 2)
        halves, disjoint = (picked[:half], picked[half:2 * half]), False
    else:
        owner = np.repeat(np.arange(len(runs)), [len(p) for p in runs])  # the piece of each run
        in_b = set(owner[note_measures.split_groups(owner, rng)].tolist())
        halves = tuple(_round_robin([t for p, t in enumerate(tagged) if (p in in_b) == side], rng)[:n]
                       for side in (False, True))
        disjoint = True
    if min(len(h) for h in halves) < 2:
        raise PianoGANError(f"{dataset.root}: {len(halves[0])} + {len(halves[1])} real excerpts of {seconds:g} s "
                            f"in two halves; need at least 2 in each")
    a, b = ([r for _, r in h] for h in halves)
    return HalfRuns(a, b, np.array([p for p, _ in halves[0]], np.int64), np.array([p for p, _ in halves[1]], np.int64),
                    disjoint)


def excerpts_up_to(dataset: PianoDataset, seconds: float, n: int, seed: int = 0) -> np.ndarray:
    """:func:`real_excerpts`, ``n`` of them, or all there are when the dataset holds fewer."""
    frames, _ = _excerpt_frames(dataset.preset, seconds)
    return _join_runs(dataset, excerpt_runs_up_to(dataset, seconds, n, seed), frames)


def excerpt_runs_up_to(dataset: PianoDataset, seconds: float, n: int, seed: int = 0) -> list[list[int]]:
    """:func:`excerpts_up_to` without the images: the clip indices of each excerpt."""
    try:
        return excerpt_runs(dataset, seconds, n, seed)
    except PianoGANError:
        return excerpt_runs(dataset, seconds, None, seed)


def magnitude_frames(images: np.ndarray, preset: Preset, stats: Stats) -> torch.Tensor:
    """Images (n, F, T) or (F, T) -> linear |STFT| (n, F, T), every frame kept
    (:func:`pianogan.pieces.frames_to_magnitude`, image by image)."""
    from ..pieces import frames_to_magnitude

    x = torch.as_tensor(_as_batch(images))
    return torch.stack([frames_to_magnitude(img, preset, stats) for img in x])


def frame_flux(images: np.ndarray, preset: Preset, stats: Stats) -> np.ndarray:
    """Spectral flux (n, T) in nats: at frame t, the sum over bins of the positive part of
    log(|STFT| + eps)(t) - log(|STFT| + eps)(t - 1); frame 0 has none (0)."""
    x = _as_batch(images)
    out = np.zeros(x.shape[::2], np.float64)
    for i in range(len(x)):  # one piece at a time: bounded memory for long pieces
        lm = torch.log(magnitude_frames(x[i], preset, stats)[0] + preset.eps)
        out[i, 1:] = torch.diff(lm, dim=-1).clamp_min(0).sum(0).double().numpy()
    return out


def _inner(flux: np.ndarray, preset: Preset) -> np.ndarray:
    """Frame flux without the piece's first and last :func:`edge_pad` frames (+ frame 0)."""
    pad = edge_pad(preset)
    return flux[:, pad + 1:flux.shape[1] - pad]


def flux_p99(real_images: np.ndarray, preset: Preset, stats: Stats) -> float:
    """99th percentile (nats) of real music's frame flux, over all frames of all images (n, F, T)
    but the first and last :func:`edge_pad` of each."""
    inner = _inner(frame_flux(real_images, preset, stats), preset)
    if inner.size == 0:
        raise PianoGANError("images too short for a flux percentile")
    return float(np.percentile(inner, 99))


def boundary_frames(width: int, every: int | Sequence[int]) -> np.ndarray:
    """Boundary frame indices inside a piece of ``width`` frames: ``every`` an int k gives
    k, 2k, ... (frame b is the first frame of a new block); a sequence is taken as is."""
    if isinstance(every, (int, np.integer)):
        if every < 1:
            raise PianoGANError(f"block length must be at least 1 frame, got {every}")
        b = np.arange(int(every), width, int(every))
    else:
        b = np.asarray(sorted(int(x) for x in every), np.int64)
    return b[(b >= 1) & (b < width)]


def join_flux(images: np.ndarray, preset: Preset, stats: Stats, boundary_every_frames: int | Sequence[int],
              p99: float | None = None) -> dict:
    """Flux at block boundaries of images (n, F, T) against all their frames (and real p99).

    Keys: ``boundaries`` (frame indices), ``boundary_flux_mean`` / ``frame_flux_mean`` /
    ``frame_flux_median`` (nats), ``boundary_to_median`` (median boundary flux / median frame
    flux, ~1 for ordinary frames), ``boundary_rank`` (mean share of the piece's frames with less flux than a boundary:
    ~0.5 for boundaries that are ordinary frames, ~1 for seams); with ``p99`` also
    ``share_above_p99`` (boundary frames whose flux exceeds it), ``frame_share_above_p99`` (all
    the pieces' frames that do: the base rate a boundary is compared with, since a generator with
    louder attacks everywhere passes p99 at its joins more often without any seam) and
    ``max_ratio`` (largest boundary flux / p99). ``per_piece_share_above_p99`` (n,) lists the
    share per piece.
    """
    flux = frame_flux(images, preset, stats)
    b = boundary_frames(flux.shape[1], boundary_every_frames)
    if len(b) == 0:
        raise PianoGANError(f"no block boundary inside pieces of {flux.shape[1]} frames")
    inner = _inner(flux, preset)
    at = flux[:, b]
    ranks = [float((inner[i][None] < at[i][:, None]).mean()) for i in range(len(flux))]
    out = {"boundaries": b.tolist(), "boundary_flux_mean": float(at.mean()),
           "frame_flux_mean": float(inner.mean()), "frame_flux_median": float(np.median(inner)),
           "boundary_to_median": float(np.median(at) / max(np.median(inner), 1e-12)),
           "boundary_rank": float(np.mean(ranks))}
    if p99 is not None:
        out["p99"] = float(p99)
        out["share_above_p99"] = float((at > p99).mean())
        out["frame_share_above_p99"] = float(np.mean([(row > p99).mean() for row in inner]))
        out["max_ratio"] = float(at.max() / max(p99, 1e-12))
        out["per_piece_share_above_p99"] = (at > p99).mean(1).tolist()
    return out


def pieces_to_audio(images: np.ndarray, preset: Preset, stats: Stats, n_iter: int = NOTES_GL_ITER) -> np.ndarray:
    """Images (n, F, T) -> audio (n, (T - 1) * hop) by Griffin-Lim (the project's DEFAULT_GL with
    ``n_iter`` iterations, as `evaluate`), every frame kept."""
    from ..phase import griffin_lim

    x = _as_batch(images)
    mag = magnitude_frames(x, preset, stats)
    with torch.no_grad():
        audio = griffin_lim(mag, n_fft=preset.n_fft, hop_length=preset.hop_length, n_iter=n_iter,
                            length=(x.shape[-1] - 1) * preset.hop_length)
    return audio.numpy()


def transcribe_pieces(images: np.ndarray, preset: Preset, stats: Stats, transcriber, progress: bool = False,
                      desc: str = "notes") -> list:
    """Pieces (n, F, T) -> Griffin-Lim (every frame kept) -> one transcription each."""
    from tqdm.auto import tqdm

    x = _as_batch(images)
    out = []
    for i in tqdm(range(len(x)), desc=desc, unit="piece", disable=not progress, leave=False):
        out += transcriber.transcribe(list(pieces_to_audio(x[i:i + 1], preset, stats)), preset.sample_rate)
    return out


def window_key_agreement(images: np.ndarray, preset: Preset, stats: Stats, transcriber,
                         window_s: float = note_measures.KEY_WINDOW_S, progress: bool = False,
                         desc: str = "key windows") -> dict:
    """Share of neighbouring ``window_s`` windows of each piece (n, F, T) with the same best scale.

    Each piece: Griffin-Lim -> ``transcriber`` (basic-pitch) notes -> best major scale of the
    notes starting in each window (:func:`~.notes.window_scales`; None below MIN_KEY_NOTES notes,
    which never agrees). Keys: ``agreement`` (mean over pieces), ``per_piece`` (n,),
    ``windows_with_key`` (share of windows with enough notes for a scale), ``notes_per_s``,
    ``scales`` (per piece, the tonic 0..11 of each window or None), ``window_s``.
    """
    x = _as_batch(images)
    seconds = (x.shape[-1] - 1) * preset.hop_length / preset.sample_rate
    seconds += preset.hop_length / preset.sample_rate  # 30 s at hop 256 is 937.5 hops: count 3 windows
    if seconds < 2 * window_s:
        raise PianoGANError(f"pieces of {seconds:.1f} s hold fewer than two {window_s:g} s windows")
    scales, agree, nps = [], [], []
    for tr in transcribe_pieces(x, preset, stats, transcriber, progress, desc):
        s = note_measures.window_scales(tr.notes, seconds, window_s)
        scales.append(s)
        agree.append(note_measures._agreement(s))
        nps.append(len(tr.notes) / seconds)
    return {"agreement": float(np.mean(agree)), "per_piece": agree, "window_s": float(window_s),
            "windows_with_key": float(np.mean([v is not None for s in scales for v in s])),
            "notes_per_s": float(np.mean(nps)), "scales": scales}


def piece_report(dataset: PianoDataset, fake_long_images: np.ndarray, transcriber, block_frames: int | Sequence[int],
                 n_real: int | None = None, seed: int = 0, progress: bool = False) -> dict:
    """Window key agreement and join flux of fake pieces (n, F, T) beside real excerpts of the
    same length (``n_real``, default as many as fake, fewer if the dataset has fewer).

    The real excerpts are measured at the *same* boundary frames: there they are ordinary
    moments of music, so their ``share_above_p99`` is what a seamless generator scores (~0.01).
    ``transcriber`` None skips the key agreement. ``fake_long_images`` in the dataset's
    normalisation.
    """
    fake = _as_batch(fake_long_images)
    preset, stats = dataset.preset, dataset.stats
    if fake.shape[1] != preset.n_freq:
        raise PianoGANError(f"fake pieces have {fake.shape[1]} rows; the dataset's preset has {preset.n_freq} bins")
    frames = fake.shape[-1]
    seconds = (frames - 1) * preset.hop_length / preset.sample_rate
    real = excerpts_up_to(dataset, seconds, len(fake) if n_real is None else n_real, seed)[:, :, :frames]
    p99 = flux_p99(real, preset, stats)
    sets = {}
    for name, x in (("real", real), ("fake", fake)):
        entry = {"n": int(len(x)), "join_flux": join_flux(x, preset, stats, block_frames, p99)}
        if transcriber is not None:
            entry["window_key_agreement"] = window_key_agreement(x, preset, stats, transcriber,
                                                                 progress=progress, desc=f"key windows ({name})")
        sets[name] = entry
    return {"seconds": seconds, "frames": frames, "flux_p99_real": p99,
            "block_frames": block_frames if isinstance(block_frames, int) else list(block_frames),
            "sets": sets}


def piece_notes_report(dataset: PianoDataset, fake_images: np.ndarray, transcriber, n_real: int | None = None,
                       seed: int = 0, progress: bool = False) -> dict:
    """Note measures of fake pieces (n, F, T) against real excerpts of the same length.

    Real excerpts from two disjoint sets of pieces (:func:`real_excerpt_halves`, up to ``n_real``
    each, default n) are half A, the reference, and half B, which gives the real values and the
    floor of the divergences (pitch-class JS, note FD) that the fake set is compared with. Keys:
    ``seconds``, ``n_real`` (half A's size), ``n_real_b``, ``halves_disjoint``, ``n_fake``,
    ``sets`` {"real": half B vs A, "fake": fake vs A} (:func:`~.notes.compare_notes` keys), and
    with disjoint halves ``pc_js_repeats``: the pitch-class JS floor and the fake's over
    :data:`PC_JS_REPEATS` splits of the same transcribed pieces (:func:`~.notes.pc_js_repeats`).
    """
    fake = _as_batch(fake_images)
    preset, stats = dataset.preset, dataset.stats
    frames = fake.shape[-1]
    seconds = (frames - 1) * preset.hop_length / preset.sample_rate
    h = real_excerpt_halves(dataset, seconds, len(fake) if n_real is None else n_real, seed)
    tr = {name: transcribe_pieces(x[:, :, :frames], preset, stats, transcriber, progress, f"notes ({name})")
          for name, x in (("real A", h.a), ("real B", h.b), ("fake", fake))}
    ref = note_measures.build_notes_reference(note_measures.measure_set(tr["real A"]))
    out = {"seconds": seconds, "n_real": int(len(h.a)), "n_real_b": int(len(h.b)), "halves_disjoint": h.disjoint,
           "n_fake": int(len(fake))}
    if h.disjoint:  # the floor over many splits of the same transcribed pieces: one split is noisy
        seconds_of = note_measures.pitch_class_seconds
        out["pc_js_repeats"] = note_measures.pc_js_repeats(
            seconds_of(tr["real A"] + tr["real B"]), np.concatenate([h.pieces_a, h.pieces_b]),
            seconds_of(tr["fake"]), PC_JS_REPEATS, seed)
    return {**out,
            "sets": {"real": note_measures.compare_notes(ref, note_measures.measure_set(tr["real B"])),
                     "fake": note_measures.compare_notes(ref, note_measures.measure_set(tr["fake"]))}}
