"""PianoGAN: piano music GANs on STFT magnitude images."""

from .config import PRESETS, Preset, get_preset
from .errors import PianoGANError
from .phase import griffin_lim
from .spectrogram import Stats, audio_to_image, image_to_audio

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: the dataset module pulls in more than the signal-processing core needs.
    if name == "PianoDataset":
        from .data.dataset import PianoDataset

        return PianoDataset
    raise AttributeError(name)


__all__ = ["PRESETS", "Preset", "get_preset", "PianoGANError", "griffin_lim", "Stats",
           "audio_to_image", "image_to_audio", "PianoDataset"]
