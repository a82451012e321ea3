"""The ``longform`` family's discriminator: the spectrogram critic, and the roll critic beside it.

It sees the image twice, as log-frequency rows (a fixed triangular projection of the STFT bins,
~2 rows per semitone; 2-D convolutions there are translation-equivariant in pitch, i.e. they
judge harmony and key wherever it lies) and as full-resolution bins (a 1-D patch conv, for the
fine partial structure). Both feed a 1-D trunk along time with a *local* head (a logit per
~0.5 s, averaged: texture) and a *global* head (pooled over the whole clip, minibatch standard
deviation, projection on the style embedding: structure and style). When the data has piano
rolls, a second critic judges what was played (:mod:`.roll_critic`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import PianoGANError
from ..keys import N_KEYS_MUSICAL
from .layers import feature_stddev, he_init, projection
from .longform_config import Config
from .roll_critic import RollCritic
from .roll_lags import pulse_lags


def log_projection(n_bins: int, rows: int, sample_rate: int, n_fft: int, fmin: float = 27.5) -> torch.Tensor:
    """(rows, n_bins) triangular weights from linear STFT bins to log-spaced rows (fmin ..
    Nyquist), each row summing to 1 — the same mapping as the log-frequency presets use."""
    from ..config import Preset
    from ..spectrogram import log_frequency_matrices

    p = Preset("_dview", sample_rate, n_fft, max(1, n_fft // 4), 1.0, rows, 8, freq_scale="log", fmin=fmin)
    if p.n_freq != n_bins:
        raise PianoGANError(f"longform: {n_bins} image rows do not match n_fft {n_fft}")
    fwd, _ = log_frequency_matrices(p)
    return fwd


class Discriminator(nn.Module):
    """image (n, 1, F, T) [+ labels (n,)] -> logits (n,); any T that is a multiple of 32."""

    def __init__(self, cfg: Config, image_shape: tuple[int, int]):
        super().__init__()
        self.cfg = cfg
        n_bins = int(image_shape[0])
        self.register_buffer("proj", log_projection(n_bins, cfg.log_rows, cfg.sample_rate, cfg.n_fft),
                             persistent=False)
        convs, c, h = [], cfg.d_channels[0], cfg.log_rows
        for c_out in cfg.d_channels:
            convs += [nn.Conv2d(c, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c, h = c_out, (h + 1) // 2
        self.pitch = nn.Sequential(nn.Conv2d(1, cfg.d_channels[0], 3, padding=1), nn.LeakyReLU(0.2), *convs)
        self.t_down = 2 ** len(cfg.d_channels)
        self.fine = nn.Conv1d(n_bins, cfg.d_width // 2, self.t_down, stride=self.t_down)
        wd = cfg.d_width
        self.trunk = nn.Sequential(
            nn.Conv1d(c * h + wd // 2, wd, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(wd, wd, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.local = nn.Conv1d(wd, 1, 1)
        self.context = nn.Sequential(
            nn.Conv1d(wd, wd, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(wd, wd, 3, padding=2, dilation=2), nn.LeakyReLU(0.2))
        self.glob = nn.Sequential(nn.Linear(wd + 1, wd), nn.LeakyReLU(0.2))
        self.out = nn.Linear(wd, 1)
        self.embed = nn.Embedding(len(cfg.styles), wd) if cfg.styles else None
        self.key_embed = nn.Embedding(N_KEYS_MUSICAL, wd) if cfg.key_labels else None
        he_init(self)
        energy_frames = round(cfg.roll_energy_seconds * cfg.sample_rate / cfg.hop_length)
        self.roll = (RollCritic(cfg.roll_width, len(cfg.styles), cfg.mbstd_group, cfg.roll_noise,
                                cfg.roll_view_power, energy_frames,
                                N_KEYS_MUSICAL if cfg.key_labels else 0, cfg.roll_degrees,
                                pulse_lags(cfg.sample_rate / cfg.hop_length) if cfg.roll_pulse else 0,
                                cfg.beat_clock)
                     if cfg.roll_weight > 0 else None)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, notes=None,
                roll_noise: float | None = None, keys: torch.Tensor | None = None,
                beats: torch.Tensor | None = None):
        """Logits (n,) of the images; with ``notes`` (the roll critic's view of (strikes, held),
        :meth:`roll_view`) and a roll critic, (image logits, roll logits); ``roll_noise``: the
        roll critic's instance noise (None: its configured start); ``keys`` (n,): key labels;
        ``beats`` (n, 2): the clips' beats, for a roll critic with a clock."""
        out = self.judge_image(x, labels, keys)
        if notes is None or self.roll is None:
            return out
        return out, self.roll(notes, labels, roll_noise, keys, beats)

    def roll_view(self, notes: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """(strikes, held) (n, 88, T) -> what the roll critic reads (n, 2, 88, T'); the loss takes
        R1 with respect to this (:func:`~.roll_critic.roll_view` says why)."""
        return self.roll.view(*notes)

    def judge_image(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                    keys: torch.Tensor | None = None) -> torch.Tensor:
        x = x[:, 0]  # (n, F, T)
        t = x.shape[-1] - x.shape[-1] % self.t_down
        x = x[..., :t]
        rows = torch.matmul(self.proj.to(x.dtype), x).unsqueeze(1)  # (n, 1, R, T)
        p = self.pitch(rows)  # (n, C, R', T')
        h = torch.cat([p.flatten(1, 2), self.fine(x)], dim=1)
        h = self.trunk(h)
        local = self.local(h).mean(dim=(1, 2))
        g = self.context(h).mean(dim=2)
        g = self.glob(feature_stddev(g, self.cfg.mbstd_group))
        out = self.out(g).squeeze(1) + local
        return out + projection(self.embed, labels, g) + projection(self.key_embed, keys, g)


__all__ = ["Discriminator", "log_projection"]
