"""Mixup (Zhang et al., 2018): each batch blended with a permutation of itself."""
from __future__ import annotations

import numpy as np
import torch

from .config import TrainConfig


def mixup_lambda(cfg: TrainConfig, epoch: int) -> float | None:
    """The weight of each image against its partner for this batch, or None for no mixup.
    `epoch` is 0-based: the ramp of `mixup_max` reads it."""
    # the generator is seeded from torch's only when mixup is on: runs without it keep the
    # torch random stream (dropout draws, permutations) they always had
    draw = lambda: np.random.default_rng(int(torch.randint(0, 2**31, ())))  # noqa: E731
    if cfg.mixup_max > 0:
        ramp = cfg.mixup_ramp_epochs
        m = cfg.mixup_max * (min(1.0, epoch / ramp) if ramp else 1.0)
        return 1.0 - float(draw().uniform(0.0, m)) if m > 0 else None
    if cfg.mixup_alpha > 0:
        return float(draw().beta(cfg.mixup_alpha, cfg.mixup_alpha))
    return None


def mix_batch(x: torch.Tensor, targets: torch.Tensor, y: torch.Tensor, lam: float,
              perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixup of a batch with its permutation: images, soft targets (labels, or a teacher's stored
    probabilities: the same lambda), and the label that dominates each mixed image (training
    accuracy counts that one, else a lam < 0.5 draw scores ~0)."""
    mixed_x = lam * x + (1 - lam) * x[perm]
    mixed_targets = lam * targets + (1 - lam) * targets[perm]
    return mixed_x, mixed_targets, (y if lam >= 0.5 else y[perm])
