"""Phase retrieval: batched fast Griffin-Lim (Perraudin et al. 2013) in torch.

PLACEHOLDER (plain torch.stft/istft loop); to be replaced by the fast implementation.
"""

from __future__ import annotations

import torch


def griffin_lim(magnitude: torch.Tensor, n_fft: int, hop_length: int, n_iter: int = 32,
                momentum: float = 0.99, length: int | None = None, seed: int | None = 0) -> torch.Tensor:
    """|STFT| (batch, freq, frames) or (freq, frames) -> audio (batch, samples) or (samples,)."""
    mag = torch.as_tensor(magnitude, dtype=torch.float32)
    unbatched = mag.ndim == 2
    if unbatched:
        mag = mag.unsqueeze(0)
    window = torch.hann_window(n_fft, device=mag.device)
    g = torch.Generator(device="cpu")
    if seed is not None:
        g.manual_seed(seed)
    phase = torch.rand(mag.shape, generator=g).to(mag.device) * 2 * torch.pi
    angles = torch.polar(torch.ones_like(mag), phase)
    n = length if length is not None else hop_length * (mag.shape[-1] - 1)
    tprev = torch.zeros_like(angles)
    for _ in range(n_iter):
        y = torch.istft(mag * angles, n_fft, hop_length, window=window, center=True, length=n)
        rebuilt = torch.stft(y, n_fft, hop_length, window=window, center=True, pad_mode="constant",
                             return_complex=True)
        angles = rebuilt - (momentum / (1 + momentum)) * tprev
        tprev = rebuilt
        angles = angles / (angles.abs() + 1e-16)
    y = torch.istft(mag * angles, n_fft, hop_length, window=window, center=True, length=n)
    return y[0] if unbatched else y
