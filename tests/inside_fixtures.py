"""Fixtures shared by the Inside tests (imported by name into each module that uses them)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cifar_s9.model.net import build_model


@pytest.fixture(scope="module")
def net():
    """A random default network with its residual branches switched on (signal everywhere)."""
    torch.manual_seed(1)
    m = build_model("default")
    for block in m.blocks:
        torch.nn.init.ones_(block.conv3[1].weight)
    return m.eval()


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
