"""Patch-whitening init of the first conv: covariance and filters by hand, whitened outputs."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from synthetic import make_split, tiny_config

from cifar_s9.data.augment import NO_AUGMENT, normalize_uint8
from cifar_s9.train.trainer import TrainConfig, Trainer
from cifar_s9.train.whiten import first_conv, patch_covariance, whiten_conv, whitening_filters


def test_patch_covariance_of_two_patches_by_hand():
    # two 3x3 images hold one 3x3 patch each: the covariance of two points p, q is
    # (p - q)(p - q)^T / 2 (the mean is (p + q) / 2, divided by n - 1 = 1)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 3, 3, 3), dtype=np.uint8)
    p, q = (torch.from_numpy(normalize_uint8(images)).double().reshape(2, 27))  # (c, y, x) order
    expected = torch.outer(p - q, p - q) / 2
    torch.testing.assert_close(patch_covariance(images), expected)
    with pytest.raises(ValueError, match="two patches"):
        patch_covariance(images[:1])


def test_whitening_filters_by_hand():
    cov = torch.diag(torch.tensor([4.0, 1.0, 9.0], dtype=torch.float64))
    e = torch.eye(3, dtype=torch.float64)
    two = whitening_filters(cov, 2, eps=0.0)
    torch.testing.assert_close(two.abs(), torch.stack([e[2] / 3, e[2] / 3]))  # largest: variance 9
    assert torch.allclose(two[0], -two[1])
    seven = whitening_filters(cov, 7, eps=0.0)  # 3 directions, their negatives, then the first again
    expected = torch.stack([e[2] / 3, e[0] / 2, e[1] / 1])
    signs = torch.sign((seven[:3] * expected).sum(1))[:, None]  # eigenvectors carry any sign
    torch.testing.assert_close(seven[:3] * signs, expected)
    torch.testing.assert_close(seven[3:6], -seven[:3])
    torch.testing.assert_close(seven[6], seven[0])
    with pytest.raises(ValueError, match="at least 2"):
        whitening_filters(cov, 1)


def test_whitened_conv_outputs_are_uncorrelated_with_unit_variance():
    rng = np.random.default_rng(1)
    # correlated pixels: a smooth random field plus a little noise, like natural images
    base = rng.integers(0, 256, size=(64, 8, 8, 3)).repeat(4, 1).repeat(4, 2)
    images = np.clip(base + rng.integers(-20, 21, size=base.shape), 0, 255).astype(np.uint8)
    conv = torch.nn.Conv2d(3, 16, 3, padding=1, bias=False)
    whiten_conv(conv, images)
    x = torch.from_numpy(normalize_uint8(images))
    out = F.conv2d(x, conv.weight)  # no padding: exactly the patches the covariance saw
    top = out[:, :8].permute(0, 2, 3, 1).reshape(-1, 8).double()
    cov = torch.cov(top.T)
    torch.testing.assert_close(cov, torch.eye(8, dtype=torch.float64), atol=0.02, rtol=0)
    torch.testing.assert_close(out[:, 8:], -out[:, :8])


def test_trainer_whitens_the_first_conv_only_when_asked(tiny_split):
    cfg = TrainConfig(epochs=1, batch_size=16, device="cpu", threads=1, workers=0)
    plain = Trainer(tiny_config(), cfg, NO_AUGMENT, tiny_split)
    whitened = Trainer(tiny_config(), replace(cfg, whiten_init=True), NO_AUGMENT, tiny_split)
    conv = first_conv(whitened.model)
    assert conv is whitened.model.blocks[0].conv1.conv
    assert not torch.equal(conv.weight, first_conv(plain.model).weight)
    # the network is otherwise the same: every other parameter as the plain init draws it
    for (name, a), (_, b) in zip(plain.model.named_parameters(), whitened.model.named_parameters()):
        if name != "blocks.0.conv1.0.weight":
            assert torch.equal(a, b), name
    assert whitened.fit()[-1]["train_loss"] > 0
    with pytest.raises(ValueError, match="dense conv on RGB"):
        whiten_conv(torch.nn.Conv2d(4, 8, 3), make_split(4).images)
