"""Where the images to evaluate come from: a prepared dataset, generated images, audio files,
a trained generator, or white noise. Every source ends as images (n, H, W) in [-1, 1],
normalised with the *real* dataset's statistics.

Fake input (``pianogan evaluate --fake X``), checked in this order:

1. ``noise``: white-noise audio (:func:`pianogan.evaluate.core.white_noise_images`);
2. a ``.npy`` file, or a directory with ``images.npy`` (what ``pianogan generate`` writes):
   images (n, H, W) or (n, 1, H, W); if ``generated.json`` beside it has ``"stats"``, the images
   are renormalised from those statistics to the real dataset's;
3. a prepared dataset directory (``preset.json`` + ``manifest.csv``), e.g. a held-out split;
4. a training run directory (``generator.safetensors`` or ``checkpoints/``), a ``.pt`` checkpoint
   or a ``generator.safetensors``: n images are sampled with the EMA generator;
5. an audio file, or a directory of audio files (searched recursively): each file is resampled
   to the preset's rate and cut into consecutive clips of the preset's length as ``prepare``
   cuts it (:func:`pianogan.data.stream.split_clips`: the last partial clip is dropped; a file
   shorter than one clip is one zero-padded clip), each turned into an image with the real
   dataset's preset and statistics.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..audio import AUDIO_EXTENSIONS
from ..config import Preset
from ..errors import PianoGANError
from ..spectrogram import Stats

CHECKPOINT_SUFFIXES = (".pt", ".safetensors")


def renormalize(images: np.ndarray, preset: Preset, src: Stats, dst: Stats) -> np.ndarray:
    """Images normalised with ``src`` statistics -> the same log-magnitudes normalised with ``dst``."""
    if (src.mean, src.std) == (dst.mean, dst.std):
        return images
    import torch

    from ..spectrogram import denormalize, normalize

    logmag = denormalize(torch.as_tensor(images), src, preset.clip_sigma)
    return normalize(logmag, dst, preset.clip_sigma).numpy()


def load_images_npy(path: Path, preset: Preset, stats: Stats) -> np.ndarray:
    """``images.npy`` (n, H, W) or (n, 1, H, W) -> float32 (n, H, W), in the real set's normalisation."""
    try:
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise PianoGANError(f"{path}: cannot read images ({e})") from None
    images = np.asarray(images, np.float32)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise PianoGANError(f"{path}: expected images (n, H, W), got shape {images.shape}")
    meta = path.parent / "generated.json"
    if meta.is_file():
        try:
            info = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            info = {}
        if isinstance(info, dict) and isinstance(info.get("stats"), dict):
            images = renormalize(images, preset, Stats.from_dict(info["stats"]), stats)
    return images


def audio_files(root: Path) -> list[Path]:
    """Audio files under root (recursive), sorted by path."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def load_audio_clips(paths: list[Path], preset: Preset, stats: Stats, progress: bool = False) -> np.ndarray:
    """Audio files -> images (n, H, W): each file cut into consecutive clips of the preset's length."""
    import torch
    from tqdm.auto import tqdm

    from ..audio import load_audio
    from ..data.stream import pad_to_clips, split_clips
    from ..spectrogram import audio_to_image

    images = []
    for path in tqdm(paths, desc="audio -> images", unit="file", disable=not progress, leave=False):
        audio, _ = load_audio(path, sample_rate=preset.sample_rate)
        if len(audio) < preset.n_samples:
            audio = pad_to_clips(audio, preset.n_samples)  # a short file is one padded clip
        clips = split_clips(audio, preset.n_samples)
        images.append(audio_to_image(torch.from_numpy(clips), preset, stats).numpy())
    return np.concatenate(images) if images else np.zeros((0, *preset.image_shape), np.float32)


def is_run_or_checkpoint(path: Path) -> bool:
    if path.is_file():
        return path.suffix in CHECKPOINT_SUFFIXES
    return (path / "generator.safetensors").is_file() or (path / "checkpoints").is_dir()


def _load_generator(path: Path, device: str):
    """pianogan.train.checkpoint.load_generator, imported late (train is optional at import)."""
    from ..train.checkpoint import load_generator

    return load_generator(path, device=device, ema=True)


def sample_generator(G, n: int, seed: int = 0, batch_size: int = 64, device: str = "cpu",
                     progress: bool = False) -> np.ndarray:
    """n images (n, H, W) from generator G (``sample_z`` + forward), reproducible for (seed, n)."""
    import torch
    from tqdm.auto import tqdm

    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    # All latents drawn at once on the CPU: the same images for any batch size and device.
    z_all = G.sample_z(n, generator=gen)
    out = []
    with torch.no_grad(), tqdm(total=n, desc="generating", unit="clip", disable=not progress, leave=False) as bar:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            x = G(z_all[start:start + b].to(device))
            out.append(x.reshape(b, *x.shape[-2:]).float().cpu().numpy())
            bar.update(b)
    return np.concatenate(out) if out else np.zeros((0, 0, 0), np.float32)


def generator_sampler(path: Path, preset: Preset, stats: Stats, device: str = "cpu",
                      progress: bool = False) -> tuple:
    """(sample, info) of a run / checkpoint, loaded once: ``sample(n, seed)`` -> n images
    (n, H, W) from its EMA generator, in the real normalisation (reproducible for (n, seed))."""
    G, info = _load_generator(path, device)
    g_preset = info["preset"]
    if tuple(g_preset.image_shape) != tuple(preset.image_shape):
        h, w = g_preset.image_shape
        raise PianoGANError(f"{path}: the generator makes {h}x{w} images but the real dataset's preset "
                            f"{preset.name!r} has {preset.image_height}x{preset.image_width}")

    def sample(n: int, seed: int = 0) -> np.ndarray:
        images = sample_generator(G, n, seed=seed, device=device, progress=progress)
        return renormalize(images, preset, info["stats"], stats)

    return sample, {"model": info.get("model"), "step": info.get("step"), "checkpoint": str(info.get("path", path))}


def load_generated(path: Path, preset: Preset, stats: Stats, n: int, seed: int = 0, device: str = "cpu",
                   progress: bool = False) -> tuple[np.ndarray, dict]:
    """n images sampled from the EMA generator of a run / checkpoint, in the real normalisation."""
    sample, info = generator_sampler(path, preset, stats, device, progress)
    return sample(n, seed), info


def load_fake(spec: str, preset: Preset, stats: Stats, n: int | None = None, seed: int = 0,
              device: str = "cpu", progress: bool = False) -> tuple[np.ndarray | None, dict]:
    """Resolve ``--fake``: returns (images (m, H, W) or None for "noise", description dict).

    ``n`` is how many images to *sample* from a generator (other sources are read whole).
    """
    if spec == "noise":
        return None, {"fake_source": "noise", "fake_kind": "noise"}
    path = Path(spec)
    if not path.exists():
        raise PianoGANError(f"fake input not found: {path}")
    desc: dict = {"fake_source": str(path)}
    if path.is_file() and path.suffix == ".npy":
        return load_images_npy(path, preset, stats), {**desc, "fake_kind": "images"}
    if path.is_dir() and (path / "images.npy").is_file():
        return load_images_npy(path / "images.npy", preset, stats), {**desc, "fake_kind": "images"}
    if path.is_dir() and (path / "preset.json").is_file() and (path / "manifest.csv").is_file():
        from ..data.dataset import PianoDataset

        ds = PianoDataset(path)
        if ds.preset.image_shape != preset.image_shape:
            raise PianoGANError(f"{path}: dataset images are {ds.preset.image_height}x{ds.preset.image_width} "
                                f"but the real dataset's are {preset.image_height}x{preset.image_width}")
        return renormalize(ds.images(), preset, ds.stats, stats), {**desc, "fake_kind": "dataset"}
    if is_run_or_checkpoint(path):
        images, info = load_generated(path, preset, stats, n or 256, seed, device, progress)
        return images, {**desc, "fake_kind": "generator", **info}
    if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS:
        return load_audio_clips([path], preset, stats, progress), {**desc, "fake_kind": "audio", "files": 1}
    if path.is_dir():
        files = audio_files(path)
        if files:
            return load_audio_clips(files, preset, stats, progress), {**desc, "fake_kind": "audio",
                                                                        "files": len(files)}
        raise PianoGANError(f"{path}: no images.npy, audio files, dataset or checkpoint found")
    raise PianoGANError(f"{path}: not an images .npy, audio file or checkpoint (.pt/.safetensors)")
