"""How much each clip's loudness moves, band by band, and a distance between two batches of it:
the ``longform`` family's loudness-movement term (``movement_match_weight``).

A clip's movement is the standard deviation over time of its level in each of the evaluator's
16 mel bands (dB power; evaluate/features.py, ``logmel_std_*``). Real clips differ a great deal in
it (a band's movement: mean about 8 dB, spread between clips about 5 dB): a sparse chorale phrase
with rests moves much more than a dense quartet passage. Every recipe run that missed the FD bar
missed most in this group, and the gap was the spread between clips, not the mean: on the
fresh-clone run of section 40 the clips' movement spread 0.56-0.69 of the corpus's per band (the
shipped file 0.85-0.97), at psi 1 still 0.69-0.78. The model plays every clip with about the same
loudness contour. Neither critic corrected it, so the generator matches the distribution itself:
per band, the 1-D Wasserstein distance between its batch's movements and the critic batch's
reals' (sorted values against sorted values), which pays for a wrong spread as much as for a
wrong mean, in dB over :data:`SCALE_DB`.

Where the gap sits: the bulk of clips (quartiles) moved as real ones do; the tail did not. A
twentieth of real clips move 18-20 dB or more in a band (a phrase that ends in silence, a rest
between sections), those of section 40's run 11-15 dB, the shipped file's 16-20 dB. Sorted
matching reaches that tail: the fake clip that moves most is compared with the real one that
moves most.
"""

from __future__ import annotations

import torch

from ..errors import PianoGANError
from ..spectrogram import Stats, normalized_to_magnitude
from .sorted_match import sorted_distance

# The unit of the distance: about the corpus's spread of a band's movement between clips in its
# bulk (interquartile range / 1.35 of 512 training clips: 2.4-4.6 dB over the 16 bands, 2.6-3.4 in
# most; the standard deviation, 4.7-7.2 dB, is inflated by the silent tail). Fixed, not read from
# each batch: a batch's spread swings threefold with whether it holds a clip with silence.
SCALE_DB = 3.0


def band_movement(image: torch.Tensor, cfg) -> torch.Tensor:
    """Images (n, 1, F, T) or (n, F, T) in [-1, 1] on the STFT grid (F = n_fft // 2 + 1 rows, low
    frequencies first) -> (n, bands): each clip's level per mel band (the evaluator's bands,
    evaluate.features.mel_filters; dB power) and its standard deviation over the T frames, in
    dB. ``cfg`` gives the normalisation (``stats_mean``,
    ``stats_std``, ``clip_sigma``, ``eps``) and the STFT (``sample_rate``, ``n_fft``). Computed in
    float32 whatever the autocast: bf16's steps (1/256 of the value) would be as large as the
    differences between clips' levels near the floor."""
    rows = int(cfg.n_fft) // 2 + 1
    if image.shape[-2] != rows:
        raise PianoGANError(f"loudness movement: images of {image.shape[-2]} rows are not on the STFT grid "
                            f"(n_fft {cfg.n_fft}: {rows} rows)")
    from ..evaluate.features import mel_filters  # late: the evaluator's package is not the trainer's

    with torch.autocast(device_type=image.device.type, enabled=False):
        x = image.float().reshape(image.shape[0], -1, image.shape[-1])
        stats = Stats(float(cfg.stats_mean), float(cfg.stats_std))
        power = normalized_to_magnitude(x, stats, cfg.clip_sigma, cfg.eps) ** 2
        mel = torch.from_numpy(mel_filters(int(cfg.sample_rate), int(cfg.n_fft))).to(power)
        bands = torch.einsum("bf,nft->nbt", mel, power)  # (n, bands, T), float32 with autocast off
        db = 10.0 * torch.log10(bands + 1e-10)
        return db.std(dim=-1, unbiased=False)


def movement_gap(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Movements (n, bands) of generated clips and (m, bands) of real ones, in dB -> the mean
    over bands of the 1-D Wasserstein distance between the two sets of values, over
    :data:`SCALE_DB`: 0 when the fake batch's movements are the reals' in every band. With n != m
    the reals' sorted values are read at the fakes' quantiles (:func:`.sorted_match.sorted_distance`)."""
    return sorted_distance(fake, real).mean() / SCALE_DB


__all__ = ["SCALE_DB", "band_movement", "movement_gap"]
