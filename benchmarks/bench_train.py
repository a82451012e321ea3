"""Training-step speed: the paper's method written straight in PyTorch (fp32, eager) against
PianoGAN's trainer, with the same layer shapes, in one run.

* SpecGAN at 256x256, batch 64 (the paper's best system): one critic step and one 5 + 1 update
  (five critic steps, one generator step).
* DCGAN at 512x512, batch 32: one iteration (one D step + one G step).

Baseline = what a straightforward port does: fp32 NCHW tensors, separate discriminator passes
for real, fake and interpolated images, the generator's loss back-propagated through a
discriminator whose weight gradients are computed (and thrown away), torch.optim.Adam with its
default (per-tensor) implementation. Trainer = pianogan.train.trainer.Trainer.train_step as
`pianogan train` runs it: bf16 autocast where the CPU has native bf16 (AVX-512 BF16 / AMX),
fp32 elsewhere; one discriminator pass over [real; fake]; the penalty's critic gradient
written out instead of the generic double backward (SpecGAN); the frozen network's weight
gradients skipped; fused Adam; freed memory kept for reuse (no page faults each step); plus
everything the trainer does per step (data loading, gradient-norm guard, EMA). Both compute
the same losses (WGAN-GP with the per-sample penalty). Every baseline runs before any trainer.

Steps take tens of seconds on a 2-core CPU, so each method runs ONE 5 + 1 update (critic
time = median of its five critic steps); the first step of each pays one-off set-up costs.
`--quick` uses 128x128 / 256x256 and smaller batches. Writes benchmarks/results/train.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARGS = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ARGS.add_argument("--quick", action="store_true", help="smaller shapes and batches (minutes)")
ARGS.add_argument("--only", choices=["specgan", "dcgan"], help="one model only")
ARGS.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
ARGS.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
ARGS.add_argument("--amp", default="auto", choices=["auto", "bf16", "off"],
                  help="the trainer's mixed precision (default auto; 'off' shows the fp32 path "
                       "that CPUs without native bf16 take)")
OPTS = ARGS.parse_args()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pianogan.config import Preset  # noqa: E402
from pianogan.data.dataset import write_dataset  # noqa: E402
from pianogan.models import get_model  # noqa: E402
from pianogan.models.layers import to_stock  # noqa: E402
from pianogan.spectrogram import Stats  # noqa: E402
from pianogan.train.precision import cpu_flags, keep_freed_memory  # noqa: E402
from run_all import cpu_name, write_result  # noqa: E402
from pianogan.train.trainer import Trainer  # noqa: E402


def sync() -> None:
    if OPTS.device.startswith("cuda"):
        torch.cuda.synchronize()


CPU_TIMES: list[float] = []  # process CPU seconds of each timed call (robust on a busy machine)


@contextlib.contextmanager
def _clock(out: list):
    """Appends the wall seconds of the block to ``out``; its process CPU seconds go to CPU_TIMES."""
    sync()
    t, c = time.perf_counter(), time.process_time()
    yield
    sync()
    CPU_TIMES.append(time.process_time() - c)
    out.append(time.perf_counter() - t)


def timed(fn) -> float:
    """Wall seconds of fn(); its process CPU seconds go to CPU_TIMES."""
    out: list[float] = []
    with _clock(out):
        fn()
    return out[0]


# --------------------------------------------------------------------------- the baseline

class Baseline:
    """The paper's method written straight in PyTorch, fp32 eager, same layer shapes."""

    def __init__(self, model: str, cfg, shape, batch: int, data: np.ndarray, device):
        torch.manual_seed(0)
        self.model, self.cfg, self.batch, self.device = model, cfg, batch, device
        self.G, self.D = (to_stock(m).to(device) for m in get_model(model).build(cfg, shape))
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=cfg.betas, foreach=False)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=cfg.betas, foreach=False)
        self.data, self.k = data, 0

    def real(self) -> torch.Tensor:
        idx = np.arange(self.k * self.batch, (self.k + 1) * self.batch) % len(self.data)
        self.k += 1
        return torch.from_numpy(self.data[idx].astype(np.float32)).unsqueeze(1).to(self.device)

    def critic_step(self) -> None:
        G, D, B = self.G, self.D, self.batch
        real = self.real()
        with torch.no_grad():
            fake = G(G.sample_z(B))
        if self.model == "specgan":
            d_real, d_fake = D(real).mean(), D(fake).mean()
            eps = torch.rand(B, 1, 1, 1, device=self.device)
            x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
            gp = self.cfg.gp_weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            loss = d_fake - d_real + gp
        else:
            bce = torch.nn.functional.binary_cross_entropy_with_logits
            lr, lf = D(real), D(fake)
            loss = bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))
        self.opt_D.zero_grad()
        loss.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(D.parameters(), self.cfg.grad_clip)
        self.opt_D.step()

    def g_step(self) -> None:
        G, D = self.G, self.D
        out = D(G(G.sample_z(self.batch)))
        if self.model == "specgan":
            loss = -out.mean()
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        self.opt_G.zero_grad()
        loss.backward()  # D's weight gradients are computed too, and never used
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(G.parameters(), self.cfg.grad_clip)
        self.opt_G.step()

    def update(self, n_critic: int) -> tuple[list[float], float]:
        crit = [timed(self.critic_step) for _ in range(n_critic)]
        return crit, timed(self.g_step)


# --------------------------------------------------------------------------- the trainer

class TrainerStep:
    def __init__(self, model: str, data_dir: Path, out: Path, batch: int):
        self.t = Trainer(model, data_dir, out, config="default",
                         overrides={"batch_size": batch, "device": OPTS.device, "sample_images": 0,
                                    "amp": OPTS.amp},
                         progress=False)
        if self.t.device.type == "cpu":
            keep_freed_memory()  # as `pianogan train` does on a CPU
        self.t._setup()
        self.step = 0

    def update(self, n_critic: int) -> tuple[list[float], float]:
        """One Trainer.train_step, its critic steps and generator phase timed apart."""
        times: dict[str, list[float]] = {"critic": [], "generator": []}
        self.t.train_step(self.step, phase=lambda name: _clock(times[name]))
        self.step += 1
        return times["critic"], times["generator"][0]


def make_data(model: str, shape, batch: int, tmp: Path):
    """Random images of ``shape`` in [-1, 1], in memory and as a prepared dataset in ``tmp``."""
    preset = Preset(f"bench-{shape[0]}x{shape[1]}", 8000, 256, 128, 2.0, shape[0], shape[1])
    rng = np.random.default_rng(0)
    images = np.tanh(rng.normal(-0.5, 0.6, (max(2 * batch, 16), *shape))).astype(np.float32)
    return images, write_dataset(tmp / f"{model}-{time.monotonic_ns()}", images, preset,
                                 Stats(-4.0, 2.0, 1))


def bench_one(model: str, method: str, shape, batch: int, tmp: Path) -> dict:
    """Time one 5 + 1 update (1 + 1 for DCGAN) of ``method`` ("baseline" or "trainer")."""
    images, data_dir = make_data(model, shape, batch, tmp)
    cfg = get_model(model).CONFIGS["default"]
    n_critic = cfg.n_critic
    if method == "baseline":
        runner = Baseline(model, cfg, shape, batch, images, torch.device(OPTS.device))
        label = "baseline (fp32 eager, straight)"
    else:
        runner = TrainerStep(model, data_dir, tmp / f"{model}-run", batch)
        amp = runner.t.amp_dtype
        label = f"trainer ({str(amp).replace('torch.', '') if amp else 'fp32'})"
    CPU_TIMES.clear()
    crit, g = runner.update(n_critic)
    cpu = list(CPU_TIMES)
    update = sum(crit) + g
    row = {"label": label, "critic_s": statistics.median(crit), "critic_all_s": crit,
           "g_step_s": g, "update_s": update, "images_per_s": batch * n_critic / update,
           "cpu_critic_s": statistics.median(cpu[:-1]), "cpu_update_s": sum(cpu)}
    print(f"  {model} {shape[0]}x{shape[1]} batch {batch}, {label:34s} critic step "
          f"{row['critic_s']:7.2f} s   G step {g:6.2f} s   {n_critic}+1 update {update:7.2f} s   "
          f"({row['images_per_s']:.1f} real img/s; CPU time: critic {row['cpu_critic_s']:.2f} s, "
          f"update {row['cpu_update_s']:.2f} s)", flush=True)
    return row


def speedups(model: str, b: dict, t: dict, n_critic: int) -> dict:
    speed = {"critic": b["critic_s"] / t["critic_s"], "update": b["update_s"] / t["update_s"],
             "critic_cpu_time": b["cpu_critic_s"] / t["cpu_critic_s"],
             "update_cpu_time": b["cpu_update_s"] / t["cpu_update_s"]}
    print(f"  {model} speed-up: critic step {speed['critic']:.2f}x, {n_critic}+1 update "
          f"{speed['update']:.2f}x (by CPU time: {speed['critic_cpu_time']:.2f}x, "
          f"{speed['update_cpu_time']:.2f}x)")
    return speed


def main() -> int:
    if OPTS.threads:
        torch.set_num_threads(OPTS.threads)
    flags = cpu_flags()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    print(f"Training-step benchmark on {cpu_name()} ({', '.join(isa) or 'no AVX flags'}), "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, device {OPTS.device}")
    quick = OPTS.quick
    plan = {"specgan": ((128, 128), 16) if quick else ((256, 256), 64),
            "dcgan": ((256, 256), 8) if quick else ((512, 512), 32)}
    result = {"cpu": cpu_name(), "isa": isa, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "device": OPTS.device, "quick": quick, "amp": OPTS.amp}
    if OPTS.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
    models = [m for m in plan if not OPTS.only or m == OPTS.only]
    rows: dict[str, dict] = {m: {} for m in models}
    with tempfile.TemporaryDirectory() as tmp:
        # Every baseline runs before any trainer: the trainer runs as `pianogan train` runs it,
        # with a process-wide setting (glibc's allocator, see
        # pianogan.train.precision.keep_freed_memory) that a straight port would not have.
        for method in ("baseline", "trainer"):
            for model in models:
                shape, batch = plan[model]
                rows[model][method] = bench_one(model, method, shape, batch, Path(tmp))
    for model in models:
        shape, batch = plan[model]
        n_critic = get_model(model).CONFIGS["default"].n_critic
        b, t = rows[model]["baseline"], rows[model]["trainer"]
        result[model] = {"shape": list(shape), "batch": batch, "n_critic": n_critic, **rows[model],
                         "speedup": speedups(model, b, t, n_critic)}
    name = ("train-quick" if quick else "train") + ("" if OPTS.amp == "auto" else f"-amp-{OPTS.amp}")
    out = HERE / "results" / f"{name}.json"
    if OPTS.only and out.exists():  # keep the other model's figures from an earlier run
        try:
            old = json.loads(out.read_text())
            result = {**{k: v for k, v in old.items() if k in ("specgan", "dcgan")}, **result}
        except (OSError, json.JSONDecodeError):
            pass
    write_result(name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
