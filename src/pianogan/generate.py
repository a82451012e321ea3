"""Generation: latents -> generator images -> magnitudes -> audio, reproducibly.

Three kinds of clip (``Clip.record["kind"]``):

* ``"sample"``: one latent, one image of the model's clip length (or shorter) -> one Griffin-Lim.
* ``"long"``: ``seconds`` longer than the model's clip. A chain of latents along a smooth path
  (slerp / lerp between random anchor latents every ``walk_steps`` clips) gives overlapping
  clip images. Their *magnitudes* (linear |STFT|, on the preset's STFT grid) are joined with an
  equal-power crossfade over ``overlap_seconds`` (power = (1-t)·a² + t·b²) and inverted as one
  magnitude by :func:`pianogan.phase_stream.griffin_lim_stream` (block by block, in bounded
  memory, phase carried across block borders), so there are no clicks at the clip joins; the
  result is cut to exactly ``seconds`` (at most :data:`MAX_SECONDS`).
* ``"interpolation"``: ``k`` clips along the path between the latents of two seeds (slerp for a
  normal latent, lerp for a uniform one).

Every clip is made from its own seeds (latent seed, Griffin-Lim seed) and its record carries the
latent(s) and every setting, so :func:`regenerate` makes it again without the other clips
(generator images are batched; results agree with a batch-of-one run to float rounding).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from .chain import chain_length, edge_frames, magnitude_blocks, overlap_frames
from .clips import MAX_SECONDS, RECORD_VERSION, Clip, GenerateSettings, finish_audio, make_clip  # noqa: F401
from .config import Preset
from .errors import PianoGANError
from .pieces import check_beat_clock, is_native, native_piece, native_pieces
from .spectrogram import Stats


# --------------------------------------------------------------------------- latents

def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of (z_dim,) vectors; the norm is interpolated linearly.

    For N(0, I) latents this stays on the typical shell, where lerp would pass through the
    low-norm centre that the generator never saw in training.
    """
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return (1 - t) * a + t * b
    ua, ub = a / na, b / nb
    omega = torch.arccos((ua * ub).sum().clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:
        return (1 - t) * a + t * b
    s = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) / s) * ua + (torch.sin(t * omega) / s) * ub
    return direction * ((1 - t) * na + t * nb)


def interpolate_latent(G, a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Point ``t`` in [0, 1] on the path a -> b: slerp for a normal latent, lerp for uniform."""
    if getattr(G, "latent", "normal") == "uniform":
        return (1 - t) * a + t * b  # the box is convex: lerp stays inside it
    return slerp(a, b, t)


def draw_latents(G, seed: int, n: int) -> torch.Tensor:
    """(n, z_dim) float32 CPU latents drawn from G's own latent distribution with ``seed``."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    z = G.sample_z(n, generator=g, device="cpu")
    return torch.as_tensor(z, dtype=torch.float32).detach().cpu()


def chain_latents(G, seed: int, n_clips: int, walk_steps: int) -> torch.Tensor:
    """(n_clips, z_dim): a smooth walk through random anchors, one anchor every walk_steps clips.

    Neighbouring clips are close in latent space (similar loudness and timbre, so the joins are
    smooth) while the piece still moves on to new material every ``walk_steps`` clips.
    """
    n_anchors = 1 + math.ceil(max(n_clips - 1, 0) / walk_steps)
    anchors = draw_latents(G, seed, n_anchors + 1)
    out = [interpolate_latent(G, anchors[k // walk_steps], anchors[k // walk_steps + 1],
                              (k % walk_steps) / walk_steps) for k in range(n_clips)]
    return torch.stack(out)


# --------------------------------------------------------------------------- images

@torch.no_grad()
def render_images(G, z: torch.Tensor, truncation: float | None = None, batch_size: int = 16,
                  device: str | torch.device = "cpu", progress=None, mix_z: torch.Tensor | None = None,
                  mixing_cutoff: int = 4) -> np.ndarray:
    """Latents (n, z_dim) -> images (n, H, W) float32 in [-1, 1] on the CPU, in batches.

    ``truncation``: psi passed to G, None = the model's own default.
    ``mix_z`` (n, z_dim), optional: style mixing (StyleGAN2) - layers from ``mixing_cutoff`` on
    take their styles from ``mix_z``. ``progress`` is an optional tqdm bar, advanced by the batch size.
    """
    out = []
    for start in range(0, len(z), max(1, batch_size)):
        zb = z[start:start + batch_size].to(device)
        kwargs = {}
        if mix_z is not None:
            kwargs = {"mix_z": mix_z[start:start + batch_size].to(device),
                      "mixing_cutoff": int(mixing_cutoff)}
        if truncation is not None:
            kwargs["truncation_psi"] = float(truncation)
        x = G(zb, **kwargs)
        out.append(x.float().clamp(-1, 1)[:, 0].cpu().numpy())
        if progress is not None:
            progress.update(len(zb))
    if not out:
        return np.zeros((0, *tuple(G.image_shape)), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- audio

def initial_phase(shape: tuple[int, int], seed: int) -> torch.Tensor:
    """(freq, frames) uniform random start phase (radians) of one clip, from its own seed.

    The same draw as ``griffin_lim(..., seed=seed)`` makes for a batch of one, so a clip's audio
    does not depend on which other clips shared its Griffin-Lim batch.
    """
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.rand((1, *shape), generator=g, dtype=torch.float32)[0] * (2 * math.pi)


def _long_clip(images: np.ndarray, preset: Preset, stats: Stats, seconds: float,
               settings: GenerateSettings, gl_seed: int, overlap: int, trim: int) -> Clip:
    """One chained piece: magnitude blocks -> streamed Griffin-Lim (CPU), in bounded memory."""
    from .phase_stream import griffin_lim_stream

    joins: list[int] = []
    kept: list[torch.Tensor] = []  # the magnitude, for the spectrogram PNG

    def blocks():
        for block in magnitude_blocks(images, preset, stats, seconds, overlap, trim, joins):
            kept.append(block.cpu())
            yield kept[-1]

    gl = dataclasses.replace(settings.gl, seed=gl_seed)
    n_samples = int(round(seconds * preset.sample_rate))
    audio = np.concatenate(list(griffin_lim_stream(blocks(), preset.n_fft, preset.hop_length, gl,
                                                   length=n_samples)))
    return make_clip(audio, preset, settings, images, torch.cat(kept, dim=1), joins, overlap, trim)


def images_to_clips(groups: list[np.ndarray], preset: Preset, stats: Stats, seconds: float,
                    settings: GenerateSettings, gl_seeds: list[int], device="cpu",
                    overlap: int | None = None, trim: int | None = None, batch_size: int = 16,
                    progress=None) -> list[Clip]:
    """Clip images, one (k, H, W) group per output clip -> Clips of ``seconds`` (chained if k > 1).

    Single clips run Griffin-Lim batched (``batch_size`` at a time, all of one length), each
    from its own start (a ``"random"`` start from :func:`initial_phase` of its seed, so a clip
    does not depend on its batch); chained pieces are streamed one by one (:func:`_long_clip`).
    ``overlap`` / ``trim`` (frames) default to :func:`overlap_frames` / :func:`edge_frames`; a
    record passes the values it was made with. Each Clip's record holds only what this step
    measured (joins, gain, length, rate, frames); :func:`generate` adds the rest.
    """
    from .phase import griffin_lim

    n_samples = int(round(seconds * preset.sample_rate))
    overlap = overlap_frames(preset, settings.overlap_seconds) if overlap is None else int(overlap)
    trim = edge_frames(preset) if trim is None else int(trim)
    gl = settings.gl
    clips: list[Clip | None] = [None] * len(groups)
    single = [i for i, g in enumerate(groups) if len(g) == 1]
    for i, g in enumerate(groups):
        if len(g) != 1:
            clips[i] = _long_clip(g, preset, stats, seconds, settings, gl_seeds[i], overlap, trim)
            if progress is not None:
                progress.update(1)
    for start in range(0, len(single), max(1, batch_size)):
        part = single[start:start + batch_size]
        mags = torch.stack([torch.cat(list(magnitude_blocks(torch.as_tensor(groups[i]).to(device),
                                                            preset, stats, seconds, overlap, trim)), 1)
                            for i in part])
        init = gl.init
        if init == "random":
            init = torch.stack([initial_phase(tuple(mags.shape[1:]), gl_seeds[i]) for i in part]).to(device)
        y = griffin_lim(mags, n_fft=preset.n_fft, hop_length=preset.hop_length, n_iter=gl.n_iter,
                        momentum=gl.momentum, length=n_samples, init=init)
        y = y.detach().float().cpu().numpy()
        for j, i in enumerate(part):
            clips[i] = make_clip(y[j], preset, settings, groups[i], mags[j], [], overlap, trim)
            if progress is not None:
                progress.update(1)
    return clips


# --------------------------------------------------------------------------- the whole job

def _model_record(info: dict) -> dict:
    record = {"checkpoint": str(Path(info.get("path", "")).resolve()) if info.get("path") else None,
              "step": int(info.get("step", 0)), "model": info.get("model"),
              "preset": info["preset"].name}
    if info.get("pretrained"):  # a shipped model: its name and hash say exactly which weights played
        record.update(pretrained=info["pretrained"], sha256=info.get("sha256"))
    return record


def configured(G, info: dict, settings: GenerateSettings):
    """G itself, or with ``settings.model_settings`` a shallow copy whose config has those sampling
    fields replaced (the weights are shared; G is left as it was, for a server that keeps it). A
    field that is not one of the family's sampling settings is a one-line error."""
    if not settings.model_settings:
        return G
    from .pretrained import with_settings

    out = copy.copy(G)
    out.cfg = with_settings(G.cfg, str(info.get("model")), dict(settings.model_settings))
    return out


def generate(G, info: dict, n: int = 8, seed: int = 0, settings: GenerateSettings | None = None,
             interpolate: int | None = None, to_seed: int | None = None, batch_size: int = 16,
             device: str | torch.device = "cpu", progress: bool = True,
             style: str | None = None) -> list[Clip]:
    """Make ``n`` clips (or ``interpolate`` clips between ``seed`` and ``to_seed``).

    A generator that makes any length itself (the ``longform`` family) makes each piece in one
    pass (:func:`native_pieces`), conditioned on ``style`` when given.

    G, info: from :func:`pianogan.train.checkpoint.load_generator`. Clip i of a plain run uses
    seed ``seed + i`` for its latent(s) and its Griffin-Lim start phase, so ``n=4`` gives the first
    four clips of ``n=8``. With ``interpolate=K`` every clip has latent seed ``seed`` -> ``to_seed``
    (default ``seed + 1``) at t = i / (K - 1) and Griffin-Lim seed ``seed + i``.
    Returns clips whose ``record`` holds everything :func:`regenerate` needs.
    """
    from tqdm.auto import tqdm

    settings = settings or GenerateSettings()
    G = configured(G, info, settings)
    preset: Preset = info["preset"]
    stats: Stats = info["stats"]
    seconds = float(settings.seconds or preset.clip_seconds)
    if is_native(G):
        if interpolate is not None:
            raise PianoGANError("--interpolate is for fixed-length models; this one makes any length")
        if n < 1:
            raise PianoGANError("--n must be >= 1")
        check_beat_clock(G, settings)  # before the progress bar starts
        G = G.to(device).eval()
        with tqdm(total=n, desc="generate", unit="piece", disable=not progress) as bar:
            clips = native_pieces(G, info, n, seed, seconds, settings, style, device, bar)
        for i, clip in enumerate(clips):
            clip.record = {"format_version": RECORD_VERSION, "index": i, "gl_seed": seed + i,
                           "seconds": seconds, **clip.record, **_model_record(info),
                           "settings": settings.to_dict(), "device": str(device)}
        return clips
    if style is not None:
        raise PianoGANError(f"--style: the {info.get('model')} generator is not conditioned on styles")
    if settings.key is not None:
        raise PianoGANError(f"--key: the {info.get('model')} generator plays no notes to transpose")
    if settings.beat_options():
        raise PianoGANError(f"{settings.beat_options()[0]}: the {info.get('model')} generator has no beat clock")
    if interpolate is not None:
        if interpolate < 1:
            raise PianoGANError("--interpolate needs K >= 1")
        if seconds > preset.clip_seconds:
            raise PianoGANError("--interpolate makes clips of the model's length; drop --seconds")
        to_seed = seed + 1 if to_seed is None else to_seed
        a, b = draw_latents(G, seed, 1)[0], draw_latents(G, to_seed, 1)[0]
        ts = [i / (interpolate - 1) if interpolate > 1 else 0.0 for i in range(interpolate)]
        latents = [interpolate_latent(G, a, b, t)[None] for t in ts]
        extra = [{"kind": "interpolation", "seed": seed, "to_seed": to_seed, "t": t} for t in ts]
        n = interpolate
    else:
        if n < 1:
            raise PianoGANError("--n must be >= 1")
        k = chain_length(preset, seconds, settings.overlap_seconds)
        latents = [chain_latents(G, seed + i, k, settings.walk_steps) if k > 1
                   else draw_latents(G, seed + i, 1) for i in range(n)]
        extra = [{"kind": "long" if k > 1 else "sample", "seed": seed + i} for i in range(n)]
    G = G.to(device)
    G.eval()
    all_z = torch.cat(latents)
    mix = None
    if settings.mix_seed is not None:
        mix = [draw_latents(G, settings.mix_seed + i, len(latents[i])) for i in range(n)]
    bar = tqdm(total=len(all_z) + n, desc="generate", unit="img", disable=not progress)
    bar.set_postfix_str("generator")
    images = render_images(G, all_z, settings.truncation, batch_size, device, progress=bar,
                           mix_z=torch.cat(mix) if mix is not None else None,
                           mixing_cutoff=settings.mixing_cutoff)
    bar.set_postfix_str("griffin-lim")
    rows = np.cumsum([0] + [len(z) for z in latents])
    groups = [images[rows[i]:rows[i + 1]] for i in range(n)]
    clips = images_to_clips(groups, preset, stats, seconds, settings, [seed + i for i in range(n)],
                            device, batch_size=batch_size, progress=bar)
    for i, clip in enumerate(clips):
        clip.record = {"format_version": RECORD_VERSION, "index": i, **extra[i], "gl_seed": seed + i,
                       "seconds": seconds, "image_rows": [int(rows[i]), int(rows[i + 1])],
                       "latents": latents[i].tolist(),
                       **({"mix_latents": mix[i].tolist()} if mix is not None else {}),
                       **clip.record, **_model_record(info),
                       "settings": settings.to_dict(), "device": str(device)}
    bar.close()
    return clips


def regenerate(record: dict, G=None, info: dict | None = None, checkpoint: str | Path | None = None,
               device: str | torch.device = "cpu") -> Clip:
    """Make a clip again from its record (one entry of generated.json's ``"clips"``).

    Loads the generator from ``checkpoint`` (default: the record's) unless ``G, info`` are given;
    refuses a checkpoint whose training step differs from the record's.
    """
    if record.get("format_version", RECORD_VERSION) > RECORD_VERSION:
        raise PianoGANError("record was written by a newer pianogan")
    try:
        latents = torch.tensor(record["latents"], dtype=torch.float32)
        settings = GenerateSettings.from_dict(record["settings"])
        seconds, gl_seed = float(record["seconds"]), int(record["gl_seed"])
    except (KeyError, TypeError, ValueError) as e:
        raise PianoGANError(f"not a generation record (missing or bad {e})") from None
    if G is None:
        from .train.checkpoint import load_generator

        path = checkpoint or record.get("checkpoint")
        if not path:
            raise PianoGANError("record names no checkpoint; pass one")
        G, info = load_generator(path, device=str(device))
    if int(info.get("step", 0)) != int(record.get("step", 0)):
        raise PianoGANError(f"checkpoint is at step {info.get('step')}, the record was made at step "
                            f"{record.get('step')}; pass the checkpoint file of that step")
    G = configured(G.to(device), info, settings)
    G.eval()
    if is_native(G):  # an any-length piece: one pass over its latent, as generate made it
        clip = native_piece(G, info, latents, gl_seed, seconds, settings, record.get("style"), device)
        clip.record = {**record, **clip.record}
        return clip
    mix = record.get("mix_latents")
    images = render_images(G, latents, settings.truncation, batch_size=len(latents), device=device,
                           mix_z=torch.tensor(mix, dtype=torch.float32) if mix is not None else None,
                           mixing_cutoff=settings.mixing_cutoff)
    [clip] = images_to_clips([images], info["preset"], info["stats"], seconds, settings, [gl_seed],
                             device, overlap=record.get("overlap_frames"),
                             trim=record.get("trim_frames"))
    clip.record = {**record, **clip.record}
    return clip
