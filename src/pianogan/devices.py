"""Where a command runs: the one place a ``--device`` choice becomes a torch device."""

from __future__ import annotations

import torch

from .errors import PianoGANError

DEVICE_CHOICES = ("auto", "cpu", "cuda")  # what every --device option offers ("cuda:N" also works)


def resolve_device(choice: str = "auto", local_rank: int = 0) -> torch.device:
    """The torch device for ``choice``: "auto" = CUDA when a GPU is available, else the CPU;
    "cuda" = this process's GPU (``cuda:local_rank``, the local rank under torchrun); "cuda:N";
    "cpu". Asking for CUDA where there is none is a one-line PianoGANError."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PianoGANError(f"--device {choice}: no CUDA device available")
        return torch.device(choice if ":" in choice else f"cuda:{local_rank}")
    if choice != "cpu":
        raise PianoGANError(f"--device must be one of {', '.join(DEVICE_CHOICES)} or cuda:N, got {choice!r}")
    return torch.device("cpu")
