"""Running a shared model for the Inside views: input checks, a private copy in eval mode
(the served network itself is never hooked: `analysis.private`), and forward hooks that are
removed on every path out.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ...data.transforms import normalize_uint8
from ..gradcam import ExplainError, target_layer
from ..private import borrowed
from ...errors import UserError, whole_number

IMAGE_SIZE = 32


class InsideError(UserError):
    pass


class _Stop(Exception):
    """Raised by a hook to end the forward pass once the wanted layer has run."""


def check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 \
            or image.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InsideError(f"expected a ({IMAGE_SIZE}, {IMAGE_SIZE}, 3) uint8 image, got {got}")
    return image


def to_input(image: np.ndarray, model: nn.Module) -> torch.Tensor:
    """(32, 32, 3) uint8 -> (1, 3, 32, 32) normalised float tensor on the model's device."""
    device = next(model.parameters()).device
    return torch.from_numpy(normalize_uint8(check_image(image)[None])).to(device)


def module(model: nn.Module, layer) -> nn.Module:
    if not isinstance(layer, str):
        raise InsideError(f"layer must be a name such as 'C4' or 'C2.conv1', got {type(layer).__name__}")
    try:
        return target_layer(model, layer)
    except ExplainError as exc:
        raise InsideError(str(exc)) from None


@contextmanager
def running(model: nn.Module) -> Iterator[nn.Module]:
    """An eval-mode copy of `model` that only this request runs and hooks: run and hook the
    yielded network, never `model` (another visitor may be running it)."""
    with borrowed(model) as net:
        net.eval()
        yield net


@contextmanager
def recording(layer_module: nn.Module, stop: bool) -> Iterator[dict]:
    """Record `layer_module`'s output in the yielded dict under "out"; with `stop`, end the
    forward pass right there (the layers after it are not needed). The hook is always removed."""
    seen: dict = {}

    def hook(_module, _inputs, output):
        seen["out"] = output
        if stop:
            raise _Stop

    handle = layer_module.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def layer_output(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The output of `layer` for input `x` (B, 3, H, W), running the network only up to it.

    `model` is the network `running` yielded; gradients flow when `x` requires them.
    """
    with recording(module(model, layer), stop=True) as seen:
        try:
            model(x)
        except _Stop:
            pass
    if "out" not in seen:
        raise InsideError(f"layer {layer} did not run")
    return seen["out"]


def forward_with(model: nn.Module, x: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, output of `layer`) from one full forward pass of the network `running` yielded."""
    with recording(module(model, layer), stop=False) as seen:
        logits = model(x)
    return logits, seen["out"]


def whole(value, name: str, lo: int, hi: int) -> int:
    """A whole number in [lo, hi] from a UI or JSON value; anything else is an InsideError."""
    return whole_number(value, name, lo, hi, error=InsideError)
