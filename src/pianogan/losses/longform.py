"""Loss of the ``longform`` family: non-saturating logistic with lazy R1, optionally conditional,
with a second critic on the notes when the data has piano rolls.

D: softplus(D(G(z, y), y)) + softplus(-D(x, y)), and every ``r1_interval``-th step
``r1_interval · γ/2 · E‖∇_x D(x, y)‖²`` on the reals (added to the same step; see
losses/stylegan2.py for why the interval scales it). G: softplus(-D(G(z, y), y)).
Labels y: a real batch's own labels for D (the fakes get the same labels, so D compares like
with like), labels drawn by the trainer for G; None for an unconditional model.

Rolls (``roll_weight`` > 0): a real batch comes with the (strikes, held) it was played from, the
generator returns the ones it played, and the roll critic's logistic loss is added with weight
``roll_weight`` on both sides; R1 then takes the gradient with respect to the roll too.

Pitch-class spread (``pc_match_weight`` > 0, rolls only): G also pays
``pc_match_weight · Σ_k |mean(s_fake)_k - mean(s_real)_k|``, s = a clip's pitch-class shares of
strike energy (strike²) sorted from largest to smallest, the reals being the clips of the same
step's critic batch. Sorted shares ignore the key and measure only how the sound is spread over
the 12 classes: the generator's three strongest held 84 % of it against 61 % real (docs/results.md,
section 10), which neither critic corrected. A moment to match, not a critic, because it is one
known statistic of the data; the batch's own reals keep it free of state (an exact resume needs
nothing saved).

In-scale share (``scale_match_weight`` > 0, rolls only): G also pays ``scale_match_weight ·
(|mean(q_fake) - mean(q_real)| + |sd(q_fake) - sd(q_real)|)``, q = a clip's share of strike energy
inside its best major scale (:func:`scale_share`), the reals again the same step's critic batch.
The generator's loud notes sat inside one scale more than real music's (docs/results.md, section
24); the spread is matched too, so it cannot meet the mean by making every clip alike.

Strike values (``strike_match_weight`` > 0, rolls only): G also pays ``strike_match_weight ·
mean |log(f_i + c) - log(r_i + c)|`` (:func:`strike_gap`), r the k strikes of the critic batch's
real onsets sorted, f the k largest strikes of G's batch sorted: the 1-D Wasserstein distance
of the two sets of onset strengths in log units (c = :data:`STRIKE_LOG_OFFSET`). The roll critic
let the model strike most notes far softer than the corpus and a few louder than any key can be
struck (docs/results.md, section 25). With ``strike_ghost_weight`` > 0 G also pays for the strikes
beyond those k (:func:`ghost_strikes`): each costs log(1 + f/c), what it would cost in the same
distance matched against a real position that is not struck. At weight equal to
``strike_match_weight`` the two together are the Wasserstein distance of all the batch's strike
values, zeros included, to the reals' (per real onset). The model played about three times as
many onsets as the corpus, mostly soft ones (section 25); the top-k term leaves them free.

Semitone clusters (``clash_price_weight`` > 0): G also pays ``clash_price_weight ·``
:func:`clash_share` of its batch's strikes, the strength on the softer side of pairs struck
within a frame a semitone apart at any octave. Every model struck such clusters (27 % of the
shipped weights' onsets, the corpus's 3 %; section 38); the sampling rule ``drop_clashes`` drops
the softer note afterwards, this term asks the generator to choose while it learns.

Loudness movement (``movement_match_weight`` > 0): G also pays ``movement_match_weight ·``
:func:`.movement.movement_gap` between its batch's and the critic batch's reals' movement (each
mel band's level spread over a clip), so that its clips differ from one another in how much
their loudness moves as much as real clips do (losses/movement.py says why). Needs no rolls.

Scale degrees (``degree_match_weight`` > 0, rolls only): G also pays ``degree_match_weight ·``
:func:`.degrees.degree_gap` between its batch's degree profiles and the reals' (each clip's
strike energy per degree of its own key, major and minor apart), so that it plays the tonic, the
third and the leading tone as often as the corpus does (losses/degrees.py says why). The reals
are the last :data:`.degrees.DEGREE_BANK` clips the critic saw, not one batch: a batch holds a
few minor clips, too few to sort against. The bank is the loss's state, saved with the
checkpoint, so a resumed run reads the same reals.

Harmony plan (``harmony_plan``, weight ``plan_weight``, rolls only): G is given each clip's plan,
the pitch-class shares of each second of a real clip's strikes, and also pays ``plan_weight ·``
:func:`pianogan.models.harmony_plan.plan_gap` between what it plays in each second and the plan.
A condition the critics do not see: what they judge is the sound and the notes; the plan only
says which harmony the notes are to carry.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..clusters import clash_rival
from ..models.harmony_plan import beat_edges, plan_gap, rest_strength
from .degrees import DEGREE_BANK, bank, class_shares, degree_gap, degree_profiles
from .movement import band_movement, movement_gap
from .stylegan2 import r1_penalty


def pitch_class_spread(strikes: torch.Tensor) -> torch.Tensor:
    """Strikes (n, 88, T) >= 0 -> (n, 12): each clip's pitch-class shares of strike energy
    (strike²), sorted in descending order (all zero for a silent clip)."""
    return class_shares(strikes).sort(dim=1, descending=True).values


# (12 pitch classes, 12 major scales): 1 where the class is in the scale; the class order does
# not matter (every rotation is a column).
_MAJOR = torch.tensor([1.0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1])
_SCALES = torch.stack([torch.roll(_MAJOR, k) for k in range(12)], dim=1)


def scale_share(strikes: torch.Tensor) -> torch.Tensor:
    """Strikes (n, 88, T) >= 0 -> (n,): each clip's share of strike energy (strike², strikes capped
    at 1) inside its best major scale (the 12 rotations of the diatonic set; relative minors share
    it), the evaluator's in-key measure on energy instead of transcribed note time (0 for a silent
    clip). The max picks the scale; the gradient flows through that scale's share."""
    # Capped at a real strike's maximum (velocity 127 = 1): a few strikes far above it (the
    # generator's reach 20-140) would otherwise own the energy, and a generator pushed by this
    # term met the real mean with rare huge off-scale strikes (docs/results.md, section 24).
    shares = class_shares(strikes.float().clamp(max=1.0))  # (n, 12)
    # a product and a sum, not a matmul: autocast would run a matmul in bf16, whose steps near 1
    # (1/256) are as large as the gap this measures (0.035)
    return (shares[:, :, None] * _SCALES.to(shares)).sum(1).max(dim=1).values


STRIKE_LOG_OFFSET = 0.01  # log(s + c): a faint strike's gradient stays finite


def strike_gap(fake: torch.Tensor, real_sorted: torch.Tensor) -> torch.Tensor:
    """Fake strikes (n, 88, T) >= 0 and the reals' onset strikes (k,) sorted ascending -> the mean
    absolute difference, in log(s + STRIKE_LOG_OFFSET), between those and the k largest fake
    strikes sorted ascending: 0 when the fake batch's loudest k strikes are the reals' values."""
    k = int(real_sorted.numel())
    if k == 0:
        return fake.sum() * 0.0
    top = fake.float().flatten().topk(k).values.flip(0)  # ascending
    return (torch.log(top + STRIKE_LOG_OFFSET) - torch.log(real_sorted.float() + STRIKE_LOG_OFFSET)).abs().mean()


def ghost_strikes(fake: torch.Tensor, k: int) -> torch.Tensor:
    """Fake strikes (n, 88, T) >= 0 and the number k of real onsets in the critic batch -> the sum
    of log(1 + f / STRIKE_LOG_OFFSET) over the fake strikes beyond the k largest, divided by k (per
    real onset, like :func:`strike_gap`'s mean): 0 when G strikes no more often than the reals."""
    if k == 0:
        return fake.sum() * 0.0
    cost = torch.log1p(fake.float().flatten() / STRIKE_LOG_OFFSET)  # monotone in f: the top k cost most
    return (cost.sum() - cost.topk(min(k, cost.numel())).values.sum()) / k  # no full sort on G's step


def clash_share(strikes: torch.Tensor) -> torch.Tensor:
    """Strikes (n, 88, T) >= 0 -> sum min(s, rival) / sum s over every strike s and its hardest
    semitone rival (:func:`pianogan.clusters.clash_rival`): a pair counts its softer strike from
    both sides, so 0 without clashes and at most 1. Its gradient lowers the softer note of each
    pair (the note the sampling rule drops) and leaves the louder alone."""
    s = strikes.float()
    return torch.minimum(s, clash_rival(s)).sum() / s.sum().clamp_min(1e-6)


def roll_noise_at(cfg, step: int) -> float:
    """The roll critic's instance noise at training ``step``: ``roll_noise`` falling linearly to
    ``roll_noise_end`` over ``roll_noise_kimg`` thousand real clips. Large at first (the critic
    must not win on exact zeros alone), small later (faint wrong notes must show)."""
    done = min(1.0, step * cfg.batch_size / 1000.0 / max(cfg.roll_noise_kimg, 1e-9))
    return float(cfg.roll_noise + (cfg.roll_noise_end - cfg.roll_noise) * done)


class LongformLoss:
    def __init__(self, cfg, G: nn.Module, D: nn.Module):
        self.cfg, self.G, self.D = cfg, G, D
        self.n_critic = int(cfg.n_critic)
        self.roll_weight = float(getattr(cfg, "roll_weight", 0.0) or 0.0)
        self.pc_weight = float(getattr(cfg, "pc_match_weight", 0.0) or 0.0)
        self.pc_real: torch.Tensor | None = None  # (12,) of the last critic batch's reals
        self.scale_weight = float(getattr(cfg, "scale_match_weight", 0.0) or 0.0)
        self.scale_real: torch.Tensor | None = None  # (2,) mean and sd of the last critic batch's reals
        self.scale_start = float(getattr(cfg, "scale_match_start_kimg", 0.0) or 0.0)
        self.strike_weight = float(getattr(cfg, "strike_match_weight", 0.0) or 0.0)
        self.strike_real: torch.Tensor | None = None  # (k,) the last critic batch's real onset strikes, sorted
        self.strike_start = float(getattr(cfg, "strike_match_start_kimg", 0.0) or 0.0)
        self.ghost_weight = float(getattr(cfg, "strike_ghost_weight", 0.0) or 0.0)
        self.clash_weight = float(getattr(cfg, "clash_price_weight", 0.0) or 0.0)
        self.movement_weight = float(getattr(cfg, "movement_match_weight", 0.0) or 0.0)
        self.movement_real: torch.Tensor | None = None  # (B, 16) the last critic batch's reals' movement
        self.degree_weight = float(getattr(cfg, "degree_match_weight", 0.0) or 0.0)
        # the degree profiles (and minor flags) of the last DEGREE_BANK real clips the critic saw
        self.degree_real: tuple[torch.Tensor, torch.Tensor] | None = None
        self.plan_weight = float(getattr(cfg, "plan_weight", 0.0) or 0.0) if getattr(cfg, "harmony_plan", False) else 0.0

    def d_loss(self, real: torch.Tensor, z: torch.Tensor, step: int, labels: torch.Tensor | None = None,
               rolls: tuple[torch.Tensor, torch.Tensor] | None = None, keys: torch.Tensor | None = None,
               beats: torch.Tensor | None = None, plans: torch.Tensor | None = None):
        """real (B, 1, F, T) in [-1, 1], z (B, z_dim), labels (B,) or None, rolls (strikes, held)
        (B, 88, T) each or None, keys (B,) key labels or None, beats (B, 2) beats (period,
        phase) or None, plans (B, 12, L) harmony plans or None -> (loss, stats). Like the
        labels, the fakes are asked for the real clips' keys, beats and plans."""
        use_rolls = self.roll_weight > 0 and rolls is not None
        cond = {"keys": keys, "beats": beats, "plans": plans}
        with torch.no_grad():
            if use_rolls:
                fake, fake_notes = self.G(z, labels, notes=True, **cond)
            else:
                fake, fake_notes = self.G(z, labels, **cond), None
            fake = fake.to(real.dtype)
        do_r1 = self.cfg.r1_gamma > 0 and step % self.cfg.r1_interval == 0
        real = real.detach().requires_grad_(do_r1)
        stats = {}
        if self.movement_weight > 0:
            self.movement_real = band_movement(real.detach(), self.cfg)
        if use_rolls and self.pc_weight > 0:
            self.pc_real = pitch_class_spread(rolls[0].detach()).mean(0)
        if use_rolls and self.degree_weight > 0:
            self.degree_real = bank(self.degree_real, degree_profiles(rolls[0].detach()), DEGREE_BANK)
        if use_rolls and self.scale_weight > 0 and self._on(step, self.scale_start):  # G's step reads it
            q = scale_share(rolls[0].detach())
            self.scale_real = torch.stack([q.mean(), q.std()])
        if use_rolls and self.strike_weight + self.ghost_weight > 0 and self._on(step, self.strike_start):
            r = rolls[0].detach().float().flatten()
            self.strike_real = r[r > 0].sort().values
        if use_rolls:
            # R1 on the roll as the critic sees it (models/roll_critic.py: roll_view says why)
            real_notes = self.D.roll_view([r.detach() for r in rolls]).to(real.dtype).requires_grad_(do_r1)
            fake_notes = self.D.roll_view(fake_notes)
            sigma = roll_noise_at(self.cfg, step)
            real_logits, real_roll = (o.float() for o in self.D(real, labels, notes=real_notes, roll_noise=sigma,
                                                                keys=keys, beats=beats))
            fake_logits, fake_roll = (o.float() for o in self.D(fake, labels, notes=fake_notes, roll_noise=sigma,
                                                                keys=keys, beats=beats))
            roll_real, roll_fake = F.softplus(-real_roll).mean(), F.softplus(fake_roll).mean()
            roll_loss = self.roll_weight * (roll_real + roll_fake)
            stats.update({"loss/D_roll": (roll_real + roll_fake).item(), "D/roll_noise": sigma,
                          "D/roll_real": real_roll.detach().mean().item(),
                          "D/roll_fake": fake_roll.detach().mean().item()})
            inputs, total = [real, real_notes], real_logits + self.roll_weight * real_roll
        else:
            real_logits = self.D(real, labels, keys=keys).float()
            fake_logits = self.D(fake, labels, keys=keys).float()
            roll_loss, inputs, total = 0.0, [real], real_logits
        loss_real = F.softplus(-real_logits).mean()
        loss_fake = F.softplus(fake_logits).mean()
        loss = loss_real + loss_fake + roll_loss
        stats.update({"loss/D_real": loss_real.item(), "loss/D_fake": loss_fake.item(),
                      "D/real": real_logits.detach().mean().item(), "D/fake": fake_logits.detach().mean().item()})
        if do_r1:
            r1 = r1_penalty(inputs, total).mean()
            loss = loss + r1 * (self.cfg.r1_gamma / 2) * self.cfg.r1_interval
            stats["loss/r1"] = r1.item()
        stats["loss/D"] = loss.item()
        return loss, stats

    def g_loss(self, z: torch.Tensor, step: int, labels: torch.Tensor | None = None, rolls=None,
               keys: torch.Tensor | None = None, beats: torch.Tensor | None = None,
               plans: torch.Tensor | None = None):
        """z (B, z_dim), labels (B,) or None, keys (B,) or None, beats (B, 2) or None, plans
        (B, 12, L) or None -> (loss, stats). ``rolls`` is
        unused (the generator is judged on what it plays, not on real rolls); with a roll critic
        both critics count."""
        if self.roll_weight > 0:
            img, notes = self.G(z, labels, notes=True, keys=keys, beats=beats, plans=plans)
            logits, roll_logits = self.D(img, labels, notes=self.D.roll_view(notes),
                                         roll_noise=roll_noise_at(self.cfg, step), keys=keys, beats=beats)
            loss_img = F.softplus(-logits.float()).mean()
            loss_roll = F.softplus(-roll_logits.float()).mean()
            loss = loss_img + self.roll_weight * loss_roll
            stats = {"loss/G_img": loss_img.item(), "loss/G_roll": loss_roll.item()}
            if self.pc_weight > 0 and self.pc_real is not None:
                pc = (pitch_class_spread(notes[0]).mean(0) - self.pc_real).abs().sum()
                loss = loss + self.pc_weight * pc
                stats["loss/G_pc"] = pc.item()
            if self.scale_weight > 0 and self.scale_real is not None and self._on(step, self.scale_start):
                q = scale_share(notes[0])
                gap = (q.mean() - self.scale_real[0]).abs() + (q.std() - self.scale_real[1]).abs()
                loss = loss + self.scale_weight * gap
                stats.update({"loss/G_scale": gap.item(), "G/scale_share": q.mean().item(),
                              "G/scale_share_real": self.scale_real[0].item()})
            if self.strike_real is not None and self._on(step, self.strike_start):
                if self.strike_weight > 0:
                    gap = strike_gap(notes[0], self.strike_real)
                    loss = loss + self.strike_weight * gap
                    stats["loss/G_strike"] = gap.item()
                if self.ghost_weight > 0:
                    ghost = ghost_strikes(notes[0], int(self.strike_real.numel()))
                    loss = loss + self.ghost_weight * ghost
                    stats["loss/G_ghost"] = ghost.item()
            if self.clash_weight > 0:
                clash = clash_share(notes[0])
                loss = loss + self.clash_weight * clash
                stats["loss/G_clash"] = clash.item()
            if self.degree_weight > 0 and self.degree_real is not None:
                gap = degree_gap(degree_profiles(notes[0]), self.degree_real)
                loss = loss + self.degree_weight * gap
                stats["loss/G_degrees"] = gap.item()
            if self.plan_weight > 0 and plans is not None:
                fpl = int(self.cfg.frames_per_latent)
                edges = beat_edges(beats, plans.shape[-1], fpl) if self.cfg.plan_on_beats else None  # as G's
                gap = plan_gap(notes[0], plans, fpl, self.cfg.plan_distance, self.cfg.plan_rests, edges)
                loss = loss + self.plan_weight * gap
                stats["loss/G_plan"] = gap.item()
                rest = rest_strength(notes[0], plans, fpl, edges) if self.cfg.plan_rests else None
                if rest is not None:
                    stats["G/rest_strength"] = rest
            loss = loss + self._movement(img, stats)
            return loss, {"loss/G": loss.item(), **stats}
        img = self.G(z, labels, keys=keys, beats=beats, plans=plans)
        loss = F.softplus(-self.D(img, labels, keys=keys).float()).mean()
        stats = {}
        loss = loss + self._movement(img, stats)
        return loss, {"loss/G": loss.item(), **stats}

    def _movement(self, img: torch.Tensor, stats: dict):
        """The loudness-movement term of G's step (0 when off or before the first critic step)."""
        if self.movement_weight <= 0 or self.movement_real is None:
            return 0.0
        gap = movement_gap(band_movement(img, self.cfg), self.movement_real)
        stats["loss/G_movement"] = gap.item()
        return self.movement_weight * gap

    def _on(self, step: int, start_kimg: float) -> bool:
        """Whether a term that starts at ``start_kimg`` thousand real clips counts at step ``step``."""
        return step * self.cfg.batch_size / 1000.0 >= start_kimg

    def state_dict(self) -> dict:
        """What the next step reads from earlier ones: the degree term's bank of real clips."""
        return {} if self.degree_real is None else {"degree_real": [t.cpu() for t in self.degree_real]}

    def load_state_dict(self, d: dict) -> None:
        held = d.get("degree_real")
        self.degree_real = None if held is None else tuple(held)
