"""One place resolves a --device choice (pianogan.devices), and every parser offers the same."""

from __future__ import annotations

import pytest
import torch

from pianogan.cli import build_parser
from pianogan.devices import DEVICE_CHOICES, resolve_device
from pianogan.errors import PianoGANError
from pianogan.models import MODELS


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(PianoGANError, match="--device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(PianoGANError, match="--device cuda: no CUDA device available"):
            resolve_device("cuda")
    else:
        assert resolve_device("cuda", local_rank=0) == torch.device("cuda:0")


def test_parsers_offer_the_one_model_list_and_device_list():
    sub = build_parser()._subparsers._group_actions[0].choices
    train = {a.dest: a for a in sub["train"]._actions}
    assert tuple(train["model"].choices) == MODELS
    for name in ("train", "generate", "evaluate", "reconstruct"):
        device = {a.dest: a for a in sub[name]._actions}["device"]
        assert tuple(device.choices) == DEVICE_CHOICES, name
