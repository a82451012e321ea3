"""A real learning test: a few hundred steps on a synthetic data set of harmonic spectrograms
bring the generator's images close to the real ones in a Fréchet distance of simple image
statistics — far closer than the untrained generator. Runs on the trainer's fast path (bf16
autocast on CPUs that have it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from _train_data import SMALL, harmonic_images, write_synthetic_dataset
from pianogan.models import get_model
from pianogan.train.checkpoint import load_generator
from pianogan.train.config import resolve_config
from pianogan.train.trainer import train

N = 512


def features(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """(n, H, W) -> (n, H + W/4): the frequency profile (row means: where the partials are) and
    the time profile (column means: how they decay)."""
    x = torch.as_tensor(images, dtype=torch.float64)
    return torch.cat([x.mean(2), x.mean(1)[:, ::4]], 1).numpy()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets."""
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def generated(G, n: int = N) -> np.ndarray:
    z = G.sample_z(n, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return features(G(z).squeeze(1).float())


@pytest.mark.slow
@pytest.mark.parametrize("model,steps,nets", [
    ("dcgan", 300, {"d": 8, "max_channels": 64}),
    ("specgan", 150, {"d": 8, "max_channels": 64, "batch_size": 16}),  # 5 critic steps per step
])
def test_training_moves_generated_images_towards_real(tmp_path, model, steps, nets):
    data = write_synthetic_dataset(tmp_path / "ds", n=N, preset=SMALL)
    config = {"base": "tiny", "model": nets}
    summary = train(model, data, tmp_path / "run", config=config, steps=steps, ckpt_every=steps,
                    sample_every=0, sample_images=0, progress=False)
    real = features(harmonic_images(N, SMALL.image_shape, seed=99))  # unseen clips
    G, info = load_generator(tmp_path / "run")  # the EMA generator, as `generate` would use it
    assert info["step"] == steps
    torch.manual_seed(0)
    G0, _ = get_model(model).build(resolve_config(model, config)[0], SMALL.image_shape)
    fd_untrained, fd_trained = frechet(real, generated(G0)), frechet(real, generated(G))
    print(f"{model} ({summary['amp']}): FD untrained {fd_untrained:.3f} -> trained {fd_trained:.3f}")
    assert fd_trained < fd_untrained / 10
