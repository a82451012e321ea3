"""Spectrogram presets: the one source of truth for every signal-processing number.

A :class:`Preset` fixes how a clip of audio becomes an image: sample rate (Hz),
STFT size and hop (samples), clip length (seconds), image size (pixels) and
the frequency axis (linear STFT bins or log-spaced rows). Presets are frozen
dataclasses, registered by name in :data:`PRESETS`; a JSON file with the same
fields (or a subset plus ``"base": NAME``) defines a custom one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from .errors import PianoGANError


@dataclass(frozen=True)
class Preset:
    name: str
    sample_rate: int  # Hz
    n_fft: int  # samples
    hop_length: int  # samples
    clip_seconds: float  # seconds
    image_height: int  # rows = frequency axis (low frequencies at row 0)
    image_width: int  # columns = time axis
    freq_scale: str = "linear"  # "linear" (STFT bins) or "log" (log-spaced rows)
    fmin: float = 27.5  # Hz, lowest row of a log-frequency axis (piano A0)
    eps: float = 1e-4  # log(mag + eps); magnitudes are of a Hann-windowed STFT
    clip_sigma: float = 3.0  # normalised values are clipped at ±clip_sigma, then / clip_sigma
    description: str = ""

    def __post_init__(self) -> None:
        if self.freq_scale not in ("linear", "log"):
            raise PianoGANError(f"preset {self.name!r}: freq_scale must be 'linear' or 'log'")
        if self.hop_length <= 0 or self.n_fft <= 0 or self.hop_length > self.n_fft:
            raise PianoGANError(f"preset {self.name!r}: need 0 < hop_length <= n_fft")
        if self.clip_seconds <= 0 or self.sample_rate <= 0:
            raise PianoGANError(f"preset {self.name!r}: clip_seconds and sample_rate must be > 0")

    @property
    def n_samples(self) -> int:
        """Samples in one clip."""
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def n_freq(self) -> int:
        """STFT frequency bins (n_fft // 2 + 1)."""
        return self.n_fft // 2 + 1

    @property
    def n_frames(self) -> int:
        """STFT frames of one clip (centred frames, as librosa.stft)."""
        return 1 + self.n_samples // self.hop_length

    def frames_for(self, seconds: float) -> int:
        """STFT frames of a piece of ``seconds`` (centred frames, as :attr:`n_frames`)."""
        return 1 + int(round(seconds * self.sample_rate)) // self.hop_length

    @property
    def image_shape(self) -> tuple[int, int]:
        return (self.image_height, self.image_width)

    @property
    def needs_resize(self) -> bool:
        return not (self.freq_scale == "linear" and (self.n_freq, self.n_frames) == self.image_shape)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preset":
        d = dict(d)
        base = d.pop("base", None)
        if base is not None:
            d = {**get_preset(base).to_dict(), **d}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise PianoGANError(f"unknown preset field(s): {', '.join(sorted(unknown))}")
        try:
            return cls(**d)
        except TypeError as e:  # missing fields
            raise PianoGANError(f"invalid preset: {e}") from None


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        # The paper's three.
        Preset("20s-512", 10_000, 1024, 256, 20.0, 512, 512,
               description="paper: 20 s at 10 kHz, 513x782 STFT resized to 512x512"),
        Preset("10s-256", 5_500, 512, 128, 10.0, 256, 256,
               description="paper: 10 s at 5.5 kHz, 257x430 STFT resized to 256x256"),
        Preset("22k-512", 22_050, 2048, 512, 20.0, 512, 512,
               description="paper: 20 s at 22.05 kHz, 1025x862 STFT resized to 512x512"),
        # Ours: the same 20 s at 10 kHz in exactly 512x512 STFT values, so nothing is resized
        # (n_fft 1022 -> 512 bins, hop 391 -> 512 frames). Best spectral convergence of the 20 s
        # presets after Griffin-Lim (see docs/spectrogram.md).
        Preset("20s-512-noresize", 10_000, 1022, 391, 20.0, 512, 512,
               description="20 s at 10 kHz, 512x512 STFT (n_fft 1022, hop 391), no resize"),
        # Long-form piano (issue 10): 10.2 s at 8 kHz in exactly 513x320 STFT values, nothing
        # resized. 7.8 Hz bins resolve semitones from ~130 Hz up (bass notes by their partials);
        # 31.25 frames/s; 320 = 5 * 2^6 columns for the time-convolutional models. Round trip of
        # real built-in clips (docs/results.md): SC -33.3 dB, against -20.3 dB for 10s-256, while
        # 160-256 log-frequency rows with the linear-interpolation inverse lose 5-8 dB SC.
        Preset("10s-8k", 8_000, 1024, 256, 10.208, 513, 320,
               description="long-form: 10.2 s at 8 kHz, 513x320 STFT (n_fft 1024, hop 256), no resize"),
        # Small enough to train on a CPU in minutes. (2.032 s would avoid the time resize, but
        # gains only ~0.5 dB SC - measured - and 2 s clips are what datasets and tests assume.)
        Preset("tiny", 8_000, 256, 128, 2.0, 64, 128,
               description="CPU demo: 2 s at 8 kHz, 129x126 STFT resized to 64x128"),
    ]
}


def register_preset(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


def read_json_file(path: Path, what: str):
    """The parsed content of a JSON file; a missing or unreadable file is a one-line error
    naming ``what`` (e.g. "preset file")."""
    if not path.is_file():
        raise PianoGANError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PianoGANError(f"cannot read {what} {path}: {e}") from None


def get_preset(name_or_path: str | Path | Preset) -> Preset:
    """A preset by registered name, or from a JSON file of its fields."""
    if isinstance(name_or_path, Preset):
        return name_or_path
    key = str(name_or_path)
    if key in PRESETS:
        return PRESETS[key]
    path = Path(key)
    if path.suffix == ".json":
        d = read_json_file(path, "preset file")
        if not isinstance(d, dict):
            raise PianoGANError(f"preset file {path}: expected a JSON object")
        d.setdefault("name", path.stem)
        return Preset.from_dict(d)
    raise PianoGANError(f"unknown preset {key!r}; choose from {', '.join(PRESETS)} or a .json file")
