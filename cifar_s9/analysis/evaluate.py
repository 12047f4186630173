"""Accuracy, per-class accuracy, confusion matrix and the misclassified examples."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data.transforms import normalize_uint8, shifted_crops
from ..data.cifar import CLASSES, Split


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: np.ndarray, device: torch.device | str = "cpu",
                   batch_size: int = 1000, tta: bool | str = False,
                   progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Logits (N, 10) for (N, 32, 32, 3) uint8 images. `tta=True` (or "flip") averages them with
    the mirror image's; "flip-shift" uses six views, airbench's: the flip pair weighted 1/2, and
    the flip pairs of the image shifted one pixel diagonally either way (mirrored border), 1/4 each.
    `progress(done, total)` is called after each batch (the app shows it)."""
    if tta not in (False, True, "flip", "flip-shift"):
        raise ValueError(f"tta must be False, 'flip' or 'flip-shift', got {tta!r}")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(normalize_uint8(images[start:start + batch_size])).to(device)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            forward = lambda v: model(v).float()  # noqa: E731
            if tta == "flip-shift":
                logits = flip_shift_logits(forward, x, torch.channels_last)
            else:
                logits = flip_pair(forward, x) if tta else forward(x)
        outputs.append(logits.cpu())
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, model.config.num_classes)


def flip_pair(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The mean of the logits of a (N, C, H, W) batch and of its mirror image."""
    return (forward(x) + forward(torch.flip(x, dims=[3]))) / 2


def flip_shift_logits(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                      memory_format: torch.memory_format | None = None) -> torch.Tensor:
    """airbench's six-view test-time augmentation of a normalised (N, C, H, W) batch: the flip
    pair weighted 1/2, and the flip pairs of the batch shifted one pixel diagonally either way
    (mirrored border) 1/4 each. `memory_format`: the layout the shifted views are copied to."""
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = [shifted_crops(padded, d, d, 1) for d in (-1, 1)]
    if memory_format is not None:
        shifted = [v.contiguous(memory_format=memory_format) for v in shifted]
    return flip_pair(forward, x) / 2 + sum(flip_pair(forward, v) for v in shifted) / 4


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float
    n: int
    per_class_accuracy: dict[str, float]
    confusion: np.ndarray      # (classes, classes): rows true class, columns predicted class
    probabilities: np.ndarray  # (N, classes)
    labels: np.ndarray         # (N,)
    tta: bool | str

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(1)

    def summary(self) -> dict:
        return {"accuracy": self.accuracy, "loss": self.loss, "n": self.n, "tta": self.tta,
                "per_class_accuracy": self.per_class_accuracy}


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray,
                     num_classes: int = len(CLASSES)) -> np.ndarray:
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (labels, predictions), 1)
    return m


def evaluate(model: torch.nn.Module, split: Split, device: torch.device | str = "cpu",
             tta: bool | str = False, progress: Callable[[int, int], None] | None = None) -> Evaluation:
    logits = predict_logits(model, split.images, device, tta=tta, progress=progress)
    return summarize(logits, split.labels, tta)


def summarize(logits: torch.Tensor, labels_np: np.ndarray, tta: bool | str = False) -> Evaluation:
    """An Evaluation from logits (N, 10) and labels (N,): what `evaluate` reports, also for logits
    stored earlier (the app keeps them on disk per model and test set)."""
    labels = torch.from_numpy(labels_np)
    loss = F.cross_entropy(logits, labels).item() if len(labels) else float("nan")
    probs = logits.softmax(1).numpy()
    preds = probs.argmax(1)
    cm = confusion_matrix(labels_np, preds, probs.shape[1])
    totals = cm.sum(1)
    per_class = {c: float(cm[i, i] / totals[i]) if totals[i] else float("nan")
                 for i, c in enumerate(CLASSES)}
    accuracy = float((preds == labels_np).mean()) if len(labels) else float("nan")
    return Evaluation(accuracy, loss, len(labels), per_class, cm, probs, labels_np, tta)


@dataclass(frozen=True)
class Mistake:
    index: int         # position in the split
    true: int
    predicted: int
    confidence: float  # probability of the predicted class
    true_probability: float


def mistakes(ev: Evaluation, true_class: int | None = None, predicted_class: int | None = None,
             sort: str = "confidence_desc", limit: int | None = None) -> list[Mistake]:
    """Misclassified examples, optionally filtered by true and/or predicted class."""
    preds = ev.predictions
    wrong = np.flatnonzero(preds != ev.labels)
    if true_class is not None:
        wrong = wrong[ev.labels[wrong] == true_class]
    if predicted_class is not None:
        wrong = wrong[preds[wrong] == predicted_class]
    conf = ev.probabilities[wrong, preds[wrong]]
    order = np.argsort(-conf if sort == "confidence_desc" else conf, kind="stable")
    wrong = wrong[order][:limit]
    return [Mistake(int(i), int(ev.labels[i]), int(preds[i]), float(ev.probabilities[i, preds[i]]),
                    float(ev.probabilities[i, ev.labels[i]])) for i in wrong]


@dataclass(frozen=True)
class EnsembleEvaluation:
    members: list[float]  # each network's accuracy alone, in the order given
    accuracy: float       # accuracy of their averaged softmax (what `--teacher` distils from, at T=1)
    n: int


def evaluate_ensemble(models: list[torch.nn.Module], split: Split, device: torch.device | str = "cpu",
                      tta: bool | str = False) -> EnsembleEvaluation:
    """Each network's accuracy and that of the mean of their class probabilities."""
    from ..train.losses import ensemble_soft_targets

    labels = torch.from_numpy(split.labels)
    logits = [predict_logits(m, split.images, device, tta=tta) for m in models]
    hit = lambda scores: (scores.argmax(1) == labels).float().mean().item()  # noqa: E731
    return EnsembleEvaluation([hit(z) for z in logits], hit(ensemble_soft_targets(logits, 1.0)), len(labels))
