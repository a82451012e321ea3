"""PianoGAN: piano music GANs on STFT magnitude images."""

import importlib

from .config import PRESETS, Preset, get_preset
from .errors import PianoGANError

__version__ = "0.1.0"

# Names that need torch are imported on first use, so `pianogan --help` and the presets stay
# light (importing torch takes about a second).
_LAZY = {"griffin_lim": ".phase", "Stats": ".spectrogram", "audio_to_image": ".spectrogram",
         "image_to_audio": ".spectrogram", "PianoDataset": ".data.dataset"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'pianogan' has no attribute {name!r}")


__all__ = ["PRESETS", "Preset", "get_preset", "PianoGANError", "griffin_lim", "Stats",
           "audio_to_image", "image_to_audio", "PianoDataset"]
