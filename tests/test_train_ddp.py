"""Data-parallel training: two CPU processes (gloo), as torchrun would start them, finish a run
and end with identical weights; only rank 0 writes the run directory."""

from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp

from _train_data import free_port, write_synthetic_dataset
from pianogan.train import checkpoint as ck

WORLD = 2


MODELS = ("dcgan", "specgan", "longform")


def _config(model: str) -> dict:
    if model == "longform":  # style labels, piano rolls and the renderer fit included
        from test_longform import SMALL

        return {"base": "tiny", "model": {**SMALL, "render_fit_steps": 3, "roll_width": 32}}
    extra = {"label_flip_prob": 0.2, "instance_noise": 0.1} if model == "dcgan" else {}
    return {"base": "tiny", "model": {"d": 8, "max_channels": 64, **extra}}


def _worker(rank: int, ports: list[int], datasets: dict, tmp: str) -> None:
    torch.set_num_threads(1)
    from pianogan.train.trainer import Trainer

    for model, port in zip(MODELS, ports):  # one pair of processes for both runs: start-up is slow
        # What torchrun puts in each process's environment.
        os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                           "LOCAL_RANK": str(rank), "WORLD_SIZE": str(WORLD)})
        t = Trainer(model, datasets[model], f"{tmp}/{model}", config=_config(model),
                    overrides={"steps": 3, "batch_size": 8, "ckpt_every": 2, "sample_every": 0,
                               "sample_images": 0, "log_every": 1, "device": "cpu"}, progress=False)
        summary = t.run()
        torch.save({"G": t.G.state_dict(), "D": t.D.state_dict(), "G_ema": t.G_ema.state_dict(),
                    "opt_D": t.opt_D.state_dict(), "summary": summary, "batch": t.batch,
                    "first_batch": t.stream.indices(0).tolist()}, f"{tmp}/{model}-rank{rank}.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    from test_longform import _dataset

    data = str(write_synthetic_dataset(tmp / "ds", n=32))
    datasets = {"dcgan": data, "specgan": data, "longform": str(_dataset(tmp / "lf", n=32, midi=True))}
    mp.spawn(_worker, args=([free_port() for _ in MODELS], datasets, str(tmp)), nprocs=WORLD,
             join=True)
    return tmp


@pytest.mark.parametrize("model", MODELS)
def test_two_process_run_keeps_ranks_identical(runs, model):
    out = runs / model
    r0, r1 = (torch.load(runs / f"{model}-rank{r}.pt", weights_only=True) for r in range(WORLD))
    for part in ("G", "D", "G_ema"):
        assert r0[part].keys() == r1[part].keys()
        for k in r0[part]:
            assert torch.equal(r0[part][k], r1[part][k]), (part, k)
    st0, st1 = r0["opt_D"]["state"], r1["opt_D"]["state"]
    assert all(torch.equal(st0[i]["exp_avg"], st1[i]["exp_avg"]) for i in st0)
    # The global batch of 8 is split 4 + 4, over different clips.
    assert r0["batch"] == r1["batch"] == 4
    assert not set(r0["first_batch"]) & set(r1["first_batch"])
    assert r0["summary"]["world_size"] == 2 and r0["summary"]["steps"] == 3
    # Rank 0 wrote the run: checkpoints at steps 2 and 3, with both processes' RNG states.
    assert [p.name for p in ck.list_checkpoints(out)] == ["step-0000002.pt", "step-0000003.pt"]
    c = ck.load_checkpoint(ck.latest_checkpoint(out))
    assert c["rng"]["world_size"] == 2 and len(c["rng"]["ranks"]) == 2
    assert not torch.equal(c["rng"]["ranks"][0]["torch"], c["rng"]["ranks"][1]["torch"])
    for k, v in c["G"].items():
        assert torch.equal(v, r0["G"][k])
