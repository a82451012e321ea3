"""Mode snapping: the other mode's third, moved to the mode a passage is in (sampling only).

Every trained ``longform`` model blurs major and minor the same way (docs/results.md, sections
34-37): its major passages strike the flat third beside the major third (48 % of the shipped
model's major clips play both, the corpus's 13 %) and its minor passages the major third beside
the flat one. A listener hears each such pair as a clash (E and E-flat over a C chord), and the
pitch-class histogram, the largest part of every model's FD, is pulled the same way. A critic
view of scale degrees fixed the major thirds in training but moved the blur into the minor
clips (section 37).

This is the post-hoc counterpart, the "snap to scale" of a music editor restricted to the one
degree that is blurred: each frame's local key is read from the strike strength of the
surrounding ``window`` frames (Krumhansl-Kessler, as :mod:`pianogan.keys` reads a clip's key),
and in a major passage a strike on the flat third moves up a semitone to the major third, in a
minor passage a strike on the major third moves down to the flat third. The moved note takes its
damper gate along for as long as it sounds (until its old key's damper shuts). Where the target
key is struck at the same frame, the louder strike stays (one key, one hammer). Everything else
(the sevenths, chromatic passing notes) is left as played: real music uses them.

Measured on the shipped weights (section 38): it takes the major passages' flat thirds to the
corpus's share (0.8 % of strike strength, real 0.9 %) and the FD is unchanged (11.26 against
11.22), but the absolute pitch classes hardly move (the two modes' moves cancel), the in-key share
of 20 s pieces rises by 0.025 and a minor passage's major third, which real music uses (a
Picardy third, the dominant of the dominant), is gone. Off in the shipped model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .clusters import shift_keys
from .data.rolls import PIANO_LOW
from .keys import key_strengths

# (source, target) scale degrees in semitones above the tonic, per mode: policy as data.
MODE_MOVES = {0: ((3, 4),),   # major: flat third -> major third
              1: ((4, 3),)}   # minor: major third -> flat third
OPEN_GATE = 0.5  # a damper gate at or above this lets its key sound


def local_keys(strikes: torch.Tensor, window: int, low: int = PIANO_LOW) -> torch.Tensor:
    """Strikes (n, keys, T) >= 0 -> (n, T) key index (0-11 major C..B, 12-23 minor) of the pitch
    classes struck in the ``window`` frames centred on each frame (:func:`pianogan.keys.key_strengths`,
    the clip key finder's), -1 where they are silent or flat. The window is cut at the piece's ends."""
    n, keys, t = strikes.shape
    classes = (torch.arange(keys, device=strikes.device) + low) % 12
    fold = F.one_hot(classes, 12).to(torch.float64).T  # (12, keys)
    pc = torch.einsum("ck,nkt->nct", fold, strikes.detach().to(torch.float64).clamp_min(0))
    # box sum over the window by a running sum: O(T) for a piece of any length
    half = max(int(window), 1) // 2
    run = F.pad(pc, (half + 1, half)).cumsum(-1)
    box = (run[..., 2 * half + 1:] - run[..., :-(2 * half + 1)])  # (n, 12, T)
    strengths = key_strengths(box.transpose(1, 2).cpu().numpy())  # (n, T, 24); all 0 where flat or silent
    return torch.as_tensor(np.where(strengths.any(-1), strengths.argmax(-1), -1), device=strikes.device)


def _sounding(moved: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """(n, keys, T) bool: frames where a strike in ``moved`` still sounds, from its frame until
    its key's damper gate next falls below :data:`OPEN_GATE`."""
    t = torch.arange(moved.shape[-1], device=moved.device).expand_as(moved)
    last_strike = torch.where(moved > 0, t, -1).cummax(-1).values
    last_shut = torch.where(gate < OPEN_GATE, t, -1).cummax(-1).values
    return (last_strike >= 0) & (last_strike > last_shut)


def snap_modes(strikes: torch.Tensor, gate: torch.Tensor, window: int,
               low: int = PIANO_LOW) -> tuple[torch.Tensor, torch.Tensor]:
    """(strikes, gate) (n, keys, T) with each passage's other-mode third moved onto its own
    (:data:`MODE_MOVES`), the local key read over ``window`` frames (:func:`local_keys`).
    Returns new tensors; frames without a key are left alone."""
    key = local_keys(strikes, window, low)  # (n, T)
    tonic, mode = key % 12, key // 12
    classes = ((torch.arange(strikes.shape[1], device=strikes.device) + low) % 12)[None, :, None]
    out_s, out_g = strikes.clone(), gate.clone()
    for m, moves in MODE_MOVES.items():
        for src, dst in moves:
            here = ((key >= 0) & (mode == m))[:, None, :]  # (n, 1, T)
            on_src = here & (classes == ((tonic + src) % 12)[:, None, :])  # (n, keys, T)
            moved = strikes * on_src
            if not bool((moved > 0).any()):
                continue
            d = (dst - src + 6) % 12 - 6  # the shorter way round, in keys
            out_s = torch.maximum(out_s * ~on_src, shift_keys(moved, d))
            carry = gate * _sounding(moved, gate)
            out_g = torch.maximum(out_g, shift_keys(carry, d))
    return out_s, out_g


__all__ = ["MODE_MOVES", "local_keys", "snap_modes"]
