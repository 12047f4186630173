"""Training losses: cross-entropy on soft targets, and knowledge distillation (Hinton et al., 2015)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.sum(-targets * F.log_softmax(logits, dim=1), dim=1).mean()


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
    return (1 - alpha) * soft_cross_entropy(student_logits, label_targets) + alpha * temperature ** 2 * kl
