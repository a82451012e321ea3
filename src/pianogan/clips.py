"""What generation makes: its settings, a generated clip, and the audio finishing shared by every
way of making one (fixed-length clips, chained pieces, any-length pieces)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import Preset
from .errors import PianoGANError
from .phase import DEFAULT_GL, GLSettings

RECORD_VERSION = 2  # 2: Griffin-Lim settings as "gl" (n_iter, momentum, init, seed); 1: random start
MAX_SECONDS = 3600.0  # longest piece: memory grows ~70 MB per 10 min (tiny preset), disk ~10 MB
MIN_TEMPO, MAX_TEMPO = 30.0, 300.0  # --tempo, beats a minute
MAX_RUBATO = 2.0  # --rubato, rms radians: at 1.0 the beat is already hard to hear (docs/results.md, section 23)


@dataclass(frozen=True)
class GenerateSettings:
    """How images become audio. Everything here is stored in each clip's record."""

    gl: GLSettings = DEFAULT_GL  # Griffin-Lim; a random start is seeded per clip (its gl_seed)
    seconds: float | None = None  # clip length (s); None = the model's clip length
    # truncation psi; None = the model's own (StyleGAN2: 1, off; longform: its config's
    # ``truncation``); DCGAN and SpecGAN ignore it
    truncation: float | None = None
    # longform: seconds between the global latent's anchors in a piece (0 = one key and
    # character throughout); None = the model's own (its config's ``drift_seconds``)
    drift: float | None = None
    key: str | None = None  # longform: put each piece in this key, e.g. "D minor" (pianogan.keys.parse_key)
    tempo: float | None = None  # longform with a beat clock: beats a minute; None = drawn per piece
    # longform with a beat clock: how far its beat wanders, rms radians (0 = strict); None = the
    # model's own (its config's ``clock_wander``)
    rubato: float | None = None
    mix_seed: int | None = None  # style mixing (StyleGAN2): clip i takes fine styles from seed mix_seed+i
    mixing_cutoff: int = 4  # style mixing: layers before this take the clip's own latent
    sample_rate: int | None = None  # output rate (Hz), soxr-resampled; None = the preset's rate
    denoise: bool = False  # spectral-gating noise reduction after phase retrieval
    overlap_seconds: float | None = None  # long pieces: crossfade length; None = min(1, clip/4)
    walk_steps: int = 3  # long pieces: clips between two random anchor latents
    peak: float = 0.99  # audio louder than this is scaled down to it (never scaled up)
    # the model's own sampling settings replaced for these clips, as (field, text) pairs: only
    # its family's SAMPLING_FIELDS (e.g. (("drop_clashes", "false"),)); () = the model's own
    model_settings: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.seconds is not None and not 0 < self.seconds <= MAX_SECONDS:
            raise PianoGANError(f"seconds must be > 0 and at most {MAX_SECONDS:g} ({self.seconds:g} "
                                "asked); make several pieces instead")
        if self.sample_rate is not None and self.sample_rate <= 0:
            raise PianoGANError("sample rate must be > 0")
        if self.drift is not None and not self.drift >= 0:
            raise PianoGANError(f"drift must be >= 0 seconds (0 = none), got {self.drift:g}")
        if self.tempo is not None and not MIN_TEMPO <= self.tempo <= MAX_TEMPO:
            raise PianoGANError(f"tempo must be {MIN_TEMPO:g}-{MAX_TEMPO:g} beats a minute, got {self.tempo:g}")
        if self.rubato is not None and not 0 <= self.rubato <= MAX_RUBATO:
            raise PianoGANError(f"rubato must be 0-{MAX_RUBATO:g} radians (0 = a strict beat), got {self.rubato:g}")
        if self.walk_steps < 1:
            raise PianoGANError("walk_steps must be >= 1")
        if self.overlap_seconds is not None and self.overlap_seconds < 0:
            raise PianoGANError("overlap_seconds must be >= 0")
        if self.key is not None:
            from .keys import parse_key

            parse_key(self.key)  # a bad name fails here, in one line

    def beat_options(self) -> list[str]:
        """The options asked that only a beat-clock model can take (``--tempo``, ``--rubato``)."""
        return [name for name, value in (("--tempo", self.tempo), ("--rubato", self.rubato)) if value is not None]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GenerateSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        if "model_settings" in kwargs:  # JSON lists back to the frozen tuples
            kwargs["model_settings"] = tuple((str(k), str(v)) for k, v in kwargs["model_settings"])
        if isinstance(d.get("gl"), dict):
            kwargs["gl"] = GLSettings(**d["gl"])
        else:  # a version-1 record: random start, its n_iter and momentum
            kwargs["gl"] = GLSettings(n_iter=int(d["n_iter"]), momentum=float(d["momentum"]), init="random")
        return cls(**kwargs)


@dataclass
class Clip:
    """One generated piece of audio and everything needed to make it again."""

    audio: np.ndarray  # (samples,) float32 at ``sample_rate``
    sample_rate: int  # Hz
    images: np.ndarray  # (k, H, W) float32 in [-1, 1]: the generator images it was made from
    magnitude: np.ndarray  # (freq, frames) linear |STFT| that Griffin-Lim inverted (preset rate)
    record: dict = field(default_factory=dict)


def _denoise(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    from .denoise import denoise

    return np.asarray(denoise(audio, sample_rate), dtype=np.float32)


def finish_audio(audio: np.ndarray, preset: Preset, settings: GenerateSettings
                 ) -> tuple[np.ndarray, int, float]:
    """Griffin-Lim output (samples,) at the preset rate -> (audio at the output rate, Hz, gain).

    Optional noise reduction, soxr resampling to exactly round(len * rate_out / rate_in)
    samples, then scaling down (never up) to ``settings.peak`` so the WAV does not clip.
    """
    from .audio import resample

    n_samples = len(audio)
    audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    sr = preset.sample_rate
    if settings.denoise:
        audio = _denoise(audio, sr)
    if settings.sample_rate and settings.sample_rate != sr:
        audio = resample(audio, sr, settings.sample_rate)
        want = int(round(n_samples * settings.sample_rate / sr))
        audio = np.pad(audio[:want], (0, max(0, want - len(audio))))
        sr = settings.sample_rate
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    gain = settings.peak / peak if peak > settings.peak else 1.0
    return (audio * gain).astype(np.float32), int(sr), float(gain)


def make_clip(audio: np.ndarray, preset: Preset, settings: GenerateSettings, images, mag: torch.Tensor,
          joins: list[int], overlap: int, trim: int) -> Clip:
    audio, sr, gain = finish_audio(audio, preset, settings)
    clip = Clip(audio, sr, np.asarray(images, np.float32), mag.cpu().numpy())
    hop_s = preset.hop_length / preset.sample_rate
    clip.record = {"joins_seconds": [round(f * hop_s, 6) for f in joins], "gain": gain,
                   "n_samples": int(len(audio)), "sample_rate": sr,
                   "overlap_frames": overlap, "trim_frames": trim}
    return clip
