"""Where a command runs: the one place a ``--device`` choice becomes a torch device (training,
generation, evaluation and reconstruction all resolve theirs here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import PianoGANError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")  # what every --device option offers ("cuda:N" also works)


def resolve_device(choice: str = "auto", local_rank: int = 0) -> torch.device:
    """The torch device for ``choice``: "auto" = CUDA when a GPU is available, else the CPU;
    "cuda" = this process's GPU (``cuda:local_rank``, the local rank under torchrun); "cuda:N";
    "cpu". Asking for CUDA where there is none is a one-line PianoGANError."""
    import torch  # here, so that parsers can import DEVICE_CHOICES cheaply

    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PianoGANError(f"--device {choice}: no CUDA device available")
        return torch.device(choice if ":" in choice else f"cuda:{local_rank}")
    if choice != "cpu":
        raise PianoGANError(f"--device must be one of {', '.join(DEVICE_CHOICES)} or cuda:N, got {choice!r}")
    return torch.device("cpu")
