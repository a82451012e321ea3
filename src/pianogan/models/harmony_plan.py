"""A harmony plan: which pitch classes sound in each second of a clip, as a condition of the
``longform`` generator (``Config.harmony_plan``).

Every recipe run plays each clip on fewer pitch classes than the corpus (effective number of
classes of its strike energy 6.1-6.7 against 7.1), and that spread between clips is the largest
part of its FD (docs/results.md, sections 42-43). Terms that pushed a statistic of the notes
towards the corpus's (sorted class shares, in-scale share, scale degrees) were met with faint
chromatic strikes. Here the generator is instead *told* the harmony, one 12-class profile per
local latent (``frames_per_latent`` frames, about 1 s), so the harmony moves because its
condition moves (section 11's third proposal):

- in training each clip's plan is read from a real clip's roll, drawn with its style and beat
  (the real batch's own for the critic step), and the generator pays for playing other classes
  (:func:`plan_gap`) on top of both critics;
- outside training the plan comes from a bank of the training clips' plans kept in the model
  (:func:`chain_plans`): a piece longer than a clip strings several, each transposed so that its
  scale follows the one before by a step drawn from how consecutive training clips of one piece
  move (:func:`key_steps`, set at export; without it the piece keeps its first scale), held
  back as often as the export's calibration finds that real pieces keep their key
  (``plan_key_hold``, :func:`.longform_drift.calibrate_hold`);
- or, with ``plan_recombine`` = k > 0, second by second (:func:`recombine_plans`): each next
  second is what followed one of the k bank seconds (in any transposition) nearest the current
  one, so every step is a move the corpus made and the progression as a whole is new.

A plan is the shares of strike strength per pitch class in each window (a strike is already
(velocity / 127)², an energy; capped at 1, the hardest real strike); a silent window is all
zeros. Not strike² (the other pitch-class terms' weighting): its gradient vanishes on a faint
strike, so G could only reshape the notes it already played loudly, and in the first 830 steps
of a run at weight 1 the gap stayed at 0.79, above the 0.69 of a real clip against another
clip's plan (section 43). Class 0 is A, the roll's key 0 (as
:func:`.roll_critic.fold_pitch_classes`).

A plan's windows are the local latents' seconds, unless its chords change on the beat
(``Config.plan_on_beats``): then each window's edges move to the beat nearest them
(:func:`beat_edges`), read from the clip's beat clock. The generator strikes its next chord where
its plan changes; on the latents' grid that is a chord every 1.02 s whatever the tempo (flux at
those frames 5.4x its median, section 47; with a plan held over two seconds the seconds where it
does not change fall back to 1.1x, section 48).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .roll_critic import fold_pitch_classes

PLAN_CLASSES = 12
# Windows of context a recombined plan matches before each step (harmony_plan.recombine_plans).
RECOMBINE_CONTEXT = 3


def beat_edges(beats: torch.Tensor, windows: int, frames: int) -> torch.Tensor:
    """Beats (n, 2) (period in frames, phase in radians: cos(2 pi t / period - phase) peaks on
    them, :mod:`.beat_clock`) -> (n, windows + 1) int64 window edges in frames, on ``beats``'
    device: 0; for k = 1 .. windows - 1 the beat frame nearest k * ``frames`` among those after
    the edge before; windows * frames. A beat longer than ``frames`` is halved (again) until it
    is not, so the edges keep to the windows' pace (each window lasts between 0 and 2 ``frames``,
    on average ``frames``) instead of each window taking a whole beat. Every window keeps at
    least one frame."""
    n, total = beats.shape[0], windows * frames
    beat = beats[:, 0].detach().double().cpu().clamp_min(1.0)
    period = beat / torch.exp2(torch.ceil(torch.log2(beat / frames)).clamp_min(0.0))  # <= frames
    first = beats[:, 1].detach().double().cpu() / (2 * math.pi) * beat  # beat frames: first + m * period
    edges = torch.zeros(n, windows + 1, dtype=torch.long)
    edges[:, -1] = total
    for k in range(1, windows):
        m = torch.floor((k * frames - first) / period)[:, None] + torch.arange(-1, 3, dtype=torch.float64)
        near = torch.round(first[:, None] + m * period[:, None]).long()  # (n, 4) beats around the grid point
        miss = (near - k * frames).abs() + (near <= edges[:, k - 1, None]) * (4 * total)
        edge = near.gather(1, miss.argmin(1, keepdim=True))[:, 0]
        edges[:, k] = torch.minimum(torch.maximum(edge, edges[:, k - 1] + 1), torch.tensor(total - windows + k))
    return edges.to(beats.device)


def window_index(edges: torch.Tensor, length: int) -> torch.Tensor:
    """Edges (n, W + 1) (:func:`beat_edges`) -> (n, ``length``) int64: each frame's window, W
    for frames past the last edge."""
    t = torch.arange(length, device=edges.device).expand(edges.shape[0], length).contiguous()
    return torch.searchsorted(edges[:, 1:].contiguous(), t, right=True)


def frame_plans(plans: torch.Tensor, edges: torch.Tensor, length: int) -> torch.Tensor:
    """Plans (n, C, W) and their edges (n, W + 1) -> (n, C, ``length``): each window's profile
    held over its frames (the last window's past its edge)."""
    idx = window_index(edges.to(plans.device), length).clamp_max(plans.shape[-1] - 1)
    return plans.gather(-1, idx[:, None].expand(-1, plans.shape[1], -1))


def window_strength(strikes: torch.Tensor, frames: int, edges: torch.Tensor | None = None) -> torch.Tensor:
    """Strikes (n, 88, T) >= 0 -> (n, 12, T // frames) float32: each window's strike strength per
    pitch class (strikes capped at 1, the hardest real strike). Frames past the last whole
    window are left out. ``edges`` (n, W + 1): windows between them instead (W of them)."""
    e = fold_pitch_classes(strikes.float().clamp(0.0, 1.0).unsqueeze(1))[:, 0]  # (n, 12, T)
    if edges is not None:
        w = edges.shape[1] - 1
        idx = window_index(edges.to(e.device), e.shape[-1])  # frames past the last edge: bin w, dropped
        return e.new_zeros(e.shape[0], PLAN_CLASSES, w + 1).scatter_add_(2, idx[:, None].expand_as(e), e)[..., :w]
    w = e.shape[-1] // frames
    return e[..., :w * frames].unflatten(-1, (w, frames)).sum(-1)  # (n, 12, w)


def window_shares(strikes: torch.Tensor, frames: int, edges: torch.Tensor | None = None) -> torch.Tensor:
    """Strikes (n, 88, T) >= 0 -> (n, 12, T // frames) float32: each window's pitch-class shares
    of strike strength (:func:`window_strength`; ``edges``: its windows); zeros where a window
    has no strike."""
    e = window_strength(strikes, frames, edges)
    return e / (e.sum(1, keepdim=True) + 1e-6)


def sounding(plans: torch.Tensor) -> torch.Tensor:
    """Plans (..., 12, W) -> (..., W) bool: the windows whose plan sounds (their shares sum to 1,
    a strike-free window's to 0)."""
    return plans.sum(-2) > 0.5


def rest_channel(plans: torch.Tensor) -> torch.Tensor:
    """Plans (n, 12, W) -> (n, 13, W): the plan with a 13th channel, 1 where a window is silent
    (a rest, or a chord held without a new strike), for a generator told its rests
    (``Config.plan_rests``). Without it a rest is a plan of zeros, which adds nothing to G's
    features: only the absence of a cue."""
    return torch.cat([plans, (~sounding(plans)).unsqueeze(1).to(plans.dtype)], 1)


def rolls_plans(rolls: torch.Tensor, frames: int, beats: torch.Tensor | None = None) -> torch.Tensor:
    """Piano rolls (n, 2, 88, T) uint8 (:mod:`pianogan.data.rolls`) -> their plans (n, 12,
    T // frames), in chunks (the float strikes are 4x the uint8 rolls). With ``beats`` (n, 2),
    the clips' own beats (the ones the trainer gives each clip), each clip's windows change on
    its beat (:func:`beat_edges`)."""
    from ..data.rolls import roll_to_notes

    out = []
    for i in range(0, len(rolls), 256):
        strikes = roll_to_notes(rolls[i:i + 256])[0]
        edges = None if beats is None else beat_edges(beats[i:i + 256], strikes.shape[-1] // frames, frames)
        out.append(window_shares(strikes, frames, edges))
    return torch.cat(out)


# Added to a share under the square root of the Hellinger gap, so a planned class that is not
# played pulls at most this hard (d sqrt(p)/dp <= 1 / (2 sqrt(eps)) = 16).
HELLINGER_EPS = 1e-3
PLAN_DISTANCES = ("l1", "hellinger")
# A silent window's price with ``rests``: s / (s + REST_STRIKE) for a strike strength s, so one
# strike at velocity 64 ((64 / 127)^2 = 0.25) costs 0.5, a faint 0.05 one 0.17, a busy second
# nearly 1 (the sounding windows' 0-1 scale).
REST_STRIKE = 0.25


def _aligned(strikes: torch.Tensor, plans: torch.Tensor, frames: int,
             edges: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Strikes (n, 88, T) and plans (n, 12, W) (windows between ``edges`` (n, W + 1), None: of
    ``frames``) -> each window's strike strength per class (:func:`window_strength`) and the
    plans, both cut to the windows they share, float32."""
    strength = window_strength(strikes, frames, edges)
    w = min(strength.shape[-1], plans.shape[-1])
    return strength[..., :w], plans[..., :w].to(strength)


def plan_gap(strikes: torch.Tensor, plans: torch.Tensor, frames: int, distance: str = "l1",
             rests: bool = False, edges: torch.Tensor | None = None) -> torch.Tensor:
    """Strikes (n, 88, T) and plans (n, 12, W) -> the mean over planned windows (those with a
    sounding plan) of a distance between the shares a window plays and its plan, 0 when it plays
    its planned classes in their shares, 1 when it plays none of them. ``distance``: "l1", half
    the L1 distance (a silent window where the plan sounds costs 0.5), or "hellinger", the
    squared Hellinger distance ½ Σ (√played − √plan)², which asks for a plan's weak classes as
    well: under L1 a second could drop a class of share 0.05 for 0.05, and the generator played
    6.4 classes a clip against the plans' 7.0 (section 44).

    Unplanned (silent) windows are free, unless ``rests``: then the mean runs over every window,
    and a silent one costs s / (s + :data:`REST_STRIKE`) for the strike strength s played in it.
    The corpus's strike-free seconds (8 % of them: rests, fermatas, endings) are where its
    loudness moves most: 98 % of the training clips whose bands move most (top 5 %) hold one
    (section 47). ``edges`` (n, W + 1): the plan's windows when they change on the beat
    (:func:`beat_edges`)."""
    if distance not in PLAN_DISTANCES:  # checked first: a batch with no planned window must not hide it
        raise ValueError(f"plan_gap: distance must be one of {PLAN_DISTANCES}, got {distance!r}")
    strength, plans = _aligned(strikes, plans, frames, edges)
    played = strength / (strength.sum(1, keepdim=True) + 1e-6)
    planned = sounding(plans)  # (n, w)
    if distance == "hellinger":
        per = 0.5 * ((played + HELLINGER_EPS).sqrt() - (plans + HELLINGER_EPS).sqrt()).pow(2).sum(1)
    else:
        per = 0.5 * (played - plans).abs().sum(1)
    if rests:
        mass = strength.sum(1)
        return torch.where(planned, per, mass / (mass + REST_STRIKE)).mean()
    if not bool(planned.any()):
        return strikes.sum() * 0.0
    return per[planned].mean()


def rest_strength(strikes: torch.Tensor, plans: torch.Tensor, frames: int,
                  edges: torch.Tensor | None = None) -> float | None:
    """The strike strength played in the plan's silent windows over that in its sounding ones
    (per window): 0 when G rests where the plan does, 1 when it plays through. None when the
    batch's plans have no silent window (or no sounding one)."""
    with torch.no_grad():
        strength, plans = _aligned(strikes, plans, frames, edges)
        mass, planned = strength.sum(1), sounding(plans)
        if bool(planned.all()) or not bool(planned.any()):
            return None
        return float(mass[~planned].mean() / (mass[planned].mean() + 1e-6))


def plan_scales(plans: torch.Tensor) -> np.ndarray:
    """Plans (n, 12, W) -> (n,) the best diatonic scale (tonic 0-11, C = 0; a minor key shares
    its relative major's) of each plan's summed profile, as the drift calibration and the note
    measures read a window's key (:func:`.longform_drift.window_scales`); a silent plan gets 0.
    Not its Krumhansl-Kessler key: the two disagree on many 10 s clips, and strung plans aligned
    by it kept one scale less often than the key steps asked (section 44)."""
    from ..evaluate.notes import best_scales

    return best_scales(plans.float().sum(-1).roll(-3, dims=1).cpu().numpy())  # class 0 = A -> C (A0 is MIDI 21)


def _pool(allowed: torch.Tensor, owners: torch.Tensor, style: int | None) -> torch.Tensor:
    """The candidates (bool (M,)) to draw from: those ``allowed`` of the clip's ``style`` (their
    ``owners`` (M,)), else all allowed ones, else all."""
    if style is not None and bool((allowed & (owners == style)).any()):
        return allowed & (owners == style)
    return allowed if bool(allowed.any()) else torch.ones_like(allowed)


def chain_plans(bank: torch.Tensor, styles: torch.Tensor, count: int, labels: torch.Tensor | None,
                seeds: list[int], n_steps: int, steps: tuple[float, ...] = (), hold: float = 0.0) -> torch.Tensor:
    """A plan of ``n_steps`` windows per clip (n, 12, n_steps) from the first ``count`` of the
    ``bank`` (B, 12, W) of training plans: each clip strings plans of its style (``labels`` (n,),
    None: any) drawn by its own seed. The first keeps its scale (:func:`plan_scales`); each later
    one is transposed so its scale lies the drawn step above the one before: a step of 0-11
    semitones drawn from ``steps`` (12 shares, :func:`key_steps`; empty: always 0) mixed with
    staying put at weight ``hold`` (0-1; the export's calibration). Plans with no sounding window
    are not drawn."""
    count = max(1, min(int(count), bank.shape[0]))
    bank, styles = bank[:count].float(), styles[:count].cpu()
    scales = plan_scales(bank)
    playable = sounding(bank).any(-1).cpu()
    w = bank.shape[-1]
    stay = np.eye(12)[0]
    p_steps = np.asarray(steps, np.float64) / np.sum(steps) if len(steps) == 12 else stay
    p_steps = (1.0 - hold) * p_steps + hold * stay
    out = []
    for i, seed in enumerate(seeds):
        choices = torch.nonzero(_pool(playable, styles, None if labels is None else int(labels[i]))).flatten()
        rng = np.random.default_rng(seed)
        parts, tonic = [], None
        for _ in range(-(-n_steps // w)):
            j = int(choices[int(rng.integers(len(choices)))])
            t = int(scales[j])
            tonic = t if tonic is None else (tonic + int(rng.choice(12, p=p_steps))) % 12
            parts.append(bank[j].roll(tonic - t, dims=0))
        out.append(torch.cat(parts, -1)[:, :n_steps])
    return torch.stack(out).to(bank.device)


def recombine_plans(bank: torch.Tensor, styles: torch.Tensor, count: int, labels: torch.Tensor | None,
                    seeds: list[int], n_steps: int, k: int, context: int = RECOMBINE_CONTEXT) -> torch.Tensor:
    """A plan of ``n_steps`` windows per clip (n, 12, n_steps), second by second from the first
    ``count`` plans of ``bank`` (B, 12, W): it starts with the first ``context`` windows of a
    bank plan of the clip's style (``labels``; None: any) with a sounding first window, drawn by
    its seed; each next window is the successor of one of the ``k`` bank windows, over all 12
    transpositions, whose last ``context`` windows are most like the plan's last ``context``
    (mean cosine; silent against silent counts as alike), transposed as that window was. A
    chain of order ``context`` whose every step the corpus took."""
    count = max(1, min(int(count), bank.shape[0]))
    bank, styles = bank[:count].float().cpu(), styles[:count].cpu()
    w = bank.shape[-1]
    c = max(1, min(int(context), w - 1))
    silent = bank.sum(1, keepdim=True) < 0.5  # (B, 1, W)
    unit = bank / bank.norm(dim=1, keepdim=True).clamp_min(1e-6)
    # every run of c windows with a successor: (B * (W - c), 12, c) and the successor (B * (W - c), 12)
    runs = torch.stack([unit[..., j:j + c] for j in range(w - c)], 1).reshape(-1, PLAN_CLASSES, c)
    runs_silent = torch.stack([silent[..., j:j + c] for j in range(w - c)], 1).reshape(-1, 1, c)
    nxt = bank[..., c:].permute(0, 2, 1).reshape(-1, PLAN_CLASSES)
    owner = styles.repeat_interleave(w - c)
    rot_runs = torch.stack([runs.roll(r, dims=1) for r in range(PLAN_CLASSES)])  # (12, M, 12, c)
    first_pool = ~silent[:, 0, 0]
    out = []
    for i, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        style = None if labels is None else int(labels[i])
        mine = _pool(torch.ones_like(owner, dtype=torch.bool), owner, style)
        choices = torch.nonzero(_pool(first_pool, styles, style)).flatten()
        seq = list(bank[int(choices[int(rng.integers(len(choices)))]), :, :c].unbind(-1))
        while len(seq) < n_steps:
            ctx = torch.stack(seq[-c:], -1)  # (12, c)
            ctx_silent = ctx.sum(0) < 0.5
            cos = (rot_runs * (ctx / ctx.norm(dim=0, keepdim=True).clamp_min(1e-6))).sum(2)  # (12, M, c)
            alike = torch.where(ctx_silent & runs_silent[None, :, 0], 1.0, torch.where(ctx_silent | runs_silent[None, :, 0], -1.0, cos))
            score = torch.where(mine[None], alike.mean(-1), torch.full(alike.shape[:2], -2.0)).flatten()
            best = score.topk(min(k, score.numel())).indices
            pick = int(best[int(rng.integers(len(best)))])
            r, m = divmod(pick, nxt.shape[0])
            seq.append(nxt[m].roll(r, dims=0))
        out.append(torch.stack(seq[:n_steps], -1))
    return torch.stack(out)


def key_steps(strikes: torch.Tensor, rows: list[dict]) -> tuple[float, ...]:
    """Strikes (n, 88, T) of training clips in manifest order, with their manifest ``rows`` ->
    12 shares: how far (semitones up, 0-11) the key signature (best diatonic scale,
    :func:`.longform_drift.window_scales`) of each clip moves to the next clip of the same
    piece, over the pairs where both have one; () without such pairs."""
    from .longform_drift import continues, window_scales

    scales = window_scales(strikes, strikes.shape[-1])[:, 0]
    follows = continues(rows) & (scales[:-1] >= 0) & (scales[1:] >= 0)
    if not follows.any():
        return ()
    counts = np.bincount((scales[1:] - scales[:-1])[follows] % 12, minlength=12).astype(np.float64)
    return tuple(float(c) for c in counts / counts.sum())


__all__ = ["HELLINGER_EPS", "PLAN_CLASSES", "PLAN_DISTANCES", "REST_STRIKE", "beat_edges", "chain_plans", "frame_plans",
           "key_steps", "plan_gap", "plan_scales", "recombine_plans", "rest_channel", "rest_strength", "rolls_plans",
           "sounding", "window_index", "window_shares", "window_strength"]
