"""The piano-aware output stage of the ``longform`` generator: note activations -> spectrogram.

A generator that paints every STFT bin freely must discover, from a discriminator's gradient
alone, that piano sound is made of notes with harmonic partials that start together and decay.
This stage builds that in (the project's own idea, so it is written here):

    onsets (n, 88, T) >= 0           one value per piano key and frame: how hard it is struck
      -> two decaying traces per key  causal exponential filters with learned time constants
         (slow: the body of the note, fast: the bright attack), times a learned damper gate
      -> partial templates (F, 88)    learned, initialised with each key's harmonic series
         (inharmonic partials f_k = k f0 sqrt(1 + B k^2), each with a Hann window's main lobe)
      -> magnitude (n, F, T) + a learned noise floor per bin
      -> log, normalised with the dataset statistics -> image rows on the preset's STFT bins

Shapes: T frames at the preset's hop, F = n_fft // 2 + 1 linear-frequency bins. Everything
here is differentiable and length-agnostic along time.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F
from torch import nn

from ..data.rolls import N_KEYS, PIANO_LOW  # MIDI note of A0; keys of a piano


def key_frequencies(n_keys: int = N_KEYS, low: int = PIANO_LOW) -> np.ndarray:
    """Equal-tempered fundamental (Hz) of each key, A4 = 440 Hz: (n_keys,)."""
    return 440.0 * 2.0 ** ((np.arange(n_keys) + low - 69) / 12.0)


def hann_lobe(offset_bins: np.ndarray) -> np.ndarray:
    """|DTFT| of a Hann window at ``offset_bins`` from a sinusoid's frequency, peak 1."""
    d = np.asarray(offset_bins, dtype=np.float64)
    num = np.sinc(d)
    den = 1.0 - d ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(np.abs(den) < 1e-9, 0.5, num / den)
    return np.abs(out)


def harmonic_templates(n_bins: int, sample_rate: int, n_fft: int, n_partials: int = 24,
                       inharmonicity: float = 1e-4, rolloff: float = 1.1) -> np.ndarray:
    """(n_bins, 88) magnitude templates: key j's partials k = 1..n_partials below Nyquist at
    k f0 sqrt(1 + B k^2) Hz, amplitude k^-rolloff, each spread over the bins by a Hann window's
    main lobe (±3 bins). Columns are scaled to a peak of 1."""
    bin_hz = sample_rate / n_fft
    out = np.zeros((n_bins, N_KEYS))
    bins = np.arange(n_bins)
    for j, f0 in enumerate(key_frequencies()):
        for k in range(1, n_partials + 1):
            f = k * f0 * math.sqrt(1.0 + inharmonicity * k * k)
            if f >= sample_rate / 2:
                break
            c = f / bin_hz
            near = np.abs(bins - c) <= 3
            out[near, j] += k ** -rolloff * hann_lobe(bins[near] - c)
        out[:, j] /= max(out[:, j].max(), 1e-12)
    return out


def fit_templates(mag: np.ndarray, init: np.ndarray, n_iter: int = 60,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit key templates to real spectra by non-negative matrix factorisation.

    mag (F, N): linear STFT magnitudes of N frames of real music; init (F, K): the harmonic
    templates (:func:`harmonic_templates`), which fix each column's key (multiplicative updates
    keep a template's shape near its partials). One extra flat column absorbs noise and
    transients. Euclidean multiplicative updates (Lee & Seung) of V ≈ W H.
    Returns (W (F, K) with column peaks 1, noise spectrum (F,), activation scale: the 99th
    percentile of the fitted activations of sounding keys, in the units of ``mag``).
    """
    rng = np.random.default_rng(seed)
    V = np.asarray(mag, dtype=np.float64)
    W = np.concatenate([init + 0.002, np.ones((init.shape[0], 1))], axis=1)
    H = rng.uniform(0.0, 1.0, (W.shape[1], V.shape[1])) * (V.mean() / W.mean())
    tiny = 1e-12
    for _ in range(n_iter):
        H *= (W.T @ V) / (W.T @ (W @ H) + tiny)
        W *= (V @ H.T) / (W @ (H @ H.T) + tiny)
        peak = W.max(axis=0, keepdims=True) + tiny
        W /= peak
        H *= peak.T
    keys, noise = W[:, :-1], W[:, -1] * float(np.median(H[-1]))
    active = H[:-1][H[:-1] > 1e-3 * H[:-1].max()]
    scale = float(np.percentile(active, 99)) if active.size else 1.0
    return keys, noise, scale


def attack_kernel(n_fft: int, hop_length: int, radius: int) -> np.ndarray:
    """(2 radius + 1,) weights of frames -radius..radius for a note that starts at frame 0 and
    then holds: the share of each frame's Hann window (``n_fft`` samples, centred) that lies
    after the onset, with the decay's own start at frame 0 taken out (weights after 0 are the
    growth still to come, so their sum with frame 0's is 1)."""
    w = np.hanning(n_fft + 2)[1:-1]
    share = []
    for d in range(-radius, radius + 1):
        start = d * hop_length - n_fft // 2  # first sample of frame d's window, onset at 0
        share.append(w[max(0, -start):].sum() / w.sum() if -start < n_fft else 0.0)
    share = np.clip(np.array(share), 0.0, 1.0)
    return np.diff(np.concatenate([[0.0], share]))  # increments: the conv of a step's derivative


def decay_filter(x: torch.Tensor, tau: torch.Tensor, length: int) -> torch.Tensor:
    """Causal exponential decay per channel: y[n, ..., c, t] = Σ_{j<length} x[n, c, t-j] e^(-j/tau[..., c]).

    x (n, C, T); tau (C,) or (B, C) in frames, > 0 -> y (n, C, T) or (n, B, C, T), float32
    whatever the input's dtype or an autocast around it (the decay sums many small terms; bf16
    loses 0.3 % of the peak). Differentiable in both.

    Computed as a product of FFTs: a depthwise convolution with the 125-frame kernel ran 1.7x
    slower in bf16 and 3x slower in float32 on a 2-core CPU (fwd + bwd, 16 x 704 x 320), and
    the B decays of one input share its transform.
    """
    n, c, t = x.shape
    size = scipy.fft.next_fast_len(t + length - 1, real=True)  # linear, not circular
    j = torch.arange(length, device=x.device, dtype=torch.float32)
    kernel = torch.exp(-j / tau.float().unsqueeze(-1))  # (..., C, length), oldest first
    spectrum = torch.fft.rfft(kernel, size) * torch.fft.rfft(x.float(), size).view(
        n, *(1,) * (tau.dim() - 1), c, -1)
    return torch.fft.irfft(spectrum, size)[..., :t]


def fill_damper_dips(gate: torch.Tensor, frames: int) -> torch.Tensor:
    """Damper gates (n, 88, T) in [0, 1] with every dip shorter than ``frames`` filled (a grey
    closing along time: a running max, then a running min, both ``frames`` wide, rounded up to
    an odd width; the clip's edges are held).

    A piano damper that falls silences the string, and lifting it again brings nothing back; the
    renderer's gate instead scales a note's envelope, so a gate that shuts and reopens while a
    note rings makes a tremolo no piano plays. Generators trained on this renderer do it: 44 % of
    their held runs were shorter than 4 frames (real rolls: 3 %; docs/results.md, section 27).
    Filling the dips keeps every note's onset and its final release where they were. ``frames`` <= 1
    returns ``gate`` unchanged.
    """
    k = int(frames)
    if k <= 1:
        return gate
    k += 1 - k % 2  # odd: centred
    p = k // 2
    up = F.max_pool1d(F.pad(gate, (p, p), mode="replicate"), k, 1)
    return -F.max_pool1d(F.pad(-up, (p, p), mode="replicate"), k, 1)


class PostConv(nn.Conv1d):
    """A convolution along time that sees ``lookahead`` frames ahead and the rest of its span
    behind (None: centred, as ``padding="same"``); the output keeps the input's length."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int = 1, lookahead: int | None = None):
        super().__init__(c_in, c_out, kernel, dilation=dilation)
        span = dilation * (kernel - 1)
        ahead = span // 2 if lookahead is None else min(max(int(lookahead), 0), span)
        self.pads = (span - ahead, ahead)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))


RENDER_BLOCK_FRAMES = 2048  # outside autograd, longer inputs are rendered this many frames at a time
SILENT_GATE = 0.1  # a damper gate below this lets a key sound at most -20 dB


def drop_dampered(strikes: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """Strikes (n, 88, T) with every strike dropped whose key's gate (n, 88, T) stays below
    :data:`SILENT_GATE` at its frame and the next: the renderer gives such a strike no tone, only
    its broadband click (the click is not gated), and no piano makes one, since striking a key
    lifts its damper."""
    after = torch.cat([gate[..., 1:], gate[..., -1:]], dim=-1)
    return torch.where(torch.maximum(gate, after) < SILENT_GATE, torch.zeros_like(strikes), strikes)


def lift_dampers(strikes: torch.Tensor, gate: torch.Tensor, frames: int = 2) -> torch.Tensor:
    """Damper gates (n, 88, T) opened fully for ``frames`` frames from every strike (n, 88, T)
    of their key: striking a key lifts its damper, however soft the strike, so no strike is left
    with only its click (:func:`drop_dampered` drops such strikes; this gives them their tone).
    A gate that was open stays as it was; after the lift the renderer's release fades the note.
    The lift is a step in the strikes (no gradient flows through it to them); the strikes' values
    still reach the loss through the tone they make."""
    struck = (strikes > 0).to(gate.dtype)
    held = F.max_pool1d(F.pad(struck, (frames - 1, 0)), frames, 1) if frames > 1 else struck
    return torch.maximum(gate, held)


class PianoRenderer(nn.Module):
    """Note activations -> normalised log-magnitude image rows (see the module docstring).

    ``forward(onsets, gate)``: onsets (n, 88, T) >= 0, gate (n, 88, T) in [0, 1] ->
    (n, F, T) values in [-1, 1], normalised like the dataset (``stats_mean``/``stats_std``
    are the dataset's log-magnitude statistics, ``clip_sigma`` the preset's).
    """

    def __init__(self, n_bins: int, sample_rate: int, n_fft: int, hop_length: int,
                 stats_mean: float, stats_std: float, clip_sigma: float, eps: float,
                 n_partials: int = 24, decay_seconds: float = 4.0, n_decays: int = 4,
                 velocity_layers: bool = False, post_channels: int = 0, post_lookahead: int | None = None):
        super().__init__()
        frame_s = hop_length / sample_rate
        self.decay_len = max(2, int(round(decay_seconds / frame_s)))
        self.harmonic = harmonic_templates(n_bins, sample_rate, n_fft, n_partials)
        # One template per key and decay rate: a key's spectrum is a sum of J exponentially
        # decaying spectra (fast ones: the bright attack and the high partials, which die first;
        # slow ones: the low partials' long ring). Log-parameterised, so templates stay >= 0;
        # the floor keeps every bin trainable.
        init = torch.log(torch.as_tensor(self.harmonic, dtype=torch.float32) / n_decays + 1e-3)
        self.log_templates = nn.Parameter(init.unsqueeze(0).repeat(n_decays, 1, 1))  # (J, F, 88)
        # A piano is brighter when struck harder, not only louder (the SoundFont's velocity
        # filter): two template sets, for a soft and a hard strike, mixed by the strike's
        # velocity, still linear in the strikes. (Tried against the renderer's too-narrow timbre
        # spread: no FD gain within noise, 8.44 vs 8.10 without; docs/results.md section 7.)
        self.log_templates_loud = (nn.Parameter(init.unsqueeze(0).repeat(n_decays, 1, 1))
                                   if velocity_layers else None)
        # Broadband transient at each onset (hammer and damper noise), and a texture: real
        # spectra are never smooth between partials, so the log-magnitude gets noise of a
        # learned strength per bin (drawn from torch's generator, as StyleGAN's noise inputs).
        self.log_click = nn.Parameter(torch.full((n_bins,), math.log(0.05)))
        self.log_texture = nn.Parameter(torch.full((n_bins,), math.log(0.05)))
        # Time constants (frames) per decay rate and key: from ~0.1 s to ~3 s, low keys ring
        # longer than high ones.
        rates = np.geomspace(0.1, 3.0, n_decays)[:, None] * np.geomspace(1.5, 0.6, N_KEYS)[None, :]
        self.log_tau = nn.Parameter(torch.log(torch.as_tensor(rates / frame_s, dtype=torch.float32)))
        # How a strike at frame 0 shows in the frames around it: the STFT window (n_fft samples,
        # centred) sees the note already before its onset frame and reaches full level after it.
        # Without this the renderer's onsets were one-frame steps, measured 10 standard deviations
        # sharper than real ones (onset strength); learned from the Hann overlap as start.
        self.attack_radius = max(1, int(math.ceil(n_fft / hop_length / 2)) + 1)
        self.log_attack = nn.Parameter(torch.log(torch.as_tensor(
            attack_kernel(n_fft, hop_length, self.attack_radius), dtype=torch.float32) + 1e-3))
        # A released key fades (the damper takes time): its gate falls with a learned time
        # constant per key instead of at once (instant cuts measured as 4 standard deviations too
        # much 8-16 Hz loudness modulation).
        self.log_tau_release = nn.Parameter(torch.full((N_KEYS,), math.log(0.15 / frame_s)))
        # Loudness follows strike strength with a learned power (how the instrument maps velocity).
        self.log_power = nn.Parameter(torch.zeros(()))
        self.log_floor = nn.Parameter(torch.full((n_bins,), float(stats_mean - 1.5 * stats_std)))
        self.log_gain = nn.Parameter(torch.tensor(float(stats_mean + 2.0 * stats_std)))
        self.mean, self.scale = float(stats_mean), 1.0 / (float(stats_std) * float(clip_sigma))
        # What the note model leaves (reverberation, the sampler's filters, spectral leakage):
        # a small convolutional correction along time of the normalised log-spectrum, fitted
        # with the rest; starts as the identity (a model that re-initialises all its layers must
        # call :meth:`start_post` after, or the fit starts from a random correction). Its span is
        # ±6 frames, or ``post_lookahead`` frames ahead and the rest behind: the centred net
        # lowers the frame before each onset by ~1 dB, but one frame ahead trained no better
        # (docs/results.md, section 35).
        self.post = None
        if post_channels:
            self.post = nn.Sequential(PostConv(n_bins, post_channels, 5, 1, post_lookahead), nn.LeakyReLU(0.2),
                                      PostConv(post_channels, post_channels, 5, 2, post_lookahead),
                                      nn.LeakyReLU(0.2), nn.Conv1d(post_channels, n_bins, 1))
            self.start_post()
        self.eps = float(eps)

    @torch.no_grad()
    def start_post(self) -> None:
        """The correction net as the identity (its last layer zero): how it is built, and how a
        model that re-initialises all its layers (He) must put it back."""
        if self.post is not None:
            nn.init.zeros_(self.post[-1].weight)
            nn.init.zeros_(self.post[-1].bias)

    def magnitude(self, onsets: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """Linear magnitude (n, F, T) of the notes, noise floor included."""
        dt = torch.float32  # the decay sums many small terms: keep them in fp32
        onsets, gate = onsets.to(dt), gate.to(dt)
        n, keys, t = onsets.shape
        velocity = onsets.clamp(0.0, 1.0).sqrt()  # MIDI velocity / 127 (rolls.STRIKE_POWER = 2)
        onsets = (onsets + 1e-6) ** self.log_power.exp() - 1e-6 ** self.log_power.exp()
        if self.log_templates_loud is None:
            layers, templates = onsets.unsqueeze(1), self.log_templates.unsqueeze(0)
        else:  # the strikes split between the soft and the hard templates by velocity
            layers = torch.stack([onsets * (1 - velocity), onsets * velocity], dim=1)
            templates = torch.stack([self.log_templates, self.log_templates_loud])
        n_layers = layers.shape[1]  # L
        x = layers.reshape(n, n_layers * keys, t)
        r = self.attack_radius
        kernel = self.log_attack.exp().flip(0).view(1, 1, -1).expand(x.shape[1], 1, -1)
        x = F.conv1d(F.pad(x, (r, r)), kernel, groups=x.shape[1])  # smeared like the STFT
        tau = self.log_tau.exp()  # (J, 88)
        j = tau.shape[0]
        drops = F.relu(F.pad(gate, (1, 0), value=1.0)[..., :-1] - gate)  # how far each gate fell
        gate = (gate + decay_filter(drops, self.log_tau_release.exp(), self.decay_len)).clamp(max=1.0)
        # All J decays of all L layers at once: (n, J, L * 88, T).
        env = decay_filter(x, tau[:, None, :].expand(j, n_layers, keys).reshape(j, -1), self.decay_len)
        env = env.reshape(n, j, n_layers, keys, t) * gate[:, None, None]  # (n, J, L, 88, T)
        mag = torch.einsum("ljfk,njlkt->nft", templates.exp(), env)
        click = self.log_click.exp()[:, None] * x.sum(dim=1, keepdim=True)
        return (mag + click) * self.log_gain.exp() + self.log_floor.exp()[:, None]

    @torch.no_grad()
    def init_from(self, keys: np.ndarray, noise: np.ndarray, scale: float) -> None:
        """Start from templates fitted to real spectra (:func:`fit_templates`): every decay rate's
        templates = the fitted ones (shared out), floor = the fitted noise, gain = the fitted
        activation scale."""
        j = self.log_templates.shape[0]
        t = torch.log(torch.as_tensor(keys, dtype=torch.float32) / j + 1e-3)
        self.log_templates.copy_(t.unsqueeze(0).expand_as(self.log_templates))
        if self.log_templates_loud is not None:
            self.log_templates_loud.copy_(self.log_templates)
        self.log_floor.copy_(torch.log(torch.as_tensor(noise, dtype=torch.float32) + self.eps))
        self.log_gain.fill_(math.log(max(scale, 1e-6)))

    def context(self) -> tuple[int, int]:
        """Frames (before, after) of the input that one output frame depends on: the decays and
        the release (``decay_len``), the attack's spread, and the correction net's span."""
        convs = [m for m in (self.post or ()) if isinstance(m, PostConv)]
        return (self.decay_len - 1 + self.attack_radius + sum(m.pads[0] for m in convs),
                self.attack_radius + sum(m.pads[1] for m in convs))

    def _normalised(self, onsets: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        x = (torch.log(self.magnitude(onsets, gate) + self.eps) - self.mean) * self.scale
        return x + self.post(x) if self.post is not None else x

    def _blocks(self, onsets: torch.Tensor, gate: torch.Tensor, block: int) -> torch.Tensor:
        """:meth:`_normalised` of a long input, ``block`` output frames at a time, each computed
        from its own span plus :meth:`context` (a piece's memory stays that of one block; the
        frames are those of the whole input, to float rounding)."""
        before, after = self.context()
        t = onsets.shape[-1]
        out = []
        for start in range(0, t, block):
            end = min(start + block, t)
            lo, hi = max(0, start - before), min(t, end + after)
            out.append(self._normalised(onsets[..., lo:hi], gate[..., lo:hi])[..., start - lo:end - lo])
        return torch.cat(out, dim=-1)

    def forward(self, onsets: torch.Tensor, gate: torch.Tensor, seeds: list[int] | None = None,
                texture: bool = True) -> torch.Tensor:
        """``seeds``: one per sample for the texture noise (reproducible output, what generation
        uses); None draws it from torch's global generator (training); ``texture=False``: none.
        Without autograd, inputs longer than :data:`RENDER_BLOCK_FRAMES` are rendered in blocks."""
        if not torch.is_grad_enabled() and onsets.shape[-1] > RENDER_BLOCK_FRAMES:
            x = self._blocks(onsets, gate, RENDER_BLOCK_FRAMES)
        else:
            x = self._normalised(onsets, gate)
        if texture:
            if seeds is None:
                noise = torch.randn_like(x)
            else:
                noise = torch.stack([torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(int(s)))
                                     for s in seeds]).to(x)
            x = x + (self.log_texture.exp() * self.scale)[:, None] * noise
        return x.clamp(-1.0, 1.0)


def fit_to_rolls(render: PianoRenderer, strikes: torch.Tensor, held: torch.Tensor, images: torch.Tensor,
                 steps: int = 800, lr: float = 0.02, batch: int = 16, seed: int = 0,
                 post_lr: float = 1e-3) -> dict:
    """Fit the renderer to real music: the notes a clip was played from -> that clip's image.

    strikes, held (n, 88, T) in the note head's units (:func:`pianogan.data.rolls.roll_to_notes`),
    images (n, F, T) normalised real images. Adam on the L1 distance without texture noise, then
    the texture strength per bin set to the remaining error's spread (what the notes do not
    explain, at half strength: more drowned the partials in noise, measured). Returns the L1
    before and after (normalised units), for the log.
    """
    g = torch.Generator().manual_seed(seed)
    dev = render.log_gain.device  # the trainer fits after moving the model: the data follows it
    strikes, held, images = strikes.to(dev), held.to(dev), images.to(dev)
    named = [(name, p) for name, p in render.named_parameters() if name != "log_texture"]
    params = [p for _, p in named]
    trainable = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    # The note model's few log-parameters move fast; the correction net at a network's pace.
    groups = [{"params": [p for name, p in named if not name.startswith("post.")], "lr": lr},
              {"params": [p for name, p in named if name.startswith("post.")], "lr": post_lr}]
    opt = torch.optim.Adam([g for g in groups if g["params"]], betas=(0.9, 0.99))

    def l1(idx):
        return (render(strikes[idx], held[idx], texture=False) - images[idx]).abs().mean()

    probe = torch.arange(min(len(images), 32))
    with torch.no_grad():
        before = float(l1(probe))
    for _ in range(steps):
        idx = torch.randint(len(images), (min(batch, len(images)),), generator=g)
        opt.zero_grad(set_to_none=True)
        l1(idx).backward()
        opt.step()
    with torch.no_grad():
        after = float(l1(probe))
        resid = render(strikes[probe], held[probe], texture=False) - images[probe]  # (n, F, T)
        spread = resid.std(dim=(0, 2)) / render.scale  # log-magnitude units per bin
        render.log_texture.copy_(torch.log((0.5 * spread).clamp(1e-3, 1.0)))
    for p, t in zip(params, trainable):
        p.requires_grad_(t)
    return {"l1_before": round(before, 4), "l1_after": round(after, 4), "steps": int(steps)}
