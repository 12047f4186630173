"""The eval-time transform: uint8 images to normalized float tensors with CIFAR-10 statistics.

Plain numpy, no albumentations: evaluation, Grad-CAM, the Inside probes and whitening import it
without paying for the augmentation stack (`augment` re-exports it for older imports).
"""
from __future__ import annotations

import numpy as np

from .cifar import MEAN, STD


def normalize_uint8(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 with CIFAR-10 statistics; the eval-time transform."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
