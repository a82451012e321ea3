"""Per-device speed settings: mixed precision, memory format, and (CPU) the allocator.

bf16 autocast is used where the hardware multiplies bf16 natively: CUDA GPUs that support it,
and CPUs with AVX-512 BF16 or AMX (oneDNN then runs convolutions in bf16, about twice the
fp32 rate). On other CPUs bf16 would be emulated and slower, so ``"auto"`` keeps fp32 there.
Weights, optimiser state and losses stay fp32 either way (autocast only changes op inputs).
On CPUs `pianogan train` also keeps freed memory for reuse (:func:`keep_freed_memory`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from pathlib import Path

import torch


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX-512 BF16 or AMX-BF16 instructions."""
    flags = cpu_flags()
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` ("auto", "bf16", "off") on ``device``; None = fp32."""
    if amp == "off":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        if amp == "bf16" or cpu_has_native_bf16():
            return torch.bfloat16
    return None


def use_channels_last(setting: str, device: torch.device, image_shape: tuple[int, int]) -> bool:
    """Channels-last (NHWC) weights and activations. "auto": on CUDA (tensor cores want NHWC);
    on a CPU for images of 256x256 pixels or more. Measured on an AVX-512 BF16 CPU (process
    time, one thread): DCGAN 512² batch 32 steps 1.4x faster, SpecGAN 256² batch 64 1.06x, but
    SpecGAN 128² batch 16 5% slower (the optimiser's and the GEMM convolutions' weight-layout
    copies outweigh the gain on small maps)."""
    if setting in ("on", "off"):
        return setting == "on"
    if device.type == "cuda":
        return True
    return int(image_shape[0]) * int(image_shape[1]) >= 256 * 256


def autocast(device: torch.device, dtype: torch.dtype | None):
    """A torch.autocast context for ``dtype`` (a no-op context when None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the system.

    A training step allocates and frees the same few-hundred-MB activation tensors every time.
    glibc serves blocks that large with mmap and unmaps them on free, so every step the kernel
    maps and zero-fills them afresh: 1.7 million page faults and 2 of 19.7 s per SpecGAN 256²
    critic step (batch 64) on a 2-core AVX-512 BF16 CPU. With mmap off for malloc and the heap
    never trimmed, the blocks are reused: no faults, same results. The process keeps its peak
    memory, which a training process needs again at the next step anyway. Process-wide and
    irreversible in effect, so only a command that owns its process calls it (`pianogan train`,
    on CPU), never a library object such as the Trainer. Returns False where there is no
    glibc (macOS, musl, Windows), and nothing changes there.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's <malloc.h>
    # A threshold of -1 converts to SIZE_MAX inside glibc: never trim.
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, -1))
