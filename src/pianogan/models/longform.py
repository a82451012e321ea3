"""``longform``: a time-convolutional, style-conditioned GAN for piano pieces of any length.

Written for issue 10 from the ideas of its anchors (never their code): Musika's split of a
global latent (held for the whole piece) from local latents (one per second of music), UNAGAN's
generator that is convolutional along time so one model makes any length, StyleGAN2's style
path (a mapping network whose output modulates every layer), and projection discriminators for
the labels.

Generator, for a piece of L local steps (``frames_per_latent`` STFT frames each):
    z = [z_global (n, g) | z_local (n, L * l)] ~ N(0, 1), flattened, so ``sample_z(n)`` and
    ``G(z)`` keep the interface of every family; a longer z is a longer piece.
    style label -> embedding, added to z_global -> mapping MLP -> w (n, w_dim)
    z_local (n, l, L) -> conv -> dilated residual blocks at the coarse rate (phrases) ->
    ``n_up`` times [upsample x2, two convs] -> features (n, C, T = L * 2^n_up)
    every conv is FiLM-modulated by w (scale and shift per channel: no statistics over time,
    so a 10 s clip and a 10 min piece are made by the same function)
    outside training the global latent may drift along a path through fresh anchors (one w per
    coarse step, :func:`drift_path`), so a long piece travels through keys as music does
    head "notes": key onsets and damper gates -> :class:`~.piano_render.PianoRenderer`
    head "direct": a 1x1 conv to the F frequency rows, tanh (the ablation without note bias)

Discriminator (:mod:`.longform_critic`): a spectrogram critic with a local (texture) and a
global (structure, style) head, and a critic of the piano roll played (:mod:`.roll_critic`).

Configuration and named presets: :mod:`.longform_config`. Data-dependent initialisation before
training (the renderer's fit, the plan bank): :mod:`.longform_init`.

Loss (``pianogan.losses.longform``): non-saturating logistic with lazy R1, conditional on the
labels when the dataset has them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..clusters import drop_clashes
from ..errors import PianoGANError
from ..keys import N_KEYS_MUSICAL, calibration_shifts, shifts_to_key, transpose
from ..modes import KEY_WINDOW_SECONDS, raise_leading_tones, snap_modes
from .beat_clock import DEFAULT_SECONDS, N_CHANNELS, N_QUANTILES, beat_clock, draw_periods, phase_wander
from .harmony_plan import PLAN_CLASSES, beat_edges, chain_plans, frame_plans, recombine_plans, rest_channel
from .layers import he_init
from .longform_config import CONFIGS, SAMPLING_FIELDS, Config, configure, upgrade_fields
from .longform_critic import Discriminator
from .longform_dynamics import apply_strike_map
from .longform_init import prepare  # the family interface's data-dependent initialisation
from .piano_render import N_KEYS, PianoRenderer, drop_dampered, fill_damper_dips, lift_dampers


# Key onsets are softplus(NOTE_SHARPNESS * logit): a logit range of about [-1, 0.5] spans silence
# (3e-4) to a loud strike (~4), so the head needs no large weights or biases to play sparse notes.
NOTE_SHARPNESS = 8.0


# ---------------------------------------------------------------------------------- layers
def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class FiLMConv(nn.Module):
    """Conv1d ("same" padding) whose output is scaled and shifted per channel by w."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, kernel: int = 3, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.film = nn.Linear(w_dim, 2 * c_out)

    def start(self) -> None:
        """FiLM starts as the identity; the style path grows in during training."""
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x (n, c_in, T); w (n, w_dim), or (n, S, w_dim) a style per coarse step (drift), each
        step's scale and shift then interpolated linearly over the T / S frames it covers."""
        if w.dim() == 2:
            film = self.film(w).unsqueeze(-1)
        else:
            film = self.film(w).transpose(1, 2)
            film = F.interpolate(film, size=x.shape[-1], mode="linear", align_corners=False)
        scale, shift = film.chunk(2, dim=1)
        return self.conv(x) * (1 + scale) + shift


class Block(nn.Module):
    """Two FiLM convs with a residual path; optional x2 nearest upsampling first."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, up: bool, dilation: int = 1):
        super().__init__()
        self.up = up
        self.c1 = FiLMConv(c_in, c_out, w_dim, 3, dilation)
        self.c2 = FiLMConv(c_out, c_out, w_dim, 3, 1)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        h = self.c2(_act(self.c1(_act(x), w)), w)
        return (self.skip(x) + h) / math.sqrt(2)


def noise_seeds(z: torch.Tensor) -> list[int]:
    """A seed per sample, from its global latent: deterministic, different for different z."""
    key = (z[:, :8].double().cpu() * 1e6).round().long()
    return [int(hash(tuple(row.tolist())) % (2 ** 31)) for row in key]


class Generator(nn.Module):
    """z (n, z_global + L * z_local) [+ labels (n,)] -> image (n, 1, F, L * frames_per_latent)."""

    def __init__(self, cfg: Config, image_shape: tuple[int, int]):
        super().__init__()
        self.cfg = cfg
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.latent = "normal"
        fpl = cfg.frames_per_latent
        if self.image_shape[1] % fpl:
            raise PianoGANError(f"longform: the image width ({self.image_shape[1]}) must be a multiple "
                                f"of frames_per_latent ({fpl})")
        self.n_local = self.image_shape[1] // fpl  # local latents of a training clip
        self.z_dim = cfg.z_global + cfg.z_local * self.n_local
        self.n_styles = len(cfg.styles)
        self.embed = nn.Embedding(self.n_styles, cfg.z_global) if self.n_styles else None
        self.key_embed = nn.Embedding(N_KEYS_MUSICAL, cfg.z_global) if cfg.key_labels else None
        self.mapping = nn.Sequential(nn.Linear(cfg.z_global, cfg.w_dim), nn.LeakyReLU(0.2),
                                     nn.Linear(cfg.w_dim, cfg.w_dim), nn.LeakyReLU(0.2))
        ch = cfg.g_channels
        self.inp = nn.Conv1d(cfg.z_local, ch[0], 1)
        self.coarse = nn.ModuleList(Block(ch[0], ch[0], cfg.w_dim, False, d) for d in cfg.coarse_dilations)
        self.ups = nn.ModuleList(Block(ch[i], ch[i + 1], cfg.w_dim, True) for i in range(len(ch) - 1))
        n_bins = self.image_shape[0]
        if cfg.head == "notes":
            self.to_notes = nn.Conv1d(ch[-1], 2 * N_KEYS, 1)
            self.render = PianoRenderer(n_bins, cfg.sample_rate, cfg.n_fft, cfg.hop_length,
                                        cfg.stats_mean, cfg.stats_std, cfg.clip_sigma, cfg.eps,
                                        cfg.n_partials, cfg.decay_seconds, cfg.n_decays,
                                        cfg.velocity_layers, cfg.post_channels, cfg.post_lookahead)
        else:
            self.to_rows = nn.Conv1d(ch[-1], n_bins, 1)
        # the clock enters the coarse level and every upsampled one, and its period the mapping
        self.clock_in = (nn.ModuleList(nn.Conv1d(N_CHANNELS, c, 1) for c in ch) if cfg.beat_clock else None)
        self.tempo_embed = nn.Linear(1, cfg.z_global) if cfg.beat_clock else None
        # the harmony plan enters every level too; its bank (filled by ``prepare``) is kept with
        # the weights, so a shipped file samples plans without the training data
        plan_channels = PLAN_CLASSES + int(cfg.plan_rests)  # the rest channel (harmony_plan.rest_channel)
        self.plan_in = (nn.ModuleList(nn.Conv1d(plan_channels, c, 1) for c in ch) if cfg.harmony_plan else None)
        if cfg.harmony_plan:
            self.register_buffer("plan_bank", torch.zeros(cfg.plan_bank_size, PLAN_CLASSES, self.n_local))
            self.register_buffer("plan_styles", torch.zeros(cfg.plan_bank_size, dtype=torch.long))
            self.register_buffer("plan_count", torch.zeros((), dtype=torch.long))
        he_init(self)
        for m in self.modules():
            if isinstance(m, FiLMConv):
                m.start()
        if cfg.head == "notes" and cfg.post_identity_start:
            self.render.start_post()
        if self.clock_in is not None:  # the clock grows in from nothing, like the style path
            for m in [*self.clock_in, self.tempo_embed]:
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)
        if self.plan_in is not None:  # and so does the plan
            for m in self.plan_in:
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)
        if cfg.head == "notes" and cfg.roll_weight > 0 and cfg.render_fit_steps > 0:
            # The renderer is fitted to real rolls before training (``prepare``) and then held:
            # the adversarial game is about what to play, not about re-learning the instrument.
            # Only the texture noise strength stays free (when the model uses it).
            for name, p in self.render.named_parameters():
                p.requires_grad_(name == "log_texture" and cfg.texture)
        with torch.no_grad():
            if cfg.head == "notes":
                self.to_notes.weight.mul_(0.15)
                self.to_notes.bias[:N_KEYS].fill_(-1.0)  # x NOTE_SHARPNESS: a few strikes per second
                self.to_notes.bias[N_KEYS:].fill_(0.5)  # dampers open: sigmoid(4) = 0.98
            else:
                self.to_rows.weight.mul_(0.25)

    # -- latents
    def sample_z(self, n: int, generator: torch.Generator | None = None, device=None,
                 n_local: int | None = None) -> torch.Tensor:
        """(n, z_global + n_local * z_local) N(0, 1) latents; ``n_local`` local steps (default:
        a training clip's) — each adds ``frames_per_latent`` frames to the piece."""
        if device is None:
            device = generator.device if generator is not None else next(self.parameters()).device
        k = self.n_local if n_local is None else int(n_local)
        return torch.randn(n, self.cfg.z_global + k * self.cfg.z_local, generator=generator, device=device)

    def frames_for(self, n_local: int) -> int:
        return int(n_local) * self.cfg.frames_per_latent

    def default_labels(self, z: torch.Tensor) -> torch.Tensor:
        """A style for each latent when none is asked for: drawn from the config's ``style_shares``
        (uniform without them) by a deterministic function of z."""
        return _draw(_uniform(z[:, 0]), self.cfg.style_shares or [1.0] * self.n_styles)

    def default_keys(self, z: torch.Tensor) -> torch.Tensor:
        """A key for each latent when none is asked for (a key-labelled model): drawn from the
        config's ``key_shares`` (uniform without them) by a deterministic function of z."""
        return _draw(_uniform(z[:, min(1, self.cfg.z_global - 1)]), self.cfg.key_shares or [1.0] * N_KEYS_MUSICAL)

    def default_beats(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                      bpm: float | None = None) -> torch.Tensor:
        """Beats (n, 2) (period in frames, phase in radians) for a beat-clock model: the period
        ``bpm`` beats a minute, else drawn from the style's ``beat_periods`` (0.6 s without them),
        and the phase, by deterministic functions of z."""
        fps = self.frames_per_second
        n = z.shape[0]
        if bpm is not None:
            period = torch.full((n,), 60.0 / float(bpm), device=z.device)
        elif self.cfg.beat_periods:
            table = torch.tensor(self.cfg.beat_periods, dtype=torch.float32, device=z.device).reshape(-1, N_QUANTILES)
            rows = labels if self.n_styles and labels is not None else torch.zeros(n, dtype=torch.long, device=z.device)
            period = draw_periods(_uniform(z[:, min(2, self.cfg.z_global - 1)]), table[rows.long()])
        else:
            period = torch.full((n,), DEFAULT_SECONDS, device=z.device)
        phase = 2 * math.pi * _uniform(z[:, min(3, self.cfg.z_global - 1)])
        return torch.stack([period * fps, phase], dim=1)

    def default_plans(self, z: torch.Tensor, labels: torch.Tensor | None, n_steps: int) -> torch.Tensor:
        """Plans (n, 12, n_steps) for a harmony-plan model when none is given: strung from the
        bank of training plans, of each clip's style, by a deterministic function of z
        (:func:`~.harmony_plan.chain_plans`; second by second with ``plan_recombine``)."""
        seeds = [s ^ 0x91A7 for s in noise_seeds(z)]
        styles = labels if self.n_styles else None
        if self.cfg.plan_recombine > 0:
            return recombine_plans(self.plan_bank, self.plan_styles, int(self.plan_count), styles, seeds, n_steps,
                                   self.cfg.plan_recombine).to(z.device)
        return chain_plans(self.plan_bank, self.plan_styles, int(self.plan_count), styles, seeds, n_steps,
                           self.cfg.plan_key_steps, self.cfg.plan_key_hold).to(z.device)

    def fill_plan_bank(self, plans: torch.Tensor, styles: torch.Tensor | None = None, seed: int = 0) -> int:
        """Keep up to ``plan_bank_size`` of the training clips' ``plans`` (N, 12, n_local) (a
        seeded choice) with their ``styles`` (N,) in the model's bank. Returns how many."""
        rng = np.random.default_rng(seed)
        k = min(len(plans), self.cfg.plan_bank_size)
        pick = torch.from_numpy(np.sort(rng.choice(len(plans), k, replace=False)))
        with torch.no_grad():
            self.plan_bank.zero_()
            self.plan_bank[:k] = plans[pick].to(self.plan_bank)
            self.plan_styles.zero_()
            if styles is not None:
                self.plan_styles[:k] = styles[pick].to(self.plan_styles)
            self.plan_count.fill_(k)
        return k

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Runs of session 40 also kept each plan's key, now read from the bank when sampling (the
        # same keys: checked on runs/plan-s0's checkpoint and export).
        state_dict.pop(prefix + "plan_keys", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- forward
    @property
    def frames_per_second(self) -> float:
        """STFT frames (and beat-clock ticks) per second."""
        return self.cfg.sample_rate / self.cfg.hop_length

    @property
    def step_seconds(self) -> float:
        """Seconds of music per local latent."""
        return self.cfg.frames_per_latent * self.cfg.hop_length / self.cfg.sample_rate

    def w_of(self, z_global: torch.Tensor, labels: torch.Tensor | None,
             keys: torch.Tensor | None = None, beats: torch.Tensor | None = None) -> torch.Tensor:
        """z_global (n, g), or (n, S, g) one per coarse step -> w (n, w_dim) or (n, S, w_dim)."""
        cond = 0.0
        if self.embed is not None:
            cond = cond + self.embed(labels)
        if self.key_embed is not None and keys is not None:
            cond = cond + self.key_embed(keys)
        if self.tempo_embed is not None and beats is not None:  # log period, 0 at the default
            default = DEFAULT_SECONDS * self.frames_per_second
            cond = cond + self.tempo_embed(torch.log(beats[:, :1].float() / default))
        if torch.is_tensor(cond) and z_global.dim() == 3:
            cond = cond[:, None]  # the same labels at every step
        return self.mapping(z_global + cond)

    def features(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                 truncation_psi: float | None = None, keys: torch.Tensor | None = None,
                 drift_seconds: float | None = None, beats: torch.Tensor | None = None,
                 wander: float | None = None, plans: torch.Tensor | None = None) -> torch.Tensor:
        """Latents -> features (n, C, T). ``plans`` (n, 12, L): the harmony plan of a
        harmony-plan model, one profile per local step (None: :meth:`default_plans`).
        ``truncation_psi`` (None: the config's ``truncation``)
        scales the global latent outside training, after the default style (and key) is drawn
        from it; ``keys`` (n,) the key labels of a key-labelled model; ``drift_seconds`` (None:
        the config's) the global latent's drift outside training (:func:`drift_path`); ``beats``
        (n, 2) the beat (period in frames, phase) of a beat-clock model (None:
        :meth:`default_beats`); ``wander`` (None: the config's ``clock_wander``) how far its phase
        wanders outside training, rms radians (0: a strict beat)."""
        cfg = self.cfg
        extra = z.shape[1] - cfg.z_global
        if extra <= 0 or extra % cfg.z_local:
            raise PianoGANError(f"longform: latent width {z.shape[1]} is not z_global + k * z_local")
        if self.n_styles and labels is None:
            labels = self.default_labels(z)
        if self.key_embed is not None and keys is None:
            keys = self.default_keys(z)
        z_global = z[:, :cfg.z_global]
        n_steps = extra // cfg.z_local
        drift = cfg.drift_seconds if drift_seconds is None else float(drift_seconds)
        if drift > 0 and not self.training:
            z_global = drift_path(z_global, n_steps, drift / self.step_seconds,
                                  [s ^ 0x5EED for s in noise_seeds(z)])  # not the texture noise's stream
        psi = cfg.truncation if truncation_psi is None else float(truncation_psi)
        if psi != 1.0 and not self.training:
            z_global = z_global * psi
        if self.clock_in is not None and beats is None:
            beats = self.default_beats(z, labels)
        w = self.w_of(z_global, labels, keys, beats)
        x = self.inp(z[:, cfg.z_global:].reshape(z.shape[0], -1, cfg.z_local).transpose(1, 2))
        clock = None if self.clock_in is None else self._clock(z, beats.to(x.device), n_steps * cfg.frames_per_latent,
                                                               wander)
        if self.plan_in is not None and plans is None:
            plans = self.default_plans(z, labels, n_steps)
        if self.plan_in is not None and self.cfg.plan_rests:  # once, not at every level
            plans = rest_channel(plans)
        if self.plan_in is not None and self.cfg.plan_on_beats:  # held frame by frame between beat edges
            fpl = cfg.frames_per_latent
            plans = frame_plans(plans[..., :n_steps], beat_edges(beats, n_steps, fpl), n_steps * fpl)
        x = self._cue(self._tick(x, clock, 0), plans, 0)
        for blk in self.coarse:
            x = blk(x, w)
        for i, blk in enumerate(self.ups):
            x = self._cue(self._tick(blk(x, w), clock, i + 1), plans, i + 1)
        return _act(x)

    def _cue(self, x: torch.Tensor, plans: torch.Tensor | None, level: int) -> torch.Tensor:
        """Features x (n, C, T') plus the harmony plan (n, 12, L; 13 with its rest channel), held
        over each step's frames; a plan held frame by frame (``plan_on_beats``: (n, 12, T), T a
        multiple of T') is averaged over each of x's frames."""
        if self.plan_in is None:
            return x
        p = plans.to(device=x.device, dtype=x.dtype)
        if self.cfg.plan_on_beats:
            p = p.unflatten(-1, (x.shape[-1], -1)).mean(-1)
        else:
            p = p[..., :x.shape[-1]]
            if x.shape[-1] != p.shape[-1]:
                p = p.repeat_interleave(x.shape[-1] // p.shape[-1], dim=-1)
        return x + self.plan_in[level](p)

    def _clock(self, z: torch.Tensor, beats: torch.Tensor, frames: int,
               rms: float | None = None) -> torch.Tensor:
        """The generator's clock (:func:`beat_clock`), its phase wandering by ``rms`` radians
        (None, and always while training: the config's ``clock_wander``): random while training, a
        function of z otherwise."""
        rms = self.cfg.clock_wander if rms is None or self.training else float(rms)
        wander = None
        if rms > 0:
            seeds = None if self.training else [s ^ 0xC10C for s in noise_seeds(z)]
            wander = phase_wander(z.shape[0], frames, self.frames_per_second, rms, seeds, beats.device)
        return beat_clock(beats, frames, wander=wander)

    def _tick(self, x: torch.Tensor, clock: torch.Tensor | None, level: int) -> torch.Tensor:
        """Features x (n, C, T') plus the clock (n, N_CHANNELS, T) averaged to T' frames."""
        if clock is None:
            return x
        factor = clock.shape[-1] // x.shape[-1]
        c = clock if factor == 1 else clock.unflatten(-1, (-1, factor)).mean(-1)
        return x + self.clock_in[level](c.to(x.dtype))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, notes: bool = False,
                truncation_psi: float | None = None, key: int | None = None,
                keys: torch.Tensor | None = None, drift_seconds: float | None = None,
                beats: torch.Tensor | None = None, wander: float | None = None,
                plans: torch.Tensor | None = None, **kwargs):
        """Image (n, 1, F, T); with ``notes`` (the "notes" head) also (strikes, held) (n, 88, T).
        ``truncation_psi``, ``key``, ``keys``, ``drift_seconds``, ``beats``, ``wander``, ``plans``: see
        :meth:`features` and :meth:`played`."""
        if self.cfg.head == "notes":
            onsets, gate = self.played(z, labels, truncation_psi, key, keys, drift_seconds, beats, wander, plans)
            # Texture noise: random while training, a function of z otherwise (same z, same take).
            seeds = None if self.training else noise_seeds(z)
            img = self.render(onsets, gate, seeds, texture=self.cfg.texture).unsqueeze(1)
            return (img, (onsets, gate)) if notes else img
        return torch.tanh(self.to_rows(self.features(z, labels, truncation_psi, keys, drift_seconds,
                                                     beats, wander, plans))).unsqueeze(1)

    def played(self, z: torch.Tensor, labels: torch.Tensor | None = None,
               truncation_psi: float | None = None, key: int | None = None,
               keys: torch.Tensor | None = None, drift_seconds: float | None = None,
               beats: torch.Tensor | None = None,
               wander: float | None = None, plans: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(strikes, dampers) (n, 88, T) the "notes" head plays for z; outside training moved to
        ``key`` (an index into pianogan.keys.KEY_NAMES, or its relative in the clip's mode), else
        to a key drawn from the corpus's when the config has ``key_shares`` (a function of z; from
        the clip's style's with ``style_key_shares``).
        A key-labelled model is instead *asked* for its key (``keys`` (n,), or ``key`` for all,
        else :meth:`default_keys`) and nothing is transposed."""
        if self.n_styles and labels is None:  # drawn once: the style played is the style whose keys are used
            labels = self.default_labels(z)
        if self.key_embed is not None:
            if keys is None and key is not None:
                keys = torch.full((z.shape[0],), int(key), dtype=torch.long, device=z.device)
            return self._notes(self.features(z, labels, truncation_psi, keys, drift_seconds, beats, wander, plans),
                               labels)
        onsets, gate = self._notes(self.features(z, labels, truncation_psi, drift_seconds=drift_seconds, beats=beats,
                                                 wander=wander, plans=plans), labels)
        if self.training or (key is None and not self.cfg.key_shares):
            return onsets, gate
        if key is not None:
            shifts = shifts_to_key(onsets, int(key))
        else:
            shares = self.cfg.key_shares
            if self.n_styles and self.cfg.style_key_shares:  # each clip's own style's keys
                shares = np.reshape(self.cfg.style_key_shares, (self.n_styles, -1))[labels.cpu().numpy()]
            shifts = calibration_shifts(onsets, shares, _uniform(z[:, min(1, self.cfg.z_global - 1)]))
        return transpose(onsets, shifts), transpose(gate, shifts)

    def _notes(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Features -> (key strikes (n, 88, T) >= 0, damper gates (n, 88, T) in [0, 1]); ``labels``
        (n,) the clips' styles (for a dynamics map fitted per style).

        The head outputs each key's *pressure* k(t) >= 0 and a key is struck by how much k
        rises: strike(t) = relu(k(t) - k(t-1)) (k(-1) = 0). A held level makes no new sound, so
        the model cannot hide in a constant drone (which a head that outputs strikes directly
        did, in 500 steps); every sound it makes is an onset that then decays.
        """
        key_logit, gate_logit = (NOTE_SHARPNESS * self.to_notes(h).float()).chunk(2, dim=1)
        k = F.softplus(key_logit)
        # A rise below the floor is no strike: real rolls hold no strikes that faint, and a
        # haze of them (measured: a frame's strikes summed to 13 vs 2.8 real) became smeared
        # clusters and broadband clicks that the roll critic, under its instance noise, missed.
        strikes = F.relu(k - F.pad(k, (1, 0))[..., :-1] - self.cfg.strike_floor)
        gate = torch.sigmoid(gate_logit)
        fill = self.cfg.gate_fill_training_seconds if self.training else self.cfg.gate_fill_seconds
        gate = fill_damper_dips(gate, round(fill * self.frames_per_second))
        if self.cfg.strike_lifts_damper:
            gate = lift_dampers(strikes, gate)
        if self.training:
            return strikes * self.cfg.strike_gain, gate
        # Sampling only: what a piano cannot play is dropped, remapped or capped.
        if self.cfg.drop_dampered_strikes:
            strikes = drop_dampered(strikes, gate)
        if self.cfg.maps_dynamics:
            strikes = apply_strike_map(strikes, self.cfg.strike_map, self.cfg.ghost_scale, labels)
        strikes = strikes * self.cfg.strike_gain
        if self.cfg.strike_ceiling > 0:
            strikes = strikes.clamp(max=self.cfg.strike_ceiling)
        if self.cfg.mode_snap_seconds > 0:
            strikes, gate = snap_modes(strikes, gate, round(self.cfg.mode_snap_seconds * self.frames_per_second))
        if self.cfg.leading_tone_seconds > 0:
            strikes, gate = raise_leading_tones(strikes, gate, round(KEY_WINDOW_SECONDS * self.frames_per_second),
                                                round(self.cfg.leading_tone_seconds * self.frames_per_second))
        if self.cfg.drop_clashes:
            strikes = drop_clashes(strikes)
        return strikes, gate

    def notes(self, z: torch.Tensor, labels: torch.Tensor | None = None,
              truncation_psi: float | None = None, key: int | None = None,
              keys: torch.Tensor | None = None, drift_seconds: float | None = None,
              beats: torch.Tensor | None = None, wander: float | None = None,
              plans: torch.Tensor | None = None) -> torch.Tensor:
        """Key strikes (n, 88, T) of the "notes" head (what the model plays, before rendering)."""
        return self.played(z, labels, truncation_psi, key, keys, drift_seconds, beats, wander, plans)[0]


def drift_path(z_global: torch.Tensor, n_steps: int, period: float, seeds: list[int]) -> torch.Tensor:
    """The global latent of each coarse step (n, n_steps, g) of a drifting piece.

    Anchor 0 is the piece's own ``z_global`` (n, g) at step 0; anchor k, at step k * ``period``
    (in coarse steps, > 0), is a fresh N(0, I) draw from a generator seeded by ``seeds[i]`` (one per
    piece, a function of its latent: same latent, same piece; a longer piece starts the same).
    Between anchors a and b the path is cos(pi u / 2) a + sin(pi u / 2) b, u in [0, 1): for
    independent N(0, I) anchors every step is again exactly N(0, I), so each moment is a latent
    the model knows, and the path is continuous."""
    n, g = z_global.shape
    t = torch.arange(n_steps, dtype=torch.float64) / float(period)
    k = t.floor().long()
    u = (t - k).to(z_global.dtype)
    n_anchors = int(k.max()) + 2
    fresh = torch.stack([_anchors(s, n_anchors - 1, g) for s in seeds])
    anchors = torch.cat([z_global[:, None].cpu(), fresh.to(z_global.dtype)], 1).to(z_global.device)
    a, b = anchors[:, k], anchors[:, k + 1]  # (n, n_steps, g)
    u = u.to(z_global.device)[None, :, None]
    return torch.cos(0.5 * math.pi * u) * a + torch.sin(0.5 * math.pi * u) * b


def _anchors(seed: int, k: int, g: int) -> torch.Tensor:
    """(k, g) N(0, 1) anchors, drawn one at a time from one seeded stream, so the first anchors
    of a longer piece are those of a shorter one."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.stack([torch.randn(g, generator=gen) for _ in range(k)]) if k else torch.zeros(0, g)


def _uniform(x: torch.Tensor) -> torch.Tensor:
    """N(0, 1) values -> U(0, 1) (the normal CDF): draws that are a deterministic function of z."""
    return 0.5 * (1 + torch.erf(x.float() / math.sqrt(2)))


def _draw(u: torch.Tensor, shares) -> torch.Tensor:
    """U(0, 1) values (n,) -> class indices (n,) with probabilities ``shares`` (k,), by the CDF."""
    p = torch.tensor(shares, dtype=torch.float64)
    cdf = (p.cumsum(0) / p.sum()).float().to(u.device)
    return torch.bucketize(u.contiguous(), cdf, right=True).clamp_(0, len(p) - 1)


def build(cfg: Config, image_shape: tuple[int, int]) -> tuple[Generator, Discriminator]:
    """(G, D) for (F frequency bins, T frames) images, T a multiple of ``frames_per_latent``."""
    return Generator(cfg, image_shape), Discriminator(cfg, image_shape)


def make_loss(cfg: Config, G: nn.Module, D: nn.Module):
    """Non-saturating logistic with lazy R1, conditional on labels when the config has styles."""
    from ..losses.longform import LongformLoss

    return LongformLoss(cfg, G, D)


__all__ = ["CONFIGS", "SAMPLING_FIELDS", "Config", "Discriminator", "Generator", "build", "configure", "make_loss",
           "prepare", "upgrade_fields"]
