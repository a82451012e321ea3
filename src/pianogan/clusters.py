"""Clusters: of two keys struck together a semitone apart (at any octave), the softer is left out
(sampling only).

Every ``longform`` model strikes semitone clusters that real music does not: of the shipped
weights' onsets (before this rule), 9.0 % sound with another key a minor second away (within one frame, about 32 ms),
5.6 % a major seventh away and 3.3 % a minor ninth away; of the corpus's, 0.4 %, 0.3 % and 0.3 %
(docs/results.md, section 38). The consonant intervals it plays at about the corpus's rates. A
GAN unsure between two neighbouring notes plays both, and a listener hears a wrong note in the
chord. Both of the pair are struck about equally hard (the softer at a median 0.66 of the
louder), so this is not a faint leak beside a real note: one of them has to go, and the louder
is what the model leans to. Adjacent whole tones are over-played too (8x) but left alone:
dropping them as well cost 0.7 FD points, and real harmony needs its sevenths and ninths.

The rule, vectorised: a strike is dropped when a key at one of :data:`CLASH_INTERVALS` from it
is struck harder within ``frames`` frames (a tie keeps both). Dampers are left alone: a key that
is not struck makes no sound whatever its damper does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Semitones between two simultaneous strikes that clash: the minor second and its octave
# compounds and inversions (major seventh, minor ninth, ...), up to three octaves apart.
CLASH_INTERVALS = (1, 11, 13, 23, 25, 35)


def shift_keys(x: torch.Tensor, d: int) -> torch.Tensor:
    """(n, keys, T) moved up by ``d`` keys (down for d < 0); what leaves the keyboard is dropped,
    the keys left empty are 0."""
    if d == 0:
        return x
    return F.pad(x, (0, 0, d, 0))[:, :-d] if d > 0 else F.pad(x, (0, 0, 0, -d))[:, -d:]


def clash_rival(strikes: torch.Tensor, frames: int = 1,
                intervals: tuple[int, ...] = CLASH_INTERVALS) -> torch.Tensor:
    """Strikes (n, keys, T) >= 0 -> (n, keys, T): the hardest strike ``intervals`` semitones above
    or below each key within ``frames`` frames before or after (0 where there is none)."""
    near = F.max_pool1d(strikes.flatten(0, 1)[:, None], 2 * frames + 1, 1, frames)[:, 0].view_as(strikes)
    keys = strikes.shape[1]
    rival = torch.zeros_like(strikes)
    for d in intervals:
        if d < keys:
            rival = torch.maximum(rival, torch.maximum(shift_keys(near, d), shift_keys(near, -d)))
    return rival


def drop_clashes(strikes: torch.Tensor, frames: int = 1,
                 intervals: tuple[int, ...] = CLASH_INTERVALS) -> torch.Tensor:
    """Strikes (n, keys, T) with every strike that a harder one clashes with (:func:`clash_rival`)
    set to 0."""
    return strikes * (strikes >= clash_rival(strikes, frames, intervals))


__all__ = ["CLASH_INTERVALS", "clash_rival", "drop_clashes", "shift_keys"]
