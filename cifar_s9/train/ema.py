"""The exponential moving average of the weights that a run evaluates and exports."""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def ema_with_warmup(decay: float):
    """EMA whose decay ramps up as (1 + n) / (10 + n): early averages forget the random init."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        n = float(num_averaged)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], weight)
        for a, c in zip(averaged, current):
            if not a.is_floating_point():
                a.copy_(c)  # BatchNorm's num_batches_tracked

    return update


def make_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """The averaged copy of `model` (buffers included), or None when `decay` is 0."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=ema_with_warmup(decay), use_buffers=True)
