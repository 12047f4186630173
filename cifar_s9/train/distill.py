"""Knowledge distillation: frozen teacher networks whose softened predictions guide the student.

An ensemble of our own sub-200K networks beats each of its members (the softmax average of
four runs scores 90.99% on the JPEG test set, the best of them 89.43%), but shipping it would
break the 200K rule. Distillation moves part of that gain into one network (Hinton et al.,
2015): the student matches the ensemble's temperature-softened class probabilities on the same
augmented batch as well as the labels. The losses themselves are in `losses.py`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..records.checkpoint import load_weights
from .losses import ensemble_soft_targets


class Teacher:
    """Frozen networks from safetensors files, evaluated in inference mode (BatchNorm statistics
    fixed), whose averaged soft predictions are the distillation targets."""

    def __init__(self, paths: tuple[str, ...], device: torch.device):
        self.paths = tuple(paths)
        self.models = []
        for path in self.paths:
            model, _ = load_weights(Path(path))
            model.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
            self.models.append(model)

    @torch.no_grad()
    def soft_targets(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        return ensemble_soft_targets([model(x) for model in self.models], temperature)
