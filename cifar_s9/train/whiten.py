"""Patch-whitening initialisation of the first convolution (the airbench trick, as an init only).

The first conv sees 3x3x3 = 27-value patches whose pixels are strongly correlated, so a random
init spends its first epochs learning edge and colour detectors that principal components give
for free. The filters become the top principal directions of the training patches, each scaled
by 1/sqrt(its variance) so every output has unit variance, in pairs of opposite sign: the ReLU
after BatchNorm keeps half of each direction, the pair keeps all of it. The layer stays an
ordinary trainable conv, so the network and its rules are unchanged.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.transforms import normalize_uint8


def patch_covariance(images: np.ndarray | torch.Tensor, kernel_size: int = 3, chunk: int = 256,
                     centred: bool = True) -> torch.Tensor:
    """(D, D) covariance of every kernel_size x kernel_size patch of `images`: (N, H, W, 3) uint8,
    normalised here as the network sees them, or (N, C, H, W) floats already normalised.
    D = C * k * k in Conv2d's weight order (c, y, x). `centred=False`: the second moment about
    zero instead (airbench's, on normalised images whose mean is near 0). Accumulated in float64
    over chunks of images, so memory stays small whatever N."""
    raw = isinstance(images, np.ndarray)
    d = (3 if raw else images.shape[1]) * kernel_size * kernel_size
    device = "cpu" if raw else images.device  # a teacher whitens on its GPU
    total = torch.zeros(d, dtype=torch.float64, device=device)
    outer, count = torch.zeros(d, d, dtype=torch.float64, device=device), 0
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk]
        x = (torch.from_numpy(normalize_uint8(x)) if raw else x).double()  # (n, C, H, W)
        patches = x.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)  # (n, C, H', W', k, k)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, d)
        total += patches.sum(0)
        outer += patches.T @ patches
        count += len(patches)
    if count < 2:
        raise ValueError("need at least two patches to estimate a covariance")
    if not centred:
        return outer / count
    mean = total / count
    return (outer - count * torch.outer(mean, mean)) / (count - 1)


def whitening_filters(cov: torch.Tensor, out_channels: int, eps: float = 5e-4) -> torch.Tensor:
    """(out_channels, D) filters: the top out_channels // 2 principal directions of `cov` scaled
    by 1/sqrt(eigenvalue + eps), then the same filters negated (an odd count repeats the first)."""
    if out_channels < 2:
        raise ValueError(f"need at least 2 output channels for +/- pairs, got {out_channels}")
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
    half = min(out_channels // 2, cov.shape[0])
    top = eigenvectors[:, -half:].flip(1).T / torch.sqrt(eigenvalues[-half:].flip(0) + eps)[:, None]
    filters = torch.cat([top, -top])
    while len(filters) < out_channels:  # more channels than 2 * D, or an odd count
        filters = torch.cat([filters, filters[: out_channels - len(filters)]])
    return filters


@torch.no_grad()
def whiten_conv(conv: nn.Conv2d, images: np.ndarray) -> None:
    """Set a stride-1 (out, 3, k, k) conv's weights to patch-whitening filters of `images`."""
    out_channels, in_channels, k, k2 = conv.weight.shape
    if in_channels != 3 or k != k2 or conv.groups != 1:
        raise ValueError(f"expected a dense conv on RGB input, got weight {tuple(conv.weight.shape)}")
    filters = whitening_filters(patch_covariance(images, k), out_channels)
    conv.weight.copy_(filters.reshape(out_channels, 3, k, k).to(conv.weight.dtype))
    if conv.bias is not None:
        conv.bias.zero_()


def first_conv(model: nn.Module) -> nn.Conv2d:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError("the model has no convolution")
    return conv
