"""Shared test set-up: every test starts from the same global random state, so a model a test builds
(whose weights come from torch's global generator) is the same whether the test runs alone, under
``-k``, or after any other test."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _same_random_start():
    torch.manual_seed(0)
    np.random.seed(0)
    yield
