"""The notes of a passage's mode (sampling only): mode snapping, and leading tones raised.

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

Leading tones (:func:`raise_leading_tones`). A seventh degree that steps up to the tonic is, in
the corpus, mostly the raised one, the leading tone (B to C in C major, G-sharp to A in A
minor): of the strikes on either seventh followed within half a second by the tonic a step
above, 73 % in major passages and 54 % in minor ones (400 training clips, section 39). The models
play the flat seventh there instead: 28 % and 6 % raised on the shipped weights, so their minor
cadences sound modal and their major ones like a flat-seven chord. The rule is the old practice
of musica ficta: a flat seventh followed within ``reach`` frames by the tonic a whole tone above
is raised a semitone, its damper gate carried along as a snapped third's is. A flat seventh that
does not go up to the tonic (a dominant seventh chord's, a descending line's) stays.
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
FLAT_SEVENTH = 10  # semitones above the tonic; the leading tone is one above it, the tonic two
# The span over which the leading-tone rule reads each frame's key: the length of the clips
# every model here learns from, about what a listener hears as one passage's key.
KEY_WINDOW_SECONDS = 10.0


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


def _move(strikes: torch.Tensor, gate: torch.Tensor, on: torch.Tensor, d: int,
          out_s: torch.Tensor, out_g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out_s, out_g) with the strikes of ``strikes`` where ``on`` (n, keys, T) moved ``d`` keys;
    each moved strike takes its key's damper gate along for as long as it sounds, and where its
    new key is struck at the same frame the louder strike stays."""
    moved = strikes * on
    if not bool((moved > 0).any()):
        return out_s, out_g
    out_s = torch.maximum(out_s * ~on, shift_keys(moved, d))
    out_g = torch.maximum(out_g, shift_keys(gate * _sounding(moved, gate), d))
    return out_s, out_g


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
            d = (dst - src + 6) % 12 - 6  # the shorter way round, in keys
            out_s, out_g = _move(strikes, gate, on_src, d, out_s, out_g)
    return out_s, out_g


def struck_ahead(strikes: torch.Tensor, reach: int, d: int) -> torch.Tensor:
    """(n, keys, T) bool: whether the key ``d`` above each key is struck in the ``reach`` frames
    after each frame (not at the frame itself)."""
    f = (strikes > 0).to(strikes.dtype)
    ahead = F.max_pool1d(F.pad(f[..., 1:], (0, reach)).flatten(0, 1)[:, None], reach, 1)[:, 0]
    return shift_keys(ahead.view_as(f), -d) > 0


def raise_leading_tones(strikes: torch.Tensor, gate: torch.Tensor, window: int, reach: int,
                        low: int = PIANO_LOW) -> tuple[torch.Tensor, torch.Tensor]:
    """(strikes, gate) (n, keys, T) with every flat seventh of the local key (read over ``window``
    frames, :func:`local_keys`) that the tonic a whole tone above follows within ``reach`` frames
    raised to the leading tone. Returns new tensors; frames without a key are left alone."""
    key = local_keys(strikes, window, low)  # (n, T)
    classes = ((torch.arange(strikes.shape[1], device=strikes.device) + low) % 12)[None, :, None]
    seventh = (key >= 0)[:, None, :] & (classes == ((key % 12 + FLAT_SEVENTH) % 12)[:, None, :])
    on = seventh & (strikes > 0) & struck_ahead(strikes, max(int(reach), 1), 2)
    return _move(strikes, gate, on, 1, strikes.clone(), gate.clone())


__all__ = ["FLAT_SEVENTH", "KEY_WINDOW_SECONDS", "MODE_MOVES", "local_keys", "raise_leading_tones",
           "snap_modes", "struck_ahead"]
