"""A real learning test: a few hundred steps on a synthetic data set of harmonic spectrograms
bring the generator's images close to the real ones in a Fréchet distance of simple image
statistics — far closer than the untrained generator. Runs on the trainer's fast path (bf16
autocast on CPUs that have it)."""

from __future__ import annotations

import pytest
import torch

from _train_data import SMALL, distance_to_real, write_synthetic_dataset
from pianogan.models import get_model
from pianogan.train.checkpoint import load_generator
from pianogan.train.config import resolve_config
from pianogan.train.trainer import train

N = 512


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
    G, info = load_generator(tmp_path / "run")  # the EMA generator, as `generate` would use it
    assert info["step"] == steps
    torch.manual_seed(0)
    G0, _ = get_model(model).build(resolve_config(model, config)[0], SMALL.image_shape)
    fd_untrained, fd_trained = distance_to_real(G0, N), distance_to_real(G, N)  # unseen clips
    print(f"{model} ({summary['amp']}): FD untrained {fd_untrained:.3f} -> trained {fd_trained:.3f}")
    assert fd_trained < fd_untrained / 10
