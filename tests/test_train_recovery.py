"""What a crash leaves behind does not stop the next run: a torn metrics.jsonl line, an
unreadable newest checkpoint (for --resume and for loading a generator from the run); and the
critic's statistics are the mean over a step's critic updates."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from _train_data import write_synthetic_dataset
from pianogan.cli import main as cli_main
from pianogan.errors import PianoGANError, PianoGANWarning
from pianogan.train import checkpoint as ck
from pianogan.train.metrics import read_metrics
from pianogan.train.trainer import Trainer, mean_stats, train

SMALL_NETS = {"d": 8, "max_channels": 64, "batch_size": 8}
QUIET = {"sample_every": 0, "sample_images": 0, "log_every": 1}
CFG = {"base": "tiny", "model": SMALL_NETS}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "ds", n=32)


def _truncate(path, keep=0.5):
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * keep)])


def _weights(run, step):
    c = ck.load_checkpoint(run / "checkpoints" / ck.checkpoint_name(step))
    return {part: c[part] for part in ("G", "D", "G_ema")}


def _assert_same(a, b):
    for part in a:
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)


def test_resume_repairs_a_torn_metrics_line(data, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--model", "dcgan", "--data", str(data), "--out", str(run), "--no-progress",
            "--log-every", "1", "--sample-every", "0"]
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({**CFG, "train": {"sample_images": 0}}))
    assert cli_main(base + ["--config", str(cfg), "--steps", "3", "--ckpt-every", "3"]) == 0
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 45, "loss/D": 0.')  # a kill in the middle of a write
    capsys.readouterr()
    assert cli_main(base + ["--steps", "5", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "pianogan train: warning:" in err and "metrics.jsonl" in err and "line(s) (4)" in err
    records, bad = read_metrics(run / "metrics.jsonl")
    assert bad == [] and [r["step"] for r in records] == [1, 2, 3, 4, 5]


def test_resume_falls_back_to_the_newest_readable_checkpoint(data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train("dcgan", data, a, config=CFG, steps=6, ckpt_every=2, progress=False, **QUIET)
    train("dcgan", data, b, config=CFG, steps=4, ckpt_every=2, progress=False, **QUIET)
    _truncate(b / "checkpoints" / "step-0000004.pt")  # killed mid-copy, disk full, ...
    with pytest.warns(PianoGANWarning, match=r"step-0000004\.pt.*using step-0000002\.pt \(step 2\)"):
        s = train("dcgan", data, b, config=None, resume=True, steps=6, progress=False)
    assert s["start_step"] == 2 and s["new_steps"] == 4
    _assert_same(_weights(a, 6), _weights(b, 6))  # exactly the uninterrupted run
    assert [r["step"] for r in read_metrics(b / "metrics.jsonl")[0]] == [1, 2, 3, 4, 5, 6]


def test_load_generator_from_a_run_skips_unreadable_files(data, tmp_path):
    run = tmp_path / "run"
    train("dcgan", data, run, config=CFG, steps=4, ckpt_every=2, progress=False, **QUIET)
    G_ok, _ = ck.load_generator(run / "checkpoints" / "step-0000002.pt")
    _truncate(run / "generator.safetensors")
    _truncate(run / "checkpoints" / "step-0000004.pt")
    with pytest.warns(PianoGANWarning) as record:
        G, info = ck.load_generator(run)  # what `pianogan generate RUN` calls
    said = " ".join(str(w.message) for w in record)
    assert "generator.safetensors" in said and "step-0000004.pt" in said
    assert info["step"] == 2 and info["path"].endswith("step-0000002.pt")
    z = G.sample_z(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(G(z), G_ok(z))
    # An explicitly named damaged file is an error, not a fallback.
    with pytest.raises(PianoGANError, match="step-0000004.pt"):
        ck.load_generator(run / "checkpoints" / "step-0000004.pt")


def test_no_readable_checkpoint_is_one_error_naming_each(data, tmp_path):
    run = tmp_path / "run"
    train("dcgan", data, run, config=CFG, steps=2, ckpt_every=1, progress=False, **QUIET)
    for p in ck.list_checkpoints(run):
        _truncate(p, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: an error
        with pytest.raises(PianoGANError, match=r"no readable checkpoint.*step-0000002.*step-0000001"):
            train("dcgan", data, run, config=None, resume=True, steps=3, progress=False)


def test_critic_statistics_are_the_mean_over_the_critic_steps(data, tmp_path):
    t = Trainer("specgan", data, tmp_path / "run", config="tiny", overrides={**SMALL_NETS, **QUIET},
                progress=False)
    t._setup()
    n_critic = int(t.loss.n_critic)
    assert n_critic > 1
    seen = []
    d_step = t.d_step
    t.d_step = lambda step, i: seen.append(d_step(step, i)) or seen[-1]
    stats = t.train_step(0)
    assert len(seen) == n_critic
    for k in ("loss/D", "D/real", "D/fake", "grad/D_norm"):
        values = [s[k] for s in seen]
        assert len(set(values)) > 1  # the steps differ, so the last one is not the mean
        assert stats[k] == pytest.approx(np.mean(values), rel=1e-12)
    assert mean_stats([{"a": 1.0, "r1": 4.0}, {"a": 3.0}]) == {"a": 2.0, "r1": 4.0}
