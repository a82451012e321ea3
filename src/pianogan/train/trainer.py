"""The training loop shared by every model family.

One step = ``loss.n_critic`` discriminator updates (each on a fresh real batch and fresh
latents) and one generator update, then the EMA of G; the critic's statistics are logged as
their mean over the step's discriminator updates. Around that: bf16 autocast where the
hardware has it (pianogan.train.precision), gradient averaging across processes
(pianogan.train.distributed), gradient-norm clipping, a guard that stops on a non-finite loss
or gradient before it reaches the weights, TensorBoard scalars + ``metrics.jsonl``, sample
grids and WAVs, and atomic checkpoints from which a run resumes exactly (same batches, same
latents, same losses) — see docs/training.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..atomic import remove_stale_temps, write_json
from ..errors import PianoGANError, warn
from . import checkpoint as ck
from . import conditioning as cn
from . import distributed as dd
from .config import resolve_config, resumed_config
from .ema import ema_beta, make_ema, update_ema
from .lr import lr_scale, remember_base_lr, set_lr
from .metrics import trim_metrics
from .precision import autocast, autocast_dtype, use_channels_last
from .sampler import BatchStream


class TrainingDiverged(PianoGANError):
    """A loss or gradient became NaN/inf; the weights were not updated with it."""


def load_training_data(data: str | Path):
    """The training split of a prepared dataset (all clips if it has no "train" split)."""
    from ..data.dataset import PianoDataset

    ds = PianoDataset(data, split="train")
    if len(ds) == 0:
        ds = PianoDataset(data)
    if len(ds) == 0:
        raise PianoGANError(f"{data}: the dataset has no clips")
    return ds


def _seed_all(seed: int) -> None:
    import random

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _config_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def mean_stats(records: list[dict]) -> dict:
    """Each statistic's mean over the records that have it (the n_critic critic steps of one G
    step: some, like a lazy regulariser's, appear only on some of them)."""
    keys = dict.fromkeys(k for r in records for k in r)
    return {k: float(np.mean([r[k] for r in records if k in r])) for k in keys}


class Trainer:
    """Set up with :meth:`__init__`, train with :meth:`run` (see :func:`train`)."""

    def __init__(self, model: str, data: str | Path, out: str | Path,
                 config: str | Path | dict | None = "default", resume: bool = False,
                 overrides: dict | None = None, progress: bool = True):
        from ..models import get_model

        self.model_name, self.out, self.progress = model, Path(out), progress
        self.family = get_model(model)
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self.dataset = load_training_data(data)
        self.preset, self.stats = self.dataset.preset, self.dataset.stats

        if not resume and ck.latest_checkpoint(self.out) is not None:
            raise PianoGANError(f"{self.out} already holds checkpoints; pass --resume to continue "
                                f"that run or choose another --out")
        # The newest readable checkpoint: a damaged newest one is skipped with a warning.
        found = ck.load_newest_checkpoint(self.out) if resume else None
        self.resume_from, self.ckpt = found if found else (None, None)
        if self.ckpt is not None:
            now = {"model": model, "preset": self.preset.to_dict(), "stats": self.stats.to_dict()}
            self.model_cfg, self.train_cfg = resumed_config(model, self.ckpt, self.resume_from, now,
                                                            config, overrides,
                                                            lambda c: cn.configure(self.family, c, self.dataset))
        else:
            self.model_cfg, self.train_cfg = resolve_config(model, config, overrides)
            self.model_cfg = cn.configure(self.family, self.model_cfg, self.dataset)
        self.labels = cn.clip_labels(self.model_cfg, self.dataset)
        self.rolls = cn.clip_rolls(self.model_cfg, self.dataset)
        self.keys = cn.clip_keys(self.model_cfg, self.rolls)
        self.beats = cn.clip_beats(self.model_cfg, self.rolls)
        self.plans = cn.clip_plans(self.model_cfg, self.rolls, self.beats)

        self.env = dd.init(self.train_cfg.device)
        self.device = self.env.device
        batch = int(self.model_cfg.batch_size)
        if batch % self.env.world_size:
            raise PianoGANError(f"batch size {batch} is not divisible by the {self.env.world_size} "
                                f"processes")
        self.batch_global, self.batch = batch, batch // self.env.world_size
        self.amp_dtype = autocast_dtype(self.train_cfg.amp, self.device)
        self.channels_last = use_channels_last(self.train_cfg.channels_last, self.device,
                                               self.preset.image_shape)

    def cond(self, indices) -> dict:
        """The losses' conditioning kwargs for a real batch's clip ``indices`` (None: drawn)."""
        return cn.batch_cond(self.labels, indices, self.batch, self.device, self.rolls, self.keys, self.beats,
                             self.plans)

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg, tc, dev = self.model_cfg, self.train_cfg, self.device
        _seed_all(tc.seed)  # identical initial weights on every process
        G, D = self.family.build(cfg, self.preset.image_shape)
        mf = torch.channels_last if self.channels_last else torch.contiguous_format
        self.G, self.D = G.to(dev, memory_format=mf), D.to(dev, memory_format=mf)
        # Parameters a model holds fixed (the longform renderer once fitted): the per-step
        # freezing below toggles the others only.
        self.fixed = {id(p) for net in (self.G, self.D) for p in net.parameters() if not p.requires_grad}
        self.G_ema = make_ema(self.G)
        self.opt_G = self._optimizer(self.G, "G")
        self.opt_D = self._optimizer(self.D, "D")
        self.loss = self.family.make_loss(cfg, self.G, self.D)
        self.start_step = 0
        if self.ckpt is not None:
            c = self.ckpt
            self.G.load_state_dict(c["G"])
            self.D.load_state_dict(c["D"])
            self.G_ema.load_state_dict(c["G_ema"])
            self.opt_G.load_state_dict(c["opt_G"])
            self.opt_D.load_state_dict(c["opt_D"])
            self.loss.load_state_dict(c["loss_state"])
            self.start_step = int(c["step"])
            rng = c["rng"]
            if int(rng.get("world_size", 1)) == self.env.world_size:
                ck.set_rng_state(rng["ranks"][self.env.rank], dev)
            else:  # another process count: a fresh, still deterministic stream per process
                _seed_all(tc.seed * 1_000_003 + self.start_step * 101 + self.env.rank + 1)
            self.ckpt = None  # free the memory
        else:
            if callable(getattr(self.family, "prepare", None)):  # data-dependent initialisation
                self.family.prepare(self.G, self.dataset, rolls=self.rolls, plans=self.plans)
                self.G_ema.load_state_dict(self.G.state_dict())
            for m in (self.G, self.D, self.G_ema):
                dd.broadcast_module(m, self.env)
            _seed_all(tc.seed * 1_000_003 + self.env.rank + 1)  # own latents per process
        for opt in (self.opt_G, self.opt_D):
            remember_base_lr(opt)
        self.stream = BatchStream(len(self.dataset), self.batch, self.env.world_size, self.env.rank,
                                  tc.seed)
        gen = torch.Generator().manual_seed(tc.sample_seed)
        self.fixed_z = self.G.sample_z(tc.sample_images, generator=gen).to(dev) if tc.sample_images else None
        self.fixed_cond = cn.fixed_cond(self.labels, len(getattr(cfg, "styles", ())), tc.sample_images, dev,
                                        self.keys)

    def _optimizer(self, net: torch.nn.Module, which: str) -> torch.optim.Optimizer:
        cfg = self.model_cfg
        if callable(getattr(cfg, "adam", None)):
            kw = dict(cfg.adam(which))
        else:
            kw = {"lr": cfg.lr_g if which == "G" else cfg.lr_d, "betas": tuple(cfg.betas),
                  "eps": cfg.adam_eps}
        # Fused Adam (one kernel over all tensors) exists for CUDA and, since torch 2.4, CPU.
        try:
            return torch.optim.Adam(net.parameters(), fused=True, **kw)
        except (RuntimeError, TypeError):
            return torch.optim.Adam(net.parameters(), foreach=True, **kw)

    # ------------------------------------------------------------------ one step
    def real_batch(self, idx: np.ndarray) -> torch.Tensor:
        """The training clips ``idx`` (a batch of the stream) as (B, 1, H, W) on the device."""
        x = torch.from_numpy(self.dataset.images(idx)).unsqueeze(1)
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _update(self, net, opt, loss: torch.Tensor, name: str, step: int) -> float:
        """Backward, average across processes, guard, clip, step. Returns the gradient norm."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in net.parameters() if p.grad is not None]
        mean_loss = dd.average_gradients(params, self.env, loss.detach().float().reshape(1))
        clip = float(self.model_cfg.grad_clip)
        if clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params], foreach=True)
        loss_v, norm_v = float(mean_loss.item()), float(norm.item())
        if not (math.isfinite(loss_v) and math.isfinite(norm_v)):
            what = "loss" if not math.isfinite(loss_v) else "gradient norm"
            raise TrainingDiverged(
                f"training diverged at step {step + 1}: the {name} {what} is {loss_v if what == 'loss' else norm_v}; "
                f"the weights were not updated with it. Last good checkpoint: "
                f"{ck.latest_checkpoint(self.out) or 'none yet'} (continue with --resume, perhaps "
                f"with a lower learning rate)")
        opt.step()
        return norm_v

    def d_step(self, step: int, i: int) -> dict:
        """Discriminator update ``i`` (0..n_critic-1) of G step ``step``; returns its statistics."""
        idx = self.stream.indices(step * int(self.loss.n_critic) + i)
        real = self.real_batch(idx)
        z = self.G.sample_z(self.batch, device=self.device)
        with autocast(self.device, self.amp_dtype):
            d_loss, stats = self.loss.d_loss(real, z, step, **self.cond(idx))
        stats["grad/D_norm"] = self._update(self.D, self.opt_D, d_loss, "discriminator", step)
        return stats

    def g_step(self, step: int) -> dict:
        """The generator update of G step ``step``; returns its statistics."""
        z = self.G.sample_z(self.batch, device=self.device)
        with autocast(self.device, self.amp_dtype):
            g_loss, stats = self.loss.g_loss(z, step, **self.cond(None))
        stats["grad/G_norm"] = self._update(self.G, self.opt_G, g_loss, "generator", step)
        return stats

    def trainable(self, net: torch.nn.Module, on: bool) -> None:
        """Switch weight gradients of ``net`` on or off, leaving the model's fixed parameters off."""
        for p in net.parameters():
            p.requires_grad_(on and id(p) not in self.fixed)

    def train_step(self, step: int, phase=None) -> dict:
        """One generator step (after n_critic discriminator steps); returns its statistics.

        ``phase(name)``, optional, gives a context manager put around each discriminator step
        ("critic") and around the rest ("generator": G's update, buffers, EMA); the training
        benchmark times the two with it.
        """
        phase = phase or (lambda name: contextlib.nullcontext())
        G, D = self.G, self.D
        lr = lr_scale(self.model_cfg, step, self.batch_global)
        set_lr(self.opt_G, lr)
        set_lr(self.opt_D, lr)
        # Each network is frozen while the other trains: no weight gradients are computed for it.
        self.trainable(G, False)
        self.trainable(D, True)
        critic = []
        for i in range(int(self.loss.n_critic)):
            with phase("critic"):
                critic.append(self.d_step(step, i))
        stats = mean_stats(critic)
        with phase("generator"):
            self.trainable(G, True)
            self.trainable(D, False)
            stats.update(self.g_step(step))
            self.trainable(D, True)
            dd.average_buffers(G, self.env)  # batch-norm statistics: the same on every process
            dd.average_buffers(D, self.env)
            beta = ema_beta(self.model_cfg, step, self.batch_global)
            update_ema(self.G_ema, G, beta)
        stats["ema/beta"] = beta
        stats["lr/scale"] = lr
        return stats

    # ------------------------------------------------------------------ outputs
    def checkpoint_dict(self, step: int) -> dict:
        rngs = dd.gather_objects(ck.rng_state(self.device), self.env)
        return {"format_version": ck.FORMAT_VERSION, "model": self.model_name,
                "model_config": _config_dict(self.model_cfg), "preset": self.preset.to_dict(),
                "stats": self.stats.to_dict(), "step": int(step), "G": self.G.state_dict(),
                "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
                "loss_state": self.loss.state_dict(),
                "rng": {"world_size": self.env.world_size, "ranks": rngs},
                "train_config": _config_dict(self.train_cfg)}

    def save(self, step: int) -> Path | None:
        for m in (self.G, self.D, self.G_ema):
            if not all(torch.isfinite(p).all() for p in m.parameters()):
                raise TrainingDiverged(f"non-finite weights at step {step}; not saving over the last "
                                       f"good checkpoint {ck.latest_checkpoint(self.out)}")
        ckpt = self.checkpoint_dict(step)  # every process joins the RNG gather
        path = None
        if self.env.is_main:
            # The generator first, the checkpoint last: a run killed between the two resumes from
            # the previous checkpoint and writes both again. The other order left a run whose last
            # checkpoint was its final step with the generator of the step before, for good (a
            # resumed run with no steps left saves nothing), and the killed write's temporary file.
            ck.save_generator(self.out, self.G_ema.state_dict(), self.model_name, ckpt["model_config"],
                              self.preset, self.stats, step)
            path = ck.save_checkpoint(self.out, ckpt, keep=self.train_cfg.keep_checkpoints)
        dd.barrier(self.env)
        return path

    @torch.no_grad()
    def sample(self, step: int, writer) -> None:
        from ..generate_files import save_grid_png
        from .samples import save_audio

        tc = self.train_cfg
        if not self.env.is_main or self.fixed_z is None:
            return
        images = self.G_ema(self.fixed_z, **self.fixed_cond).float().squeeze(1).cpu().numpy()
        folder = self.out / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        png = save_grid_png(folder / f"step-{step:07d}.png", images, preset=self.preset, cols=4,
                            title=f"{self.model_name}, step {step} (EMA generator)")
        save_audio(images[:tc.sample_audio], self.preset, self.stats, folder, f"step-{step:07d}",
                   n_iter=tc.sample_gl_iters)
        if writer is not None:
            import matplotlib.image

            writer.add_image("samples", matplotlib.image.imread(str(png))[..., :3], step,
                             dataformats="HWC")

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict:
        from tqdm.auto import tqdm

        try:
            self._setup()
            return self._loop(tqdm)
        finally:
            dd.shutdown(self.env)

    def _open_logs(self):
        if not self.env.is_main:
            return None, None
        self.out.mkdir(parents=True, exist_ok=True)
        for folder in (self.out, self.out / "checkpoints", self.out / "samples"):
            remove_stale_temps(folder)  # what a killed run was writing
        write_json(self.out / "config.json",
                   {"model": self.model_name, "model_config": _config_dict(self.model_cfg),
                    "train_config": _config_dict(self.train_cfg), "preset": self.preset.to_dict(),
                    "stats": self.stats.to_dict(), "world_size": self.env.world_size})
        metrics = self.out / "metrics.jsonl"
        # Drop what a crashed run logged after its last checkpoint, and a line torn by a kill.
        torn = trim_metrics(metrics, self.start_step)
        if torn:
            warn(f"{metrics}: skipped {len(torn)} unreadable line(s) ({', '.join(map(str, torn))}), "
                 f"torn by a crash; kept every complete one")
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.out / "tb"), purge_step=self.start_step + 1 if self.start_step else None)
        except ImportError:  # tensorboard is a dependency, but training should not need it
            writer = None
        return writer, open(metrics, "a")

    def _loop(self, tqdm) -> dict:
        tc, env = self.train_cfg, self.env
        total = tc.steps
        if self.start_step >= total:
            raise PianoGANError(f"the run is already at step {self.start_step} >= --steps {total}; "
                                f"pass a larger --steps to continue it")
        writer, metrics = self._open_logs()
        bar = tqdm(total=total, initial=self.start_step, desc=f"train {self.model_name}", unit="step",
                   disable=not (self.progress and env.is_main), dynamic_ncols=True)
        n_critic = int(self.loss.n_critic)
        t_start, last_path, stats = time.perf_counter(), None, {}
        try:
            for step in range(self.start_step, total):
                t0 = time.perf_counter()
                stats = self.train_step(step)
                done = step + 1
                dt = time.perf_counter() - t0
                stats["speed/step_s"] = dt
                stats["speed/real_img_per_s"] = self.batch_global * n_critic / dt
                bar.update(1)
                if done % tc.log_every == 0 or done == total:
                    bar.set_postfix({k.split("/")[-1]: f"{stats[k]:.3g}" for k in ("loss/D", "loss/G")
                                     if k in stats})
                    if writer is not None:
                        for k, v in stats.items():
                            writer.add_scalar(k, v, done)
                    if metrics is not None:
                        metrics.write(json.dumps({"step": done, **stats}) + "\n")
                        metrics.flush()
                if tc.sample_every and done % tc.sample_every == 0 or done == total:
                    self.sample(done, writer)
                if done % tc.ckpt_every == 0 or done == total:
                    last_path = self.save(done) or last_path
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            if metrics is not None:
                metrics.close()
        seconds = time.perf_counter() - t_start
        new = total - self.start_step
        return {"model": self.model_name, "run": str(self.out), "steps": total,
                "start_step": self.start_step, "new_steps": new, "seconds": round(seconds, 3),
                "s_per_step": round(seconds / new, 4),
                "real_img_per_s": round(self.batch_global * n_critic * new / seconds, 2),
                "batch_size": self.batch_global, "world_size": env.world_size,
                "device": str(self.device), "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off",
                "final": {k: round(v, 5) for k, v in stats.items() if k.startswith(("loss/", "D/"))},
                "checkpoint": str(last_path) if last_path else None,
                "generator": str(self.out / "generator.safetensors") if env.is_main else None}


def train(model: str, data: str | Path, out: str | Path, config: str | Path | dict | None = "default",
          resume: bool = False, progress: bool = True, **overrides) -> dict:
    """Train family ``model`` on the prepared dataset ``data``, writing run directory ``out``.

    ``config``: a preset name ("default", "tiny"), a JSON file or a dict (see
    :func:`pianogan.train.config.resolve_config`); with ``resume`` and a checkpoint in ``out``,
    None means "the checkpoint's". ``overrides``: single fields of TrainConfig or the model
    Config (e.g. ``steps=300, batch_size=16``). Returns a summary dict.
    """
    return Trainer(model, data, out, config=config, resume=resume, overrides=overrides,
                   progress=progress).run()
