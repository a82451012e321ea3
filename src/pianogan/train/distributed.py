"""Data-parallel training across processes started by ``torchrun`` (one per GPU or CPU slot).

Each process trains on its own shard of every batch; after each backward pass the gradients
are averaged over all processes (one all-reduce of a flat buffer), so every process applies
the same update and the models stay identical. This is what DistributedDataParallel does,
written out because DDP's reducer assumes one forward and one backward per module per step,
which GAN training breaks (D runs on real, fake and interpolated batches, the gradient penalty
needs a double backward, and each network sits frozen while the other one trains).
NCCL on CUDA, gloo on CPU; only rank 0 writes files. Without torchrun (no WORLD_SIZE in the
environment) everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..devices import resolve_device


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this code started the process group (and ends it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device_choice: str = "auto") -> DistEnv:
    """Join the process group that torchrun describes in the environment (if any)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(device=resolve_device(device_choice))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owns = True
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=device, owns_group=owns)


def shutdown(env: DistEnv) -> None:
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


@torch.no_grad()
def _average_in_place(tensors: list[torch.Tensor], env: DistEnv) -> None:
    """Replace each tensor by its mean over processes: one all-reduce of a flat buffer."""
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= env.world_size
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def average_gradients(params: list[torch.Tensor], env: DistEnv,
                      extra: torch.Tensor | None = None) -> torch.Tensor | None:
    """Average ``p.grad`` over processes in place; ``extra`` (a small 1-D tensor, e.g. the
    loss) rides along and comes back averaged — on one process it is returned unchanged."""
    if not env.enabled:
        return extra
    grads = [p.grad for p in params if p.grad is not None]
    if extra is not None:
        extra = extra.reshape(-1).to(dtype=grads[0].dtype if grads else torch.float32, copy=True)
    _average_in_place(grads + ([extra] if extra is not None else []), env)
    return extra


def average_buffers(module: torch.nn.Module, env: DistEnv) -> None:
    """Average floating-point buffers (batch-norm statistics) so every process holds the same."""
    bufs = [b for b in module.buffers() if b.is_floating_point()]
    if env.enabled and bufs:
        _average_in_place(bufs, env)


@torch.no_grad()
def broadcast_module(module: torch.nn.Module, env: DistEnv) -> None:
    """Copy rank 0's parameters and buffers to every process."""
    if env.enabled:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def gather_objects(obj, env: DistEnv) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every process."""
    if not env.enabled:
        return [obj]
    out = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(env: DistEnv) -> None:
    if env.enabled:
        dist.barrier()
