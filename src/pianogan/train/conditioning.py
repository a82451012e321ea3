"""What a conditional model family needs from the trainer: its config completed from the
dataset, and the style labels that go with each batch.

A family may define ``configure(cfg, preset, stats, styles)``; a config with a non-empty
``styles`` makes its losses take ``labels`` (see pianogan.models). Real batches carry their own
clips' labels; generator batches draw labels from the training clips (torch's generator, so a
resumed run draws the same ones).
"""

from __future__ import annotations

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


def batch_cond(labels: torch.Tensor | None, indices, batch: int, device,
               rolls: torch.Tensor | None = None) -> dict:
    """Loss kwargs: the labels of the clips ``indices`` (a real batch), or with ``indices`` None
    ``batch`` labels drawn from the clips' distribution; {} for an unconditional model. A real
    batch also gets its clips' piano rolls as (strikes, held) when ``rolls`` are given."""
    out = {}
    if rolls is not None and indices is not None:
        from ..data.rolls import roll_to_notes

        strikes, held = roll_to_notes(rolls[torch.as_tensor(indices)])
        out["rolls"] = (strikes.to(device), held.to(device))
    if labels is None:
        return out
    idx = torch.randint(len(labels), (batch,)) if indices is None else torch.as_tensor(indices)
    return {**out, "labels": labels[idx].to(device)}


def fixed_cond(labels: torch.Tensor | None, n_styles: int, n: int, device) -> dict:
    """Loss/generator kwargs for the fixed sample grid: styles in turn."""
    if labels is None or n_styles == 0:
        return {}
    return {"labels": torch.arange(n, device=device) % n_styles}
