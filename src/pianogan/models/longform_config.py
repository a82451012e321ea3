"""The ``longform`` family's configuration: every hyperparameter as one typed dataclass, and the
named presets (``--config NAME``) as data. :mod:`.longform` builds the networks from it; the
critic and the loss read it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import PianoGANError
from .beat_clock import N_QUANTILES
from .harmony_plan import PLAN_DISTANCES


@dataclass
class Config:
    """Every hyperparameter of the ``longform`` family."""

    # --- latents and style
    z_global: int = 128
    z_local: int = 32
    w_dim: int = 256
    frames_per_latent: int = 32  # STFT frames per local latent (2^n_up; ~1 s at 31.25 fps)
    styles: tuple[str, ...] = ()  # label names, filled from the dataset (empty = unconditional)
    # Sampling-time truncation: outside training the global latent is scaled by this (toward the
    # mean style; the style label and the local latents are untouched). 1 = off. A few global
    # latents make clips far from the corpus: on the recipe's step 5500, with key calibration,
    # the FD over five draws was 22.7 at 1, 14.4 / 13.8 / 14.1 at 0.5 / 0.6 / 0.7 (picked on
    # draws 10-14, not the ones reported; docs/results.md, section 12).
    truncation: float = 0.6
    # Sampling-time drift of the global latent (seconds between its anchors; 0 = off, one global
    # latent for the whole piece). The global latent holds the key: on the session-14 model another
    # global latent with the same local ones kept the key of 2 of 24 20 s clips, other local latents
    # with the same global one 15 of 24. Held for a whole piece it kept one key more than music
    # does: consecutive 10 s windows of its 60 s pieces agreed 0.60 on the notes played, against
    # 0.54 for consecutive clips of the training rolls (0.60 with each piece weighing alike, what
    # the export aims at now; later models agree 0.64-0.75 undrifted). With drift the global
    # latent moves along a path through fresh anchors every ``drift_seconds`` (Musika's moving
    # latent coordinates for endless generation): each moment is again a N(0, I) global latent,
    # so every window is one the model was trained on, while a long piece travels through keys.
    # Export sets it to match the training rolls (models/longform_drift.py). Off in training (a
    # clip has one global latent).
    drift_seconds: float = 0.0
    # The corpus's share of each of the 24 keys (pianogan.keys.KEY_NAMES), read from the training
    # rolls at export; outside training each clip's notes are transposed to a key drawn from
    # them, in the clip's own mode (pianogan/keys.py says why). Empty: no key calibration.
    key_shares: tuple[float, ...] = ()
    # The corpus's share of each style (in ``styles`` order), read from the training labels at
    # export; outside training a latent with no style asked for plays one drawn from them, so an
    # unprompted set of pieces has the corpus's mix (the built-in corpus is 55 % chorales, 10 %
    # keyboard, 36 % quartets; uniform draws tripled the keyboard share). Empty: uniform.
    style_shares: tuple[float, ...] = ()
    # Key shares per style (24 per style, in ``styles`` order; export fills them with
    # ``key_shares``): the transposition above then draws each clip's key from its own style's.
    # Styles keep different keys (built-in chorales: D and A major lead; quartets: C and G), and
    # one corpus-wide table gave generated chorales the quartets' keys (pitch-class JS per style
    # 0.035 against real chorales; docs/results.md, section 17). Empty: ``key_shares`` for all.
    style_key_shares: tuple[float, ...] = ()
    # Key labels: each training clip's key (24 classes, Krumhansl-Kessler on its roll's strikes,
    # train/conditioning.py) is a condition like the style: embedded beside it in G's mapping
    # (added after truncation, so truncation cannot average major with minor) and projected on
    # in both critics. Outside training the key is drawn from ``key_shares`` (uniform without
    # them) or asked for, and nothing is transposed. Needs piano rolls (``roll_weight`` > 0).
    key_labels: bool = False
    # A beat clock (models/beat_clock.py): cos/sin features of each clip's beat (period and phase
    # read from its roll; drawn with its labels for a fake) added at every generator level; the
    # roll critic reads where the strikes fall on it. Outside training the period is drawn from
    # ``beat_periods`` or asked for (``generate --tempo``), the phase from the latent. Needs
    # piano rolls (``roll_weight`` > 0).
    beat_clock: bool = False
    # Beat-period quantiles in seconds, beat_clock.N_QUANTILES per style (in ``styles`` order; one
    # row for an unconditional model), read from the training rolls at export. Empty: 0.6 s.
    beat_periods: tuple[float, ...] = ()
    # Rubato: the generator's clock (not the critic's) wanders in phase by this rms in radians,
    # slowly (beat_clock.phase_wander), while training (random) and at sampling (from z). Real
    # clips' onsets wander about their fitted clock; given a perfect one, the beat model played
    # on a rigid grid (docs/results.md, section 22). 0: a steady clock.
    clock_wander: float = 0.0
    # A harmony plan (models/harmony_plan.py): each local latent's second gets the pitch-class
    # shares of strike strength a real clip played there, added at every generator level; in
    # training read from a real clip drawn with the style (and beat), and G pays ``plan_weight``
    # times the distance between what it plays and the plan; outside training strung from a bank
    # of ``plan_bank_size`` training plans kept in the model. Every run played each clip on fewer
    # pitch classes than the corpus, the largest part of its FD (section 43). Needs rolls.
    harmony_plan: bool = False
    # On G's parameters the critics' gradient was 15-70 times the plan gap's at step 250 of a run
    # at weight 2 (which never followed its plans); 20 brings them near one another (section 43).
    plan_weight: float = 20.0
    # How the plan gap measures a second against its plan (harmony_plan.plan_gap): "l1" (half the
    # L1 distance of the class shares) or "hellinger" (on their square roots: asks for the weak
    # classes too, which under L1 the generator dropped; section 44).
    plan_distance: str = "l1"
    # Tell G its plan's silent seconds (a 13th plan channel, 1 where a second has no strike) and
    # price the strikes it plays there in the plan gap (harmony_plan.plan_gap's ``rests``): the
    # corpus's rests and held chords are where its loudness moves most (section 47).
    plan_rests: bool = False
    # Move each plan window's edges to the beat nearest them (harmony_plan.beat_edges, on the
    # clip's beat clock), in training and at sampling: G strikes its next chord where the plan
    # changes, which on the latents' 1 s grid was a chord every 1.02 s whatever the tempo
    # (section 48). Needs harmony_plan and beat_clock.
    plan_on_beats: bool = False
    plan_bank_size: int = 1024
    # How a long piece's plans move key, one to the next: 12 shares of a step of 0-11 semitones,
    # read at export from consecutive training clips of one piece (harmony_plan.key_steps).
    # Empty: a piece keeps its first plan's key.
    plan_key_steps: tuple[float, ...] = ()
    # How often a long piece's next plan keeps the scale instead, 0-1: mixed into the key steps
    # at this weight. Set at export so that consecutive 10 s windows keep their key as often as
    # real pieces (models/longform_drift.calibrate_hold): G's notes leave their plan's scale in
    # about a quarter of its windows, so plans that moved at the corpus's rate left 60 s pieces
    # agreeing less than real ones (section 44). A harmony-plan model's drift stays 0.
    plan_key_hold: float = 0.0
    # Outside training, string plans second by second instead (harmony_plan.recombine_plans):
    # each next second follows one of this many bank seconds nearest the current one, so the
    # progression is new while each step is one the corpus took. 0: whole bank plans.
    plan_recombine: int = 0
    # --- generator
    head: str = "notes"  # "notes" (harmonic-template renderer) or "direct"
    g_channels: tuple[int, ...] = (256, 256, 192, 160, 128, 128)  # coarse level, then per x2
    coarse_dilations: tuple[int, ...] = (1, 2, 4)
    n_partials: int = 48
    fit_templates: bool = True  # start the key templates from an NMF fit to the training data
    decay_seconds: float = 4.0
    n_decays: int = 4  # decay rates per key in the renderer
    velocity_layers: bool = True  # soft and hard strike templates (brightness follows velocity)
    post_channels: int = 128  # width of the renderer's correction net (0: none)
    # How many frames ahead the correction net sees (None: centred, ±6 frames). Centred, it pulls
    # the frame before each onset ~1 dB down; one frame ahead trained no better (section 35).
    post_lookahead: int | None = None
    # Start the correction net as the identity (its last layer zero) before the renderer's fit.
    # The generator's He initialisation re-drew that layer, so every recipe run began its fit from
    # a random correction: renderer ceiling 9.1 (three fits 8.9-9.9) against 8.1 (section 35).
    post_identity_start: bool = False
    texture: bool = False  # the renderer's random texture noise (raised the FD ceiling 8 -> 13)
    # Outside training, dips of the damper gates shorter than this are filled (piano_render.py,
    # fill_damper_dips): a damper that shuts and reopens on a ringing note is a tremolo no piano
    # plays. The rubato + strike run's FD fell from 3.20x to 2.88x the floor with 0.8 s
    # (docs/results.md, section 27). Like ``truncation``, it leaves training alone. 0: off.
    gate_fill_seconds: float = 0.0
    # Fill the dips shorter than this while training too, so the generator learns through the
    # fill and cannot lean on a flutter that sampling would remove (the rubato + strike run's level
    # rested on it: a gate that latches shut silenced it, FD 89). A 500-step fine-tune with 0.8 s
    # was worse (FD 3.13x against 2.59x on draws 10-14, section 28). A field of its own, so that
    # ``gate_fill_seconds`` stays a sampling setting. 0: training sees the raw gates.
    gate_fill_training_seconds: float = 0.0
    # Outside training, strikes (after ``strike_gain``) are capped at this: 1 is a key struck at
    # MIDI velocity 127, the hardest strike in the corpus; the renderer plays a stronger one
    # louder than any piano key. 0: no cap.
    strike_ceiling: float = 0.0
    # Outside training, strikes go through a monotone map first, fitted by ``export
    # --calibrate-from`` when this is on, so that each clip's r-th loudest strike is as loud as a
    # real clip's of its style (models/longform_dynamics.py; FD-neutral, section 29);
    # ``strike_map`` holds its knots, one map per style (set by the calibration, like
    # ``strike_gain``). The strikes below a map's first knot, the faint ones beyond the corpus's
    # count of strikes, are scaled by ``ghost_scale`` (0: dropped; the level then collapses).
    match_dynamics: bool = False
    ghost_scale: float = 1.0
    strike_map: tuple[float, ...] = ()
    # With a dynamics map, the export's level calibration sets ``ghost_scale`` first and the
    # strike gain only after it, so a model too loud or too soft in all plays its mapped notes
    # at the corpus's values and its faint strikes take the difference (section 30).
    level_through_ghosts: bool = False
    # Outside training, a strike on a key whose damper is down at the strike and the frame after
    # (gate < piano_render.SILENT_GATE) is dropped: it makes no tone, only the renderer's
    # broadband click. Real rolls have none (a struck key lifts its damper); the generators
    # strike a third of their notes and half their faint strikes that way. Dropping them made
    # the FD worse (2.80x -> 3.35x: the clicks stand in for real audio's noise; section 29). Off.
    drop_dampered_strikes: bool = False
    # In training and sampling, every strike lifts its key's damper for two frames (about 64 ms;
    # piano_render.lift_dampers), so a strike on a closed key makes a short tone, not only the
    # renderer's broadband click. Trained from step 0 (preset ``rubato-lift``) the model played the
    # corpus's count of notes at its dynamics, but its faint strikes became wrong notes: FD 5.09x,
    # in key 0.915, pitch classes 4.4x the floor (section 30). Off.
    strike_lifts_damper: bool = False
    # Outside training, each passage's other-mode third is moved onto its own (a flat third in a
    # major passage up to the major third, a major third in a minor passage down to the flat
    # one; pianogan/modes.py), the passage's key read from the strikes of this many seconds
    # around each frame. Every model blurs the modes that way (sections 34-37). FD-neutral on the
    # shipped weights; its in-key share rose by 0.025 with the pitch classes unchanged (section
    # 38). 0: off.
    mode_snap_seconds: float = 0.0
    # Outside training, of two keys struck within a frame of each other a semitone apart (or a
    # major seventh, a minor ninth, ...: pianogan/clusters.py), the softer is not played. The
    # models strike such clusters 13-25 times as often as the corpus. With the export's
    # calibration after it, FD-neutral on the shipped weights, and the faint strikes halved; the
    # pieces play fewer chromatic notes (in key +0.02, pitch classes 1.85x -> 2.14x the floor;
    # section 38). Set by `make model`'s export; off as a default of the config.
    drop_clashes: bool = False
    # Outside training, a flat seventh of the passage's key that the tonic a whole tone above
    # follows within this many seconds is raised to the leading tone (pianogan/modes.py;
    # applied before drop_clashes). The corpus raises 73 % of the sevenths that step up to the
    # tonic in major passages and 54 % in minor ones, the shipped weights 28 % and 6 % (section
    # 39). 0: off.
    leading_tone_seconds: float = 0.0
    # --- discriminator
    log_rows: int = 160  # log-frequency rows of D's pitch view
    d_channels: tuple[int, ...] = (32, 64, 96)  # 2-D stages on the log rows (stride 2 each)
    d_width: int = 256  # 1-D trunk width
    mbstd_group: int = 4
    # --- piano rolls (datasets with performance MIDI: data/rolls.py); 0 when the data has none
    roll_weight: float = 1.0  # weight of the roll critic's loss beside the spectrogram critic's
    roll_width: int = 128
    roll_view_power: float = 0.5  # the roll critic sees strikes^p (models/roll_critic.py says why)
    # The roll critic also reads the notes as scale degrees of each clip's own key (major and minor
    # apart: models/roll_critic.py, scale_degrees), where a missing leading tone looks the same in
    # every key.
    roll_degrees: bool = False
    # The roll critic also reads the onsets' autocorrelation up to 1.5 s: whether they keep a beat
    # (models/roll_lags.py; the recipe's model plays almost without one).
    roll_pulse: bool = False
    roll_energy_seconds: float = 0.0  # window (s) of the roll critic's strike-energy view; 0: none (session 8: unproven, off)
    # G matches the reals' sorted pitch-class shares of strike energy (losses/longform.py). Off: at
    # 2.0 it matched them within 200 steps, but the FD's MFCC part rose as its chroma part fell
    # (docs/results.md, section 11).
    pc_match_weight: float = 0.0
    # G matches the reals' in-scale share of strike energy (each clip's share inside its best
    # major scale; batch mean and spread, losses/longform.py). The recipe's model put its loud
    # notes inside one scale far more than real music does (10 s clips, strike^2-weighted: 0.972
    # against 0.937; counted notes: 0.942 against 0.928), the root of both its in-key excess and
    # the pitch-class part of its FD (docs/results.md, section 24). 0: off.
    scale_match_weight: float = 0.0
    scale_match_start_kimg: float = 0.0  # ... from this many thousand real clips shown (0: from the start)
    # G matches the distribution of the reals' strike values: its k loudest strikes in a batch
    # against the k real onsets of the critic batch, in log units (losses/longform.py). The
    # recipe's model struck most notes far softer than the corpus and a few far louder than any
    # piano key (median velocity 41 against 69; docs/results.md, section 25). 0: off.
    strike_match_weight: float = 0.0
    strike_match_start_kimg: float = 0.0  # ... from this many thousand real clips shown
    # ... and pays for its strikes beyond those k, each as if matched to an unstruck real position
    # (log(1 + s/0.01)); same start. It played ~3x the corpus's onsets, mostly soft (section 25).
    # At weight 1 in a 500-step fine-tune it cut them to the corpus's count and the sound went
    # with them (FD 3.6x -> 8.1x the floor, section 26): the model's level rests on them.
    strike_ghost_weight: float = 0.0
    # G pays for semitone clusters: the share of its batch's strike strength on the softer side of
    # a pair struck within a frame a semitone apart at any octave (losses/longform.py,
    # clash_share), so that it chooses between two neighbouring notes instead of striking both
    # (27 % of the shipped weights' onsets, the corpus's 3 %; section 38). 0: off.
    clash_price_weight: float = 0.0
    # G matches the reals' loudness movement: per mel band, the distribution over clips of the
    # level's spread over time (losses/movement.py). Every recipe run that missed the FD bar
    # missed most there, its clips all moving alike (spread between clips 0.56-0.69 of the
    # corpus's on section 40's run). At weight 1 on that run's seed and CPU: FD 3.89x -> 3.30x
    # the floor, its movement group 3.65 -> 1.56 (section 41); on seed 1 3.84x (section 42). 0: off.
    movement_match_weight: float = 0.0
    # G matches the reals' scale degrees: per mode and degree of each clip's own key, the
    # distribution over clips of its share of strike energy (losses/degrees.py). Every run
    # overplays the tonic and blurs the modes, and the pitch-class group is the largest part of
    # its FD (section 41). At weight 1 (seed 1, step 4000) it brought the tonic down by playing
    # chromatic degrees 2-3x the corpus's: FD 4.98x, worse (section 42). Needs rolls. 0: off.
    degree_match_weight: float = 0.0
    roll_noise: float = 0.05  # instance noise on the roll critic's inputs (real and generated) at start
    roll_noise_end: float = 0.01  # ... falling linearly to this over roll_noise_kimg
    roll_noise_kimg: float = 48.0  # thousands of real clips shown (3000 steps of 16)
    strike_floor: float = 0.01  # key-pressure rises below this make no sound (velocity ~13 of 127)
    strike_gain: float = 1.0  # strikes are scaled by this before rendering (set by longform_level)
    render_fit_steps: int = 800  # supervised fit of the renderer to real rolls before training
    # --- the dataset, filled by ``configure`` (the renderer works in its units)
    sample_rate: int = 8000
    n_fft: int = 1024
    hop_length: int = 256
    clip_sigma: float = 3.0
    eps: float = 1e-4
    stats_mean: float = -3.6
    stats_std: float = 2.4
    # --- optimisation and loss
    batch_size: int = 16
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.99)
    adam_eps: float = 1e-8
    grad_clip: float = 0.0
    ema_half_life_kimg: float = 2.0
    ema_rampup: float = 0.05
    # An optional linear ramp-down of both rates (train/lr.py). Off: ramping to 0.1 over the
    # recipe's last 2000 steps (start 72, length 32 kimg) ended at FD 21.0 against 15.1 with
    # constant rates, and swung as much on the way (docs/results.md, session 8).
    lr_decay_start_kimg: float = 0.0
    lr_decay_kimg: float = 0.0
    lr_final: float = 0.1
    r1_gamma: float = 2.0  # StyleGAN2 heuristic 0.0002 * H * W / batch for 513x320, batch 16
    r1_interval: int = 4
    n_critic: int = 1

    @property
    def maps_dynamics(self) -> bool:
        """Whether sampling applies a dynamics map: asked for and fitted (``strike_map`` set)."""
        return bool(self.match_dynamics and self.strike_map)

    def __post_init__(self) -> None:
        self.styles = tuple(str(s) for s in self.styles)
        self.g_channels = tuple(int(c) for c in self.g_channels)
        self.d_channels = tuple(int(c) for c in self.d_channels)
        self.coarse_dilations = tuple(int(d) for d in self.coarse_dilations)
        self.betas = tuple(float(b) for b in self.betas)
        self.key_shares = tuple(float(s) for s in self.key_shares)
        if self.key_shares and len(self.key_shares) != 24:
            raise PianoGANError(f"longform: key_shares needs 24 values (one per key), got {len(self.key_shares)}")
        self.style_shares = tuple(float(s) for s in self.style_shares)
        if self.style_shares and (len(self.style_shares) != len(self.styles) or min(self.style_shares) < 0
                                  or sum(self.style_shares) <= 0):
            raise PianoGANError(f"longform: style_shares needs {len(self.styles)} non-negative values (one per "
                                f"style, not all 0), got {list(self.style_shares)}")
        self.style_key_shares = tuple(float(s) for s in self.style_key_shares)
        self.beat_periods = tuple(float(s) for s in self.beat_periods)
        self.plan_key_steps = tuple(float(s) for s in self.plan_key_steps)
        if self.plan_key_steps and (len(self.plan_key_steps) != 12 or min(self.plan_key_steps) < 0
                                    or sum(self.plan_key_steps) <= 0):
            raise PianoGANError(f"longform: plan_key_steps needs 12 non-negative shares, got {list(self.plan_key_steps)}")
        self.strike_map = tuple(float(s) for s in self.strike_map)
        if len(self.strike_map) % 2 or len(self.strike_map) == 2:
            raise PianoGANError(f"longform: strike_map needs knots (x..., y...) with at least two of each, "
                                f"got {len(self.strike_map)} values")
        if self.beat_periods and (len(self.beat_periods) != N_QUANTILES * max(1, len(self.styles))
                                  or min(self.beat_periods) <= 0):
            raise PianoGANError(f"longform: beat_periods needs {N_QUANTILES} positive values per style "
                                f"({N_QUANTILES * max(1, len(self.styles))}), got {len(self.beat_periods)}")
        if self.style_key_shares and len(self.style_key_shares) != 24 * len(self.styles):
            raise PianoGANError(f"longform: style_key_shares needs 24 values per style ({24 * len(self.styles)}), "
                                f"got {len(self.style_key_shares)}")
        if not 0.0 <= self.plan_key_hold <= 1.0:
            raise PianoGANError(f"longform: plan_key_hold must lie in [0, 1], got {self.plan_key_hold}")
        if self.plan_distance not in PLAN_DISTANCES:
            raise PianoGANError(f"longform: plan_distance must be one of {', '.join(PLAN_DISTANCES)}, "
                                f"got {self.plan_distance!r}")
        if self.plan_rests and not self.harmony_plan:
            raise PianoGANError("longform: plan_rests tells the generator its harmony plan's rests: "
                                "it needs harmony_plan")
        if self.plan_on_beats and not (self.harmony_plan and self.beat_clock):
            raise PianoGANError("longform: plan_on_beats moves the harmony plan's windows onto the beat clock: "
                                "it needs harmony_plan and beat_clock")
        if self.head not in ("notes", "direct"):
            raise PianoGANError(f"longform: head must be 'notes' or 'direct', got {self.head!r}")
        n_up = len(self.g_channels) - 1
        if self.frames_per_latent != 2 ** n_up:
            raise PianoGANError(f"longform: frames_per_latent ({self.frames_per_latent}) must be "
                                f"2^(len(g_channels) - 1) = {2 ** n_up}")
        if min(self.z_global, self.z_local, self.w_dim, self.batch_size, self.log_rows, self.plan_bank_size) < 1:
            raise PianoGANError("longform: sizes must be >= 1")


CONFIGS: dict[str, Config] = {
    "default": Config(),
    # Half the widths: the design study's and tests' size (a few times faster on a CPU).
    "tiny": Config(z_global=64, z_local=16, w_dim=128, g_channels=(128, 128, 96, 80, 64, 64),
                   d_channels=(16, 32, 48), d_width=128, batch_size=8, ema_half_life_kimg=0.5),
    "direct": Config(head="direct"),
    # The default with key labels (each clip's key a condition beside its style).
    "keys": Config(key_labels=True),
    # The default with the roll critic's scale-degree view.
    "degrees": Config(roll_degrees=True),
    # The default with the roll critic's pulse view.
    "pulse": Config(roll_pulse=True),
    # The default with a beat clock for both the generator and the roll critic.
    "beat": Config(beat_clock=True),
    # The beat clock with the generator's clock wandering in phase (rubato), rms 0.5 radians.
    "rubato": Config(beat_clock=True, clock_wander=0.5),
    # ``rubato`` whose generator also matches the reals' in-scale share of strike energy over the
    # last 500 of the recipe's 5500 steps (from 80 kimg at batch 16): session 21's fine-tune of the
    # rubato run from its step 5000 at weight 1.5 (docs/results.md, section 24), as one command.
    "rubato-scale": Config(beat_clock=True, clock_wander=0.5, scale_match_weight=1.5, scale_match_start_kimg=80.0),
    # ``rubato`` whose generator matches the reals' strike values from the start (session 23's
    # run), sampled at psi 0.8 with the damper dips filled up to 0.8 s (section 27), no strike
    # above full velocity (section 28), its strikes mapped to the corpus's dynamics (section 29)
    # and its level set through the faint strikes (section 30): the recipe of the shipped model.
    "rubato-strike": Config(beat_clock=True, clock_wander=0.5, strike_match_weight=1.0, truncation=0.8,
                            gate_fill_seconds=0.8, strike_ceiling=1.0, match_dynamics=True,
                            level_through_ghosts=True),
}
# ``rubato-strike`` whose strikes lift their keys' dampers from step 0: worse (section 30).
CONFIGS["rubato-lift"] = dataclasses.replace(CONFIGS["rubato-strike"], strike_lifts_damper=True)
# ``rubato-strike`` whose renderer's correction net starts as the identity (section 35): the
# recipe of the shipped model since section 37 (its seed 0 on an AMD EPYC, FD 2.39x), though not
# shown to be a lever over seeds (seed 2 3.53x; the recipe's same seeds 3.51x, 3.23x; section 36).
CONFIGS["rubato-identity"] = dataclasses.replace(CONFIGS["rubato-strike"], post_identity_start=True)
# ``rubato-identity`` whose roll critic also reads scale degrees of each clip's own key (section
# 16's view, aimed at the mode blur): on seed 0 clearer modes but FD 3.43x (section 37).
CONFIGS["rubato-degrees"] = dataclasses.replace(CONFIGS["rubato-identity"], roll_degrees=True)
# ``rubato-identity`` whose generator pays for semitone clusters from step 0 (section 38).
CONFIGS["rubato-clash"] = dataclasses.replace(CONFIGS["rubato-identity"], clash_price_weight=2.0)
# ``rubato-identity`` whose generator matches the reals' loudness movement (section 41).
CONFIGS["rubato-movement"] = dataclasses.replace(CONFIGS["rubato-identity"], movement_match_weight=1.0)
# ``rubato-movement`` whose generator also matches the reals' scale degrees (section 42).
CONFIGS["rubato-tonal"] = dataclasses.replace(CONFIGS["rubato-movement"], degree_match_weight=1.0)
# ``rubato-identity`` whose generator is told each second's pitch classes (section 43): on seed 0
# (Intel) FD 3.89x -> 3.30x the floor, pitch-class group 3.83 -> 2.82, held-out FD 42.3; with the
# export's hold its 60 s pieces keep their key (0.61, real 0.53; section 44).
CONFIGS["rubato-plan"] = dataclasses.replace(CONFIGS["rubato-identity"], harmony_plan=True)
# ``rubato-plan`` with the loudness-movement term (section 44): seed 0 (Intel) 3.10x, the best
# recipe-seed figure yet, but in key +0.074 over real (bar 0.05) and held-out FD 52.5.
CONFIGS["rubato-plan-movement"] = dataclasses.replace(CONFIGS["rubato-plan"], movement_match_weight=1.0)
# ``rubato-plan-movement`` whose plan gap also asks for the plan's weak classes (Hellinger; section
# 44). At weight 90: on runs/planmove-s0's last checkpoint its gradient on G was 3.6-5.7 times
# smaller than the L1 gap's (three batches), so 20 x 4.6 keeps the pull the L1 gap had. Seed 0
# (Intel): FD 3.94x (without it 3.10x), pitch-class group 4.59 (3.22), in key +0.062 (+0.074),
# 6.5 classes a clip (6.4; real 7.1): no lever (section 45).
CONFIGS["rubato-plan-hellinger"] = dataclasses.replace(CONFIGS["rubato-plan-movement"], plan_distance="hellinger",
                                                       plan_weight=90.0)
# ``rubato-plan-movement`` whose generator also pays for semitone clusters (section 45): without the
# clash rule at sampling a third of that model's onsets clash; the rule drops the softer of each
# pair, most often the chromatic one, and the pieces play more in key than the corpus.
CONFIGS["rubato-plan-clash"] = dataclasses.replace(CONFIGS["rubato-plan-movement"], clash_price_weight=2.0)
# ``rubato-plan-movement`` whose generator is told its plan's rests and pays for striking in them
# (section 47): the loudness-movement group swings most between trainings (0.42-3.65), and the
# corpus's loudest-moving clips are those with strike-free seconds.
CONFIGS["rubato-plan-rests"] = dataclasses.replace(CONFIGS["rubato-plan-movement"], plan_rests=True)
# ``rubato-plan-rests`` whose plan changes on the beat instead of on the latents' 1 s grid
# (section 48): plan-rests struck a new chord every 1.02 s, on the grid, whatever the tempo.
CONFIGS["rubato-plan-beats"] = dataclasses.replace(CONFIGS["rubato-plan-rests"], plan_on_beats=True)
# ``rubato-strike`` whose renderer's correction net sees one frame ahead: no lever (FD 3.42x
# against 3.51x on seed 0; its ceiling gain is inside the spread between fits; section 35).
CONFIGS["rubato-ahead1"] = dataclasses.replace(CONFIGS["rubato-strike"], post_lookahead=1)

def upgrade_fields(fields: dict) -> dict:
    """Stored config fields of an older version as this Config's (models.config_from_dict):
    ``gate_fill_training`` (a bool that made ``gate_fill_seconds`` act in training too; in the
    shipped file as false) is now ``gate_fill_training_seconds``."""
    out = dict(fields)
    if "gate_fill_training" in out:
        through = bool(out.pop("gate_fill_training"))
        out.setdefault("gate_fill_training_seconds", float(out.get("gate_fill_seconds", 0.0)) if through else 0.0)
    return out


# Fields that act only outside training: ``pianogan export --set`` may change them on a trained
# run (a truncation or a damper fill tried after training), since the run would train the same.
SAMPLING_FIELDS = ("truncation", "gate_fill_seconds", "strike_ceiling", "match_dynamics", "ghost_scale",
                   "level_through_ghosts", "drop_dampered_strikes", "mode_snap_seconds",
                   "drop_clashes", "leading_tone_seconds", "plan_recombine", "plan_key_hold")


def configure(cfg: Config, preset, stats, styles: tuple[str, ...], rolls: bool = False) -> Config:
    """The model config completed with what it needs from the dataset: the preset's STFT, the
    normalisation statistics (the renderer draws in log-magnitude units), the labels, and
    whether the clips come with piano rolls (without them, or with the "direct" head, there is
    no roll critic)."""
    roll_weight = cfg.roll_weight if rolls and cfg.head == "notes" else 0.0
    return dataclasses.replace(cfg, sample_rate=int(preset.sample_rate), n_fft=int(preset.n_fft),
                               hop_length=int(preset.hop_length), clip_sigma=float(preset.clip_sigma),
                               eps=float(preset.eps), stats_mean=float(stats.mean),
                               stats_std=float(stats.std), styles=tuple(styles), roll_weight=roll_weight)


__all__ = ["CONFIGS", "SAMPLING_FIELDS", "Config", "configure", "upgrade_fields"]
