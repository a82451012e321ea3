"""Per-clip audio descriptors computed from normalised magnitude images: the evaluation's feature space.

Why this space and not Inception/VGGish/CLAP embeddings: those need downloaded weights (PianoGAN
runs offline and downloads nothing), and ImageNet features of spectrogram images measure
picture texture rather than sound. Hand-made descriptors need no weights, are deterministic
across machines and library versions, are cheap on a CPU, and each dimension means something
(loudness per band, timbre, pitch classes, brightness, noisiness, onsets, rhythm, key), so a
large distance can be traced to what differs (``feature_mean`` in the report, the plot).

Each clip (image (H, W) in [-1, 1] -> |STFT| with the dataset's preset and statistics) gives
``FEATURE_NAMES`` (73 numbers):

- ``logmel_mean_00..15`` / ``logmel_std_00..15``: 16 mel bands (0 Hz..Nyquist), dB power,
  mean and standard deviation over time (spectral envelope, loudness and its movement);
- ``mfcc_std_01..12``: DCT-II of the log-mel frames, coefficients 1-12, std over time (how the
  timbre changes; their means are a linear map of the log-mel means, so they are left out);
- ``chroma_00..11``: pitch-class distribution C..B of the clip (sums to 1; see ``music``);
- ``centroid_*``, ``log_flatness_*``, ``rolloff_*``: spectral centroid (Hz), log10 flatness
  (noise ~ -0.5..0, tones << 0), 85% roll-off (Hz), each mean and std over time;
- ``onset_mean``, ``onset_std``, ``onset_density``: log-mel spectral flux and onsets/s;
- ``loudness_std`` and ``modulation_0.5-2Hz``..``modulation_8-16Hz``: std of the frame level (dB)
  and log power of its temporal modulation in four rate bands (phrasing, beats, trills);
- ``key_clarity``, ``key_consistency``, ``harmonic_share``: the musical measures of ``music``.

The FD standardises every feature with the *real* set's mean and std, so units do not matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..config import Preset
from ..spectrogram import Stats
from . import music

N_MELS = 16
N_MFCC = 12
MOD_BANDS = [(0.5, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0)]  # Hz, rates of the level envelope
FEATURE_SPACE = "audio-descriptors-v1"
FEATURE_SPACE_DESCRIPTION = (
    "73 per-clip audio descriptors computed from the magnitude (16-band log-mel mean and std, "
    "MFCC 1-12 std, chroma, spectral centroid/flatness/roll-off mean and std, onset strength and "
    "density, loudness modulation in 4 rate bands, key clarity, key consistency, harmonic share), "
    "standardised with the real reference set's mean and std. No downloaded weights: "
    "deterministic, CPU-cheap and interpretable per dimension.")


def _names() -> list[str]:
    names = [f"logmel_mean_{i:02d}" for i in range(N_MELS)]
    names += [f"logmel_std_{i:02d}" for i in range(N_MELS)]
    names += [f"mfcc_std_{i:02d}" for i in range(1, N_MFCC + 1)]
    names += [f"chroma_{p}" for p in music.PITCH_CLASSES]
    for f in ("centroid", "log_flatness", "rolloff"):
        names += [f"{f}_mean", f"{f}_std"]
    names += ["onset_mean", "onset_std", "onset_density", "loudness_std"]
    names += [f"modulation_{lo:g}-{hi:g}Hz" for lo, hi in MOD_BANDS]
    names += ["key_clarity", "key_consistency", "harmonic_share"]
    return names


FEATURE_NAMES: list[str] = _names()

# The descriptors by what they describe: the report gives the FD within each group, so a distance
# can be traced to loudness, timbre, pitch classes or rhythm. Each name belongs to the first group
# with one of its prefixes. (Within-group FDs leave out the covariance across groups: they do not
# add up to the total.)
FEATURE_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {  # key: (what it describes, name prefixes)
    "loudness_bands": ("loudness per band (log-mel means)", ("logmel_mean_",)),
    "loudness_movement": ("loudness movement per band (log-mel stds)", ("logmel_std_",)),
    "timbre_movement": ("timbre movement (MFCC stds)", ("mfcc_std_",)),
    "pitch_classes": ("pitch classes (chroma)", ("chroma_",)),
    "brightness_noise": ("brightness and noise (centroid, flatness, roll-off, harmonic share)",
                         ("centroid_", "log_flatness_", "rolloff_", "harmonic_share")),
    "onsets": ("onsets (flux and density)", ("onset_",)),
    "dynamics": ("dynamics (level spread and modulation)", ("loudness_std", "modulation_")),
    "key": ("key (clarity and consistency)", ("key_",)),
}


def feature_groups(names: list[str] = FEATURE_NAMES) -> dict[str, list[int]]:
    """{group: indices into ``names``} of :data:`FEATURE_GROUPS`, in its order; every name is in
    exactly one group."""
    out: dict[str, list[int]] = {g: [] for g in FEATURE_GROUPS}
    for i, name in enumerate(names):
        group = next((g for g, (_, prefixes) in FEATURE_GROUPS.items() if name.startswith(prefixes)), None)
        if group is None:
            raise ValueError(f"descriptor {name!r} is in no FEATURE_GROUPS group")
        out[group].append(i)
    return out


@dataclass
class Descriptors:
    """Features (n, len(FEATURE_NAMES)) and per-clip music measures (each (n,)) of one set."""

    features: np.ndarray
    music: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.features)


@lru_cache(maxsize=8)
def mel_filters(sample_rate: int, n_fft: int) -> np.ndarray:
    """(N_MELS, n_fft // 2 + 1) mel filters over 0 Hz..Nyquist: the bands of ``logmel_*`` (and of
    the longform generator's loudness-movement term, losses/movement.py)."""
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=N_MELS,
                               fmin=0.0, fmax=sample_rate / 2).astype(np.float32)


def _modulation(level_db: np.ndarray, preset: Preset) -> np.ndarray:
    """(batch, frames) frame level in dB -> (batch, len(MOD_BANDS)) log10 modulation power."""
    frame_rate = preset.sample_rate / preset.hop_length
    x = level_db - level_db.mean(-1, keepdims=True)
    x = x * np.hanning(x.shape[-1])[None]
    power = np.abs(np.fft.rfft(x, axis=-1)) ** 2 / x.shape[-1]
    rates = np.fft.rfftfreq(x.shape[-1], d=1.0 / frame_rate)
    out = []
    for lo, hi in MOD_BANDS:
        sel = (rates >= lo) & (rates < hi)
        out.append(power[:, sel].sum(-1) if sel.any() else np.zeros(len(x)))
    return np.log10(np.stack(out, axis=-1) + 1e-6)


def magnitude_descriptors(mag: np.ndarray, preset: Preset) -> Descriptors:
    """|STFT| (batch, freq, frames) -> :class:`Descriptors` of the batch."""
    import librosa
    import scipy.fft

    mag = np.asarray(mag, np.float32)
    sr, n_fft = preset.sample_rate, preset.n_fft
    mel_db = librosa.power_to_db(np.einsum("mf,nft->nmt", mel_filters(sr, n_fft), mag ** 2),
                                 ref=1.0, amin=1e-10, top_db=None)  # absolute dB: keeps loudness
    mfcc = scipy.fft.dct(mel_db, type=2, axis=1, norm="ortho")[:, 1:N_MFCC + 1]
    centroid = librosa.feature.spectral_centroid(S=mag, sr=sr, n_fft=n_fft)[:, 0]
    flatness = np.log10(librosa.feature.spectral_flatness(S=mag, amin=1e-10)[:, 0] + 1e-10)
    rolloff = librosa.feature.spectral_rolloff(S=mag, sr=sr, n_fft=n_fft, roll_percent=0.85)[:, 0]
    onset_env = librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=preset.hop_length)
    level_db = librosa.power_to_db((mag.astype(np.float64) ** 2).mean(axis=1), ref=1.0, amin=1e-10,
                                   top_db=None)
    keys = music.key_metrics(mag, preset)
    mus = {
        "key": keys["key"],
        "key_clarity": keys["key_clarity"],
        "key_agreement": keys["key_agreement"],
        "key_consistency": keys["key_consistency"],
        "onset_density": music.onset_density(onset_env, preset),
        "harmonic_share": music.harmonic_share(mag, preset),
    }
    cols = [mel_db.mean(-1), mel_db.std(-1), mfcc.std(-1), keys["chroma_mean"]]
    for x in (centroid, flatness, rolloff):
        cols += [x.mean(-1, keepdims=True), x.std(-1, keepdims=True)]
    cols += [onset_env.mean(-1, keepdims=True), onset_env.std(-1, keepdims=True),
             mus["onset_density"][:, None], level_db.std(-1, keepdims=True), _modulation(level_db, preset)]
    cols += [mus["key_clarity"][:, None], mus["key_consistency"][:, None], mus["harmonic_share"][:, None]]
    feats = np.concatenate([np.asarray(c, np.float64) for c in cols], axis=1)
    assert feats.shape[1] == len(FEATURE_NAMES)
    return Descriptors(np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0), mus)


def image_descriptors(images: np.ndarray, preset: Preset, stats: Stats, batch_size: int = 32,
                      progress: bool = False, desc: str = "features") -> Descriptors:
    """Images (n, H, W) in [-1, 1] -> :class:`Descriptors`, in batches (tqdm bar on stderr)."""
    from tqdm.auto import tqdm

    from ..spectrogram import image_to_magnitude

    images = np.asarray(images, np.float32)
    parts: list[Descriptors] = []
    with tqdm(total=len(images), desc=desc, unit="clip", disable=not progress, leave=False) as bar:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            parts.append(magnitude_descriptors(image_to_magnitude(batch, preset, stats).numpy(), preset))
            bar.update(len(batch))
    if not parts:
        return Descriptors(np.zeros((0, len(FEATURE_NAMES))), {k: np.zeros(0) for k in
                                                                ["key", *music.MUSIC_METRICS]})
    return Descriptors(np.concatenate([p.features for p in parts]),
                       {k: np.concatenate([p.music[k] for p in parts]) for k in parts[0].music})
