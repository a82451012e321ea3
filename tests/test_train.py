"""The trainer: one step trains both networks, checkpoints and exact resume, the CLI's outputs,
load_generator, the NaN guard, the data stream and the EMA."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _train_data import SMALL, write_synthetic_dataset
from pianogan.cli import main as cli_main
from pianogan.train import checkpoint as ck
from pianogan.train.ema import ema_beta, update_ema
from pianogan.train.lr import lr_scale
from pianogan.train.sampler import BatchStream
from pianogan.train.trainer import Trainer, TrainingDiverged, train

# Small networks on 32x64 images: a step takes milliseconds to a few tenths of a second.
SMALL_NETS = {"d": 8, "max_channels": 64, "batch_size": 8}
QUIET = {"sample_every": 0, "sample_images": 0, "log_every": 1}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "ds", n=64)


def _params(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items() if v.is_floating_point()}


@pytest.mark.parametrize("model", ["dcgan", "specgan"])
def test_one_step_changes_G_and_D(data, tmp_path, model):
    t = Trainer(model, data, tmp_path / "run", config="tiny", overrides={**SMALL_NETS, **QUIET},
                progress=False)
    t._setup()
    g0, d0, e0 = _params(t.G), _params(t.D), _params(t.G_ema)
    stats = t.train_step(0)
    for name, before, after in (("G", g0, _params(t.G)), ("D", d0, _params(t.D)),
                                ("G_ema", e0, _params(t.G_ema))):
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        weights = [k for k in before if k.endswith("weight")]
        assert set(weights) <= set(changed), f"{name}: unchanged {set(weights) - set(changed)}"
    assert np.isfinite(stats["loss/D"]) and np.isfinite(stats["loss/G"])
    assert stats["grad/D_norm"] > 0 and stats["grad/G_norm"] > 0
    if model == "specgan":
        assert stats["loss/gp"] >= 0 and "gp/grad_norm" in stats


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


LOSS_KEYS = ("loss/D", "loss/G", "D/real", "D/fake", "grad/D_norm", "grad/G_norm")


@pytest.mark.parametrize("model,extra", [
    ("specgan", {}),
    # The paper's tricks draw random numbers too (label flips, instance noise).
    ("dcgan", {"label_flip_prob": 0.2, "instance_noise": 0.1, "label_smoothing": 0.1}),
])
def test_resume_equals_uninterrupted(data, tmp_path, model, extra):
    cfg = {"base": "tiny", "model": {**SMALL_NETS, **extra}}
    a, b = tmp_path / "a", tmp_path / "b"
    train(model, data, a, config=cfg, steps=6, ckpt_every=3, progress=False, **QUIET)
    train(model, data, b, config=cfg, steps=3, ckpt_every=3, progress=False, **QUIET)
    # A crash after the checkpoint: the resumed run must forget these metrics lines.
    with open(b / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 4, "loss/D": 123.0}) + "\n")
    s = train(model, data, b, config=None, resume=True, steps=6, progress=False)
    assert s["start_step"] == 3 and s["new_steps"] == 3
    ma, mb = _metrics(a), _metrics(b)
    assert [m["step"] for m in mb] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(ma, mb):
        for k in LOSS_KEYS:
            if k in ra:
                assert ra[k] == rb[k], (ra["step"], k, ra[k], rb[k])
    ca, cb = ck.load_checkpoint(ck.latest_checkpoint(a)), ck.load_checkpoint(ck.latest_checkpoint(b))
    assert ca["step"] == cb["step"] == 6
    for part in ("G", "D", "G_ema"):
        for k in ca[part]:
            assert torch.equal(ca[part][k], cb[part][k]), (part, k)


def test_a_run_killed_while_saving_its_last_step_resumes_to_that_step_s_generator(data, tmp_path, monkeypatch):
    """Killed between the final step's two writes, a resumed run must end with that step's
    generator: the checkpoint is written last, so the kill leaves the previous checkpoint and the
    resumed run does the step again (the other order left the step before's generator for good)."""
    from safetensors import safe_open

    cfg = {"base": "tiny", "model": SMALL_NETS}
    save_generator = ck.save_generator

    def killed_at_6(run, state, *args):
        if args[-1] == 6:
            raise KeyboardInterrupt  # a kill in the middle of the final save
        return save_generator(run, state, *args)

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(ck, "save_generator", killed_at_6)
        with pytest.raises(KeyboardInterrupt):
            train("dcgan", data, run, config=cfg, steps=6, ckpt_every=3, progress=False, **QUIET)
    s = train("dcgan", data, run, config=None, resume=True, steps=6, progress=False)
    assert s["start_step"] == 3 and s["new_steps"] == 3  # the step was done again
    last = ck.load_checkpoint(ck.latest_checkpoint(run))
    with safe_open(str(run / "generator.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["step"]) == last["step"] == 6
        assert all(torch.equal(f.get_tensor(k), v) for k, v in last["G_ema"].items())


def test_cli_outputs_resume_and_load_generator(data, tmp_path, capsys):
    run = tmp_path / "run"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"base": "tiny", "model": SMALL_NETS,
                               "train": {"sample_images": 4, "sample_audio": 1, "sample_gl_iters": 4}}))
    base = ["train", "--model", "dcgan", "--data", str(data), "--out", str(run), "--no-progress"]
    args = base + ["--config", str(cfg), "--steps", "4", "--sample-every", "2", "--ckpt-every", "2"]
    assert cli_main(args + ["--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 4 and summary["new_steps"] == 4 and summary["model"] == "dcgan"
    assert summary["checkpoint"].endswith("step-0000004.pt")
    assert sorted(p.name for p in ck.list_checkpoints(run)) == ["step-0000002.pt", "step-0000004.pt"]
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-0000004.pt"
    for rel in ("generator.safetensors", "samples/step-0000002.png", "samples/step-0000004.png",
                "samples/step-0000004-0.wav", "config.json", "metrics.jsonl"):
        assert (run / rel).is_file(), rel
    assert any((run / "tb").glob("events.out.tfevents.*"))

    # The checkpoint holds everything generate needs and loads without running code.
    raw = torch.load(run / "checkpoints" / "step-0000004.pt", weights_only=True)
    assert set(ck.KEYS) <= set(raw) and raw["step"] == 4 and raw["model"] == "dcgan"
    assert raw["preset"] == SMALL.to_dict() and raw["stats"]["mean"] == -4.0
    G1, info1 = ck.load_generator(run)  # generator.safetensors (EMA)
    G2, info2 = ck.load_generator(run / "checkpoints" / "step-0000004.pt")
    G3, _ = ck.load_generator(run / "checkpoints" / "step-0000004.pt", ema=False)
    assert info1["step"] == info2["step"] == 4 and info1["preset"] == SMALL
    assert info1["stats"].mean == -4.0 and info1["path"].endswith("generator.safetensors")
    assert not G1.training
    z = G1.sample_z(3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(G1(z), G2(z))
        assert not torch.equal(G1(z), G3(z))  # the raw weights differ from their average
    with pytest.raises(Exception, match="only the EMA"):
        ck.load_generator(run / "generator.safetensors", ema=False)

    # A second run into the same directory must say --resume; a finished run needs more --steps.
    assert cli_main(args) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert cli_main(args + ["--resume"]) == 2
    assert "already at step 4" in capsys.readouterr().err
    assert cli_main(base + ["--steps", "6", "--resume"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("trained dcgan to step 6 (2 new)") and "step-0000006.pt" in out
    assert ck.load_checkpoint(ck.latest_checkpoint(run))["step"] == 6
    # --resume keeps the run's model: a different one is refused in one line.
    assert cli_main(base + ["--steps", "8", "--resume", "--config", "tiny"]) == 2
    assert "--resume keeps the run's model configuration" in capsys.readouterr().err


def test_resume_refuses_a_dataset_prepared_again(tmp_path):
    from pianogan.errors import PianoGANError
    from pianogan.spectrogram import Stats

    data = write_synthetic_dataset(tmp_path / "ds", n=16)
    cfg = {"base": "tiny", "model": SMALL_NETS}
    train("dcgan", data, tmp_path / "run", config=cfg, steps=1, progress=False, **QUIET)
    Stats(mean=-3.0, std=2.0, count=1).save(data / "stats.json")
    with pytest.raises(PianoGANError, match="normalisation statistics"):
        train("dcgan", data, tmp_path / "run", config=None, resume=True, steps=2, progress=False)


def test_cli_bad_input(tmp_path, capsys):
    assert cli_main(["train", "--model", "dcgan", "--data", str(tmp_path), "--out",
                     str(tmp_path / "r")]) == 2
    assert "not a prepared dataset" in capsys.readouterr().err
    data = write_synthetic_dataset(tmp_path / "ds", n=8)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {"nonsense": 1}}))
    assert cli_main(["train", "--model", "specgan", "--data", str(data), "--out", str(tmp_path / "r"),
                     "--config", str(bad)]) == 2
    assert "unknown specgan model field 'nonsense'" in capsys.readouterr().err


def test_nan_guard_stops_and_keeps_last_good_checkpoint(data, tmp_path, monkeypatch):
    from pianogan.losses.bce import BCELoss

    g_loss = BCELoss.g_loss

    def poisoned(self, z, step):
        loss, stats = g_loss(self, z, step)
        return (loss * float("nan"), stats) if step == 3 else (loss, stats)

    monkeypatch.setattr(BCELoss, "g_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="diverged at step 4: the generator loss is nan") as e:
        train("dcgan", data, run, config={"base": "tiny", "model": SMALL_NETS}, steps=8, ckpt_every=2,
              progress=False, **QUIET)
    assert "step-0000002.pt" in str(e.value)
    assert ck.latest_checkpoint(run).name == "step-0000002.pt"
    c = ck.load_checkpoint(ck.latest_checkpoint(run))
    assert all(torch.isfinite(v).all() for v in c["G"].values() if v.is_floating_point())


def test_checkpoints_are_pruned_and_atomic(tmp_path):
    ckpt = {k: 0 for k in ck.KEYS}
    for step in (1, 2, 3, 4):
        ckpt["step"] = step
        ck.save_checkpoint(tmp_path, ckpt, keep=2)
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["step-0000003.pt", "step-0000004.pt"]
    assert ck.latest_checkpoint(tmp_path).name == "step-0000004.pt"
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if "tmp" in p.name]


def test_batch_stream_shards_and_repeats():
    a = [BatchStream(10, 3, world_size=2, rank=r, seed=1) for r in (0, 1)]
    b0, b1 = a[0].indices(0), a[1].indices(0)
    assert not set(b0) & set(b1)  # processes never share a clip within a batch
    seen = np.concatenate([s.indices(k) for k in range(5) for s in a])  # 30 positions = 3 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    assert np.array_equal(BatchStream(10, 3, 2, 0, seed=1).indices(4), a[0].indices(4))
    assert not np.array_equal(BatchStream(10, 3, 2, 0, seed=2).indices(0), b0)


def test_ema_rampup_and_update():
    class C:
        ema_half_life_kimg, ema_rampup = 10.0, 0.05

    # Early the half-life is 5% of the images seen: step 0 with batch 32 -> 1.6 images.
    assert ema_beta(C, 0, 32) == pytest.approx(0.5 ** (32 / 1.6))
    assert ema_beta(C, 100_000, 32) == pytest.approx(0.5 ** (32 / 10_000))
    ema, g = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    w0 = ema.weight.detach().clone()
    update_ema(ema, g, 0.75)
    assert torch.allclose(ema.weight, 0.75 * w0 + 0.25 * g.weight)


def test_lr_schedule_holds_then_ramps_down_linearly():
    from types import SimpleNamespace as C

    cfg = C(lr_decay_start_kimg=1.0, lr_decay_kimg=2.0, lr_final=0.1)
    # batch 10: step 100 is 1 kimg, step 300 is 3 kimg
    got = [lr_scale(cfg, s, 10) for s in (0, 100, 200, 300, 10_000)]
    assert got == pytest.approx([1.0, 1.0, 0.55, 0.1, 0.1])
    assert lr_scale(C(), 10_000, 10) == 1.0  # a family without the fields: constant
    assert lr_scale(C(lr_decay_start_kimg=0.0, lr_decay_kimg=0.0, lr_final=0.1), 10_000, 10) == 1.0
