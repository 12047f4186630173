"""Accuracy, per-class accuracy, confusion matrix and the misclassified examples."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .augment import normalize_uint8
from .data import CLASSES, Split


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: np.ndarray, device: torch.device | str = "cpu",
                   batch_size: int = 1000, tta: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Logits (N, 10) for (N, 32, 32, 3) uint8 images; with `tta`, averaged with the mirror image.
    `progress(done, total)` is called after each batch (the app shows it)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(normalize_uint8(images[start:start + batch_size])).to(device)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x).float()
            if tta:
                logits = (logits + model(torch.flip(x, dims=[3])).float()) / 2
        outputs.append(logits.cpu())
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, 10)


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float
    n: int
    per_class_accuracy: dict[str, float]
    confusion: np.ndarray      # (10, 10): rows true class, columns predicted class
    probabilities: np.ndarray  # (N, 10)
    labels: np.ndarray         # (N,)
    tta: bool

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(1)

    def summary(self) -> dict:
        return {"accuracy": self.accuracy, "loss": self.loss, "n": self.n, "tta": self.tta,
                "per_class_accuracy": self.per_class_accuracy}


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = 10) -> np.ndarray:
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (labels, predictions), 1)
    return m


def evaluate(model: torch.nn.Module, split: Split, device: torch.device | str = "cpu",
             tta: bool = False, progress: Callable[[int, int], None] | None = None) -> Evaluation:
    logits = predict_logits(model, split.images, device, tta=tta, progress=progress)
    return summarize(logits, split.labels, tta)


def summarize(logits: torch.Tensor, labels_np: np.ndarray, tta: bool = False) -> Evaluation:
    """An Evaluation from logits (N, 10) and labels (N,): what `evaluate` reports, also for logits
    stored earlier (the app keeps them on disk per model and test set)."""
    labels = torch.from_numpy(labels_np)
    loss = F.cross_entropy(logits, labels).item() if len(labels) else float("nan")
    probs = logits.softmax(1).numpy()
    preds = probs.argmax(1)
    cm = confusion_matrix(labels_np, preds)
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
