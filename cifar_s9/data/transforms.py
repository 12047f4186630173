"""Transforms outside the augmentation stack: uint8 images to normalized float arrays with
CIFAR-10 statistics (the eval-time transform), and the one mirrored shift that test-time
augmentation, the airbench teacher and the logit bank's stored views share.

No albumentations: evaluation, Grad-CAM, the Inside probes and whitening import this without
paying for the augmentation stack (`augment` re-exports `normalize_uint8` for older imports).
"""
from __future__ import annotations

import numpy as np
import torch

from .cifar import MEAN, STD


def normalize_uint8(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 with CIFAR-10 statistics; the eval-time transform."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def shifted_crops(padded: torch.Tensor, dy: int | torch.Tensor, dx: int | torch.Tensor,
                  pad: int) -> torch.Tensor:
    """Crops of a (N, C, H + 2 pad, W + 2 pad) batch reflect-padded by `pad`, at offset
    (pad + dy, pad + dx): each image translated by (-dy, -dx) pixels, the border it reveals a
    mirror of the image. `dy`, `dx`: one shift for every image (ints; the crop is a view), or
    one per image (integer tensors in [-pad, pad])."""
    h, w = padded.shape[-2] - 2 * pad, padded.shape[-1] - 2 * pad
    if isinstance(dy, int) and isinstance(dx, int):
        return padded[..., pad + dy:pad + dy + h, pad + dx:pad + dx + w]
    out = padded.new_empty((*padded.shape[:-2], h, w))
    for sy in range(-pad, pad + 1):
        for sx in range(-pad, pad + 1):
            mask = (dy == sy) & (dx == sx)
            if mask.any():
                out[mask] = padded[mask, :, pad + sy:pad + sy + h, pad + sx:pad + sx + w]
    return out
