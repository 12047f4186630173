"""Knowledge distillation: frozen teacher networks whose softened predictions guide the student.

An ensemble of our own sub-200K networks beats each of its members (the softmax average of
three runs scores ~1.3 points above the best one), but shipping it would break the 200K rule.
Distillation moves part of that gain into one network (Hinton et al., 2015): the student
matches the ensemble's temperature-softened class probabilities on the same augmented batch
as well as the labels.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint import load_weights


def ensemble_soft_targets(teacher_logits: list[torch.Tensor], temperature: float) -> torch.Tensor:
    """The mean of the teachers' class probabilities at `temperature` (> 1 softens them)."""
    return torch.stack([F.softmax(z.float() / temperature, dim=1) for z in teacher_logits]).mean(0)


def distillation_loss(student_logits: torch.Tensor, label_targets: torch.Tensor,
                      teacher_probs: torch.Tensor, alpha: float, temperature: float) -> torch.Tensor:
    """(1 - alpha) * CE(student, labels) + alpha * T^2 * KL(teacher || student at T).

    The T^2 keeps the teacher term's gradients on the same scale as the label term's when T
    changes, since softening by T shrinks them by 1/T^2."""
    log_probs = F.log_softmax(student_logits / temperature, dim=1)
    kl = F.kl_div(log_probs, teacher_probs, reduction="batchmean")
    label_ce = torch.sum(-label_targets * F.log_softmax(student_logits, dim=1), dim=1).mean()
    return (1 - alpha) * label_ce + alpha * temperature ** 2 * kl


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
