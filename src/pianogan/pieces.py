"""Pieces from a generator that makes any length itself (the ``longform`` family): one latent of
the needed length, one forward pass, Griffin-Lim streamed in blocks."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .clips import Clip, GenerateSettings, make_clip
from .config import Preset
from .errors import PianoGANError
from .heap import trim


def frames_to_magnitude(image: torch.Tensor, preset: Preset, stats) -> torch.Tensor:
    """(F, T) image of any length T on the preset's STFT bins -> linear |STFT| (F, T).

    Unlike :func:`~pianogan.spectrogram.image_to_magnitude`, which maps an image back onto one
    clip's STFT grid (and would squeeze a 10-minute piece into one clip's frames), this keeps
    every frame: an any-length model's rows are the STFT bins themselves, nothing is resized.
    """
    from .spectrogram import normalized_to_magnitude

    if preset.needs_resize or image.shape[0] != preset.n_freq:
        raise PianoGANError(f"preset {preset.name!r}: any-length pieces need image rows = STFT bins")
    return normalized_to_magnitude(image, stats, preset.clip_sigma, preset.eps)


def is_native(G) -> bool:
    """Whether G makes any length itself (it says how many frames one local latent covers)."""
    return bool(getattr(getattr(G, "cfg", None), "frames_per_latent", None))


def style_index(G, style: str | None) -> int | None:
    """The label index of ``style`` for a conditional G (None: G picks from the latent)."""
    styles = tuple(getattr(getattr(G, "cfg", None), "styles", ()) or ())
    if style is None:
        return None
    if not styles:
        raise PianoGANError(f"--style {style}: this model is not conditioned on styles")
    if style not in styles:
        raise PianoGANError(f"unknown style {style!r}; this model knows {', '.join(styles)}")
    return styles.index(style)


def check_beat_clock(G, settings: GenerateSettings) -> None:
    """A one-line error if ``settings`` set the beat (``generate --tempo`` / ``--rubato``) of a G
    without a beat clock."""
    asked = settings.beat_options()
    if asked and not getattr(getattr(G, "cfg", None), "beat_clock", False):
        raise PianoGANError(f"{asked[0]}: this model has no beat clock to set (train it with the 'beat' config)")


def piece_latent(G, seed: int, frames: int) -> torch.Tensor:
    """The latent (1, z_dim) of piece ``seed`` with at least ``frames`` frames: enough local steps
    of ``G.cfg.frames_per_latent`` frames, drawn from its own seeded generator."""
    fpl = int(G.cfg.frames_per_latent)
    return G.sample_z(1, generator=torch.Generator().manual_seed(seed), n_local=-(-frames // fpl))


def native_pieces(G, info: dict, n: int, seed: int, seconds: float, settings: GenerateSettings,
                  style: str | None = None, device="cpu", progress=None) -> list[Clip]:
    """Pieces of ``seconds`` from a generator that makes any length itself (``G.frames_per_latent``,
    the ``longform`` family): one latent of the needed length per piece (seed ``seed + i``), one
    forward pass, then Griffin-Lim streamed in blocks, so memory stays bounded for long pieces."""
    frames = info["preset"].frames_for(seconds)
    clips = []
    for i in range(n):
        clips.append(native_piece(G, info, piece_latent(G, seed + i, frames), seed + i, seconds, settings,
                                  style, device))
        clips[-1].record["seed"] = seed + i
        if progress is not None:
            progress.update(1)
    return clips


def native_piece(G, info: dict, z: torch.Tensor, gl_seed: int, seconds: float, settings: GenerateSettings,
                 style: str | None = None, device="cpu") -> Clip:
    """One piece of ``seconds`` from latent ``z`` (1, z_dim) of an any-length G; Griffin-Lim seeded
    by ``gl_seed``. :func:`native_pieces` draws the latents; ``generate --from`` replays them."""
    from .phase_stream import griffin_lim_stream

    preset: Preset = info["preset"]
    frames = preset.frames_for(seconds)
    label = style_index(G, style)
    key = None
    if settings.key is not None:
        from .keys import parse_key

        if getattr(G.cfg, "head", None) != "notes":
            raise PianoGANError("--key: only a longform model with the 'notes' head can transpose what it plays")
        key = parse_key(settings.key)
    labels = None if label is None else torch.tensor([label], device=device)
    check_beat_clock(G, settings)
    beats = None if settings.tempo is None else G.default_beats(z.to(device), labels, bpm=settings.tempo)
    with torch.no_grad():
        image = G(z.to(device), labels, truncation_psi=settings.truncation, key=key,
                  drift_seconds=settings.drift, beats=beats, wander=settings.rubato)[0, 0, :, :frames].float().cpu()
    mag = frames_to_magnitude(image, preset, info["stats"])
    trim()  # the generator's buffers go back to the OS before Griffin-Lim's (heap.py)
    gl = dataclasses.replace(settings.gl, seed=gl_seed)
    audio = np.concatenate(list(griffin_lim_stream([mag], preset.n_fft, preset.hop_length, gl,
                                                   length=int(round(seconds * preset.sample_rate)))))
    clip = make_clip(audio, preset, settings, image.numpy()[None], mag, [], 0, 0)
    clip.record.update({"kind": "piece", "latents": z.tolist(),
                        "style": None if label is None else G.cfg.styles[label]})
    return clip
