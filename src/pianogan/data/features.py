"""Clips -> un-normalised log-magnitude images, and streaming dataset statistics.

Preparation stores ``to_image(log(|STFT| + eps))`` - the preset's resize applied to the
log-magnitude *before* normalisation - and :class:`pianogan.data.dataset.PianoDataset`
normalises when it reads. Why: the statistics are those of the whole training split, known only
after every file is done; storing un-normalised images lets each file be finished (and resumed)
on its own, adding files later only changes two numbers, and no second pass over the images is
needed. Normalisation ``(x - mean) / std`` commutes with the resize (its weights sum to 1); only
the ±clip_sigma clip happens after the resize instead of before, which differs only in pixels
where the clip is active.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import Preset
from ..spectrogram import Stats, audio_to_logmag, to_image


@dataclass
class RunningStats:
    """Count, mean and sum of squared deviations (m2) of a stream of values.

    Batches are summarised with ``torch.var_mean`` (float64 accumulation, result rounded to
    float32: ~1e-7 relative) and merged with Chan et al.'s pairwise update in float64, which
    avoids the cancellation of a running sum of squares over billions of values."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def merge(self, other: "RunningStats") -> "RunningStats":
        if other.count == 0:
            return self
        if self.count == 0:
            self.count, self.mean, self.m2 = other.count, other.mean, other.m2
            return self
        n = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / n
        self.m2 += other.m2 + delta * delta * self.count * other.count / n
        self.count = n
        return self

    def add(self, x: torch.Tensor) -> "RunningStats":
        """Add all values of a tensor."""
        n = x.numel()
        if n == 0:
            return self
        var, mean = torch.var_mean(x, correction=0)  # one pass; accumulates in float64 on CPU
        return self.merge(RunningStats(n, float(mean), float(var) * n))

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.count)) if self.count else 0.0

    def to_stats(self) -> Stats:
        return Stats(float(self.mean), self.std, int(self.count))

    def to_dict(self) -> dict:
        return {"count": int(self.count), "mean": float(self.mean), "m2": float(self.m2)}

    @classmethod
    def from_dict(cls, d: dict) -> "RunningStats":
        return cls(int(d["count"]), float(d["mean"]), float(d["m2"]))


def clip_batch_size(preset: Preset, budget_bytes: float = 8e6) -> int:
    """Clips per STFT batch so that one float32 spectrogram batch takes about ``budget_bytes``
    (the complex STFT and temporaries take ~6x that at the peak; cache-sized batches are fastest)."""
    per_clip = preset.n_freq * preset.n_frames * 4
    return int(max(1, min(32, budget_bytes // per_clip)))


def clips_to_images(clips: np.ndarray, preset: Preset) -> tuple[np.ndarray, RunningStats]:
    """(batch, preset.n_samples) audio -> (un-normalised images (batch, H, W) float16, statistics of
    log(|STFT| + eps) over all their STFT-grid values)."""
    with torch.no_grad():
        logmag = audio_to_logmag(torch.from_numpy(np.ascontiguousarray(clips, np.float32)), preset)
        stats = RunningStats().add(logmag)
        images = to_image(logmag, preset).numpy().astype(np.float16)
    return images, stats


def rms_db(clips: np.ndarray) -> np.ndarray:
    """RMS level of each clip (batch, samples) in dB relative to full scale (-inf for silence)."""
    rms = np.sqrt(np.mean(np.square(clips, dtype=np.float64), axis=-1))
    with np.errstate(divide="ignore"):
        return 20 * np.log10(rms)
