"""Data-dependent initialisation of a ``longform`` model before training (a fresh run only): the
renderer fitted to real clips and their notes, and a harmony-plan model's bank of plans.

Called by the trainer through the family interface (``pianogan.models.longform.prepare``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .longform import Generator


def prepare(G: Generator, dataset, rolls=None, plans=None, n_clips: int = 64, seed: int = 0) -> dict:
    """Data-dependent initialisation before training (a fresh run only): the renderer's key
    templates, noise floor and gain fitted to ``n_clips`` training clips by NMF
    (:func:`~.piano_render.fit_templates`), then, given the clips' ``rolls`` (n, 2, 88, T) uint8
    (the trainer's, :mod:`pianogan.data.rolls`), the whole renderer fitted to real notes ->
    real images. Returns what was fitted, for the log. A harmony-plan model's bank is filled
    first from the clips' ``plans`` (n, 12, W), the ones the trainer gives G."""
    out = {}
    if G.plan_in is not None and plans is not None:
        out["plan_bank"] = fill_plan_bank(G, dataset, plans, seed)
    if G.cfg.head != "notes" or not G.cfg.fit_templates:
        return out
    from ..spectrogram import Stats, normalized_to_magnitude
    from .piano_render import fit_templates

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(dataset), min(n_clips, len(dataset)), replace=False))
    img = torch.from_numpy(dataset.images(idx))  # (n, F, T) in [-1, 1]
    stats = Stats(G.cfg.stats_mean, G.cfg.stats_std)
    mag = normalized_to_magnitude(img, stats, G.cfg.clip_sigma, G.cfg.eps)
    frames = mag.permute(1, 0, 2).reshape(mag.shape[1], -1).numpy()
    keys, noise, scale = fit_templates(frames, G.render.harmonic)
    G.render.init_from(keys, noise, scale)
    out.update({"clips": int(len(idx)), "frames": int(frames.shape[1]), "activation_scale": scale})
    if rolls is not None and G.cfg.roll_weight > 0 and G.cfg.render_fit_steps > 0:
        from ..data.rolls import roll_to_notes
        from .piano_render import fit_to_rolls

        pick = np.sort(rng.choice(len(dataset), min(8 * n_clips, len(dataset)), replace=False))
        strikes, held = roll_to_notes(rolls[pick])
        images = torch.from_numpy(dataset.images(pick))
        out["render_fit"] = fit_to_rolls(G.render, strikes, held, images, G.cfg.render_fit_steps, seed=seed)
    return out


def fill_plan_bank(G: Generator, dataset, plans: torch.Tensor, seed: int = 0) -> int:
    """G's bank of harmony plans from the training clips' ``plans`` (n, 12, W)
    (:func:`pianogan.train.conditioning.clip_plans`) and style labels (when the model has
    styles). Returns how many plans it holds."""
    from ..data.labels import dataset_labels

    found = dataset_labels(dataset) if G.n_styles else None
    styles = torch.from_numpy(np.asarray(found[1])).long() if found else None
    return G.fill_plan_bank(plans[..., :G.n_local], styles, seed)


__all__ = ["fill_plan_bank", "prepare"]
