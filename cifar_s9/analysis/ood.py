"""Is this image like CIFAR-10? A score from the logits, a threshold picked on held-back
training images, and the false-alarm rate measured on the test set.

The score is the maximum softmax probability (Hendrycks & Gimpel, 2017): the network's own
confidence in its top class. An image scoring below the threshold is flagged as possibly
outside the ten classes. The threshold is the `target` quantile of the scores of held-back
in-distribution images (so about `target` of such images are flagged: the false-alarm rate),
and `bench/ood_calibration.py` measures that rate again on the 10,000 test images, for the
weights whose hash the calibration records (`weights/ood.json`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCORE = "maximum softmax probability"
TARGET_FALSE_ALARM = 0.05   # flag 1 in 20 ordinary CIFAR-10 images: rare, yet catches noise


def max_softmax(logits: np.ndarray) -> np.ndarray:
    """(N, K) logits -> (N,) top-class probability, computed stably."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=1, keepdims=True)).max(axis=1)


def pick_threshold(scores: np.ndarray, target: float = TARGET_FALSE_ALARM) -> float:
    """The score below which a fraction `target` of these (in-distribution) images falls."""
    if not 0 < target < 1 or len(scores) == 0:
        raise ValueError(f"need scores and a target in (0, 1), got {len(scores)} scores, {target}")
    return float(np.quantile(np.asarray(scores, dtype=np.float64), target, method="lower"))


def flag_rate(scores: np.ndarray, threshold: float) -> float:
    """The fraction flagged (score below the threshold): the false-alarm rate on CIFAR images."""
    return float(np.mean(np.asarray(scores) < threshold))


@dataclass(frozen=True)
class Calibration:
    threshold: float              # flag when the top-class probability is below this
    false_alarm_test: float       # fraction of the 10,000 test images flagged
    n_test: int
    calibration_data: str         # the held-back images the threshold was picked on
    weights_sha256: str           # the weights these numbers hold for

    def flags(self, top_probability: float) -> bool:
        return top_probability < self.threshold

    @classmethod
    def load(cls, path: Path, weights_sha256: str | None) -> "Calibration | None":
        """The calibration in `path` if it was made for these weights (else None: an uncalibrated
        model gets no out-of-distribution claim)."""
        try:
            data = json.loads(Path(path).read_text())
            cal = cls(float(data["threshold"]), float(data["test"]["false_alarm"]),
                      int(data["test"]["n"]), str(data["calibration"]["data"]), str(data["weights_sha256"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not weights_sha256 or cal.weights_sha256 != weights_sha256 or not math.isfinite(cal.threshold):
            return None
        return cal
