"""What a conditional model family needs from the trainer: its config completed from the
dataset, and the style labels that go with each batch.

A family may define ``configure(cfg, preset, stats, styles)``; a config with a non-empty
``styles`` makes its losses take ``labels`` (see pianogan.models). Real batches carry their own
clips' labels; generator batches draw labels from the training clips (torch's generator, so a
resumed run draws the same ones).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import PianoGANError


def configure(family, cfg, dataset):
    """``cfg`` completed by the family's ``configure`` from ``dataset`` (or returned unchanged)."""
    if not callable(getattr(family, "configure", None)):
        return cfg
    from ..data.labels import dataset_labels

    from ..data.rolls import has_rolls

    found = dataset_labels(dataset)
    return family.configure(cfg, dataset.preset, dataset.stats, found[0] if found else (),
                            rolls=has_rolls(dataset))


def clip_labels(cfg, dataset) -> torch.Tensor | None:
    """Style label per training clip (n,) int64 for a conditional config, else None."""
    styles = tuple(getattr(cfg, "styles", ()) or ())
    if not styles:
        return None
    from ..data.labels import dataset_labels

    found = dataset_labels(dataset)
    if found is None or found[0] != styles:
        raise PianoGANError(f"the model is conditioned on styles {list(styles)}, but the dataset's "
                            f"labels are {list(found[0]) if found else 'none'}")
    return torch.from_numpy(found[1])


def clip_rolls(cfg, dataset) -> torch.Tensor | None:
    """Piano roll per training clip (n, 2, 88, T) uint8 for a config that judges rolls
    (``roll_weight`` > 0, set by ``configure`` only when the dataset has them), else None."""
    if float(getattr(cfg, "roll_weight", 0.0) or 0.0) <= 0:
        return None
    from ..data.rolls import clip_rolls as load

    rolls = load(dataset)
    if rolls is None:
        raise PianoGANError(f"the model judges piano rolls, but {dataset.root} has no performance "
                            f"MIDI files (midi/*.mid)")
    return torch.from_numpy(rolls)


def clip_keys(cfg, rolls: torch.Tensor | None) -> torch.Tensor | None:
    """Key label per training clip (n,) int64 (an index into pianogan.keys.KEY_NAMES: the
    Krumhansl-Kessler key of the clip's strikes) for a config with ``key_labels``, else None.
    A silent clip gets the most common key."""
    if not getattr(cfg, "key_labels", False):
        return None
    if rolls is None:
        raise PianoGANError("the model is conditioned on keys, which are read from piano rolls, "
                            "but the dataset has none (or the model judges no rolls)")
    from ..data.rolls import roll_to_notes
    from ..keys import keys_of_notes

    found = []
    for i in range(0, len(rolls), 256):  # in chunks: the float strikes are 4x the uint8 rolls
        found.append(keys_of_notes(roll_to_notes(rolls[i:i + 256])[0]))
    keys = torch.from_numpy(np.concatenate(found)).long()
    heard = keys[keys >= 0]
    common = int(torch.bincount(heard).argmax()) if len(heard) else 0
    return torch.where(keys >= 0, keys, torch.full_like(keys, common))


def clip_beats(cfg, rolls: torch.Tensor | None) -> torch.Tensor | None:
    """Beat per training clip (n, 2) float32 (period in frames, phase in radians, read from its
    roll: pianogan.models.beat_clock.clip_beats) for a config with ``beat_clock``, else None."""
    if not getattr(cfg, "beat_clock", False):
        return None
    if rolls is None:
        raise PianoGANError("the model has a beat clock, which is read from piano rolls, "
                            "but the dataset has none (or the model judges no rolls)")
    from ..data.rolls import roll_to_notes
    from ..models.beat_clock import clip_beats as read

    fps = float(cfg.sample_rate) / float(cfg.hop_length)
    return torch.cat([read(roll_to_notes(rolls[i:i + 256])[0], fps) for i in range(0, len(rolls), 256)])


def clip_plans(cfg, rolls: torch.Tensor | None, beats: torch.Tensor | None = None) -> torch.Tensor | None:
    """Harmony plan per training clip (n, 12, windows) float32 (each ``frames_per_latent``
    window's pitch-class shares of strike strength, its edges on the clip's ``beats`` (n, 2)
    (:func:`clip_beats`) with ``plan_on_beats``: pianogan.models.harmony_plan) for a config with
    ``harmony_plan``, else None."""
    if not getattr(cfg, "harmony_plan", False):
        return None
    if rolls is None:
        raise PianoGANError("the model follows harmony plans, which are read from piano rolls, "
                            "but the dataset has none (or the model judges no rolls)")
    from ..models.harmony_plan import rolls_plans

    return rolls_plans(rolls, int(cfg.frames_per_latent), beats if getattr(cfg, "plan_on_beats", False) else None)


def batch_cond(labels: torch.Tensor | None, indices, batch: int, device,
               rolls: torch.Tensor | None = None, keys: torch.Tensor | None = None,
               beats: torch.Tensor | None = None, plans: torch.Tensor | None = None) -> dict:
    """Loss kwargs: the labels (and ``keys``, ``beats``, ``plans``) of the clips ``indices`` (a real batch), or with
    ``indices`` None ``batch`` of them drawn from the clips' joint distribution (one draw of
    clips for both); {} for an unconditional model. A real batch also gets its clips' piano
    rolls as (strikes, held) when ``rolls`` are given."""
    out = {}
    if rolls is not None and indices is not None:
        from ..data.rolls import roll_to_notes

        strikes, held = roll_to_notes(rolls[torch.as_tensor(indices)])
        out["rolls"] = (strikes.to(device), held.to(device))
    per_clip = {k: v for k, v in (("labels", labels), ("keys", keys), ("beats", beats), ("plans", plans))
                if v is not None}
    if not per_clip:
        return out
    n = len(next(iter(per_clip.values())))
    idx = torch.randint(n, (batch,)) if indices is None else torch.as_tensor(indices)
    return {**out, **{k: v[idx].to(device) for k, v in per_clip.items()}}


def fixed_cond(labels: torch.Tensor | None, n_styles: int, n: int, device,
               keys: torch.Tensor | None = None) -> dict:
    """Loss/generator kwargs for the fixed sample grid: styles in turn; with key labels, keys
    around the circle of fifths, every third one minor."""
    out = {}
    if labels is not None and n_styles > 0:
        out["labels"] = torch.arange(n, device=device) % n_styles
    if keys is not None:
        i = torch.arange(n, device=device)
        out["keys"] = (7 * i) % 12 + 12 * (i % 3 == 2).long()
    return out
