"""How every model family lays out an image: stages of 2x resampling from a small seed.

A generator doubles its resolution once per stage (a discriminator halves it), so the number of
stages follows from the image shape: ``k = floor(log2(min(H, W) / min_side))`` stages turn a
seed of ``ceil(H / 2^k) x ceil(W / 2^k)`` pixels (shorter side ``min_side``..``2*min_side-1``)
into an image of at least (H, W); a family crops or resizes that to (H, W) when H or W is not a
multiple of 2^k. DCGAN and SpecGAN take ``min_side`` from their Config, StyleGAN2 uses 4.
"""

from __future__ import annotations

import math

from ..errors import PianoGANError

MIN_SIDE, MAX_SIDE = 8, 4096  # the image sides every family supports


def num_stages(image_shape: tuple[int, int], min_side: int = 4) -> int:
    """Up/down-sampling stages for an (H, W) image: the seed's shorter side is >= min_side."""
    h, w = (int(s) for s in image_shape)
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_SIDE:
        raise PianoGANError(f"image shape {h}x{w} not supported: each side must be in "
                            f"{MIN_SIDE}..{MAX_SIDE} pixels")
    return max(1, int(math.floor(math.log2(min(h, w) / min_side))))


def seed_shape(image_shape: tuple[int, int], stages: int) -> tuple[int, int]:
    """(h0, w0) of the generator's first feature map: ceil((H, W) / 2^stages)."""
    f = 2 ** stages
    return (-(-int(image_shape[0]) // f), -(-int(image_shape[1]) // f))


def geometry(image_shape: tuple[int, int], min_side: int = 4) -> tuple[int, int, int]:
    """(k, h0, w0): :func:`num_stages` and :func:`seed_shape` together."""
    k = num_stages(image_shape, min_side)
    return (k, *seed_shape(image_shape, k))
