"""Building blocks shared by every preset: one convolution unit and the depthwise-separable conv."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

ConvKind = Literal["standard", "separable"]
Order = Literal["conv-bn-act", "conv-act-bn"]


class DepthwiseSeparableConv2d(nn.Module):
    """Depthwise k x k (one filter per channel) followed by a pointwise 1x1 that mixes channels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, dilation: int = 1, bias: bool = False):
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride=stride,
                                   padding=padding, dilation=dilation, groups=in_channels, bias=bias)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def make_conv(kind: ConvKind, in_channels: int, out_channels: int, stride: int, dilation: int,
              kernel: int = 3) -> nn.Module:
    if kernel % 2 == 0 or kernel < 1:
        raise ValueError(f"kernel must be odd (so 'same' padding is symmetric), got {kernel}")
    if kind == "separable":
        return DepthwiseSeparableConv2d(in_channels, out_channels, kernel, stride, dilation)
    if kind == "standard":
        # bias is redundant before BatchNorm
        return nn.Conv2d(in_channels, out_channels, kernel, stride=stride,
                         padding=dilation * (kernel - 1) // 2, dilation=dilation, bias=False)
    raise ValueError(f"unknown conv kind {kind!r}: expected 'standard' or 'separable'")


class ConvUnit(nn.Sequential):
    """One of the twelve convolution layers: conv, BatchNorm, ReLU (in either order) and dropout."""

    def __init__(self, kind: ConvKind, in_channels: int, out_channels: int, stride: int = 1,
                 dilation: int = 1, order: Order = "conv-bn-act", dropout: float = 0.0,
                 activation: bool = True, kernel: int = 3):
        conv = make_conv(kind, in_channels, out_channels, stride, dilation, kernel)
        bn, act = nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)
        layers = [conv, bn, act] if order == "conv-bn-act" else [conv, act, bn]
        if not activation:  # the caller applies the ReLU itself (after a residual sum)
            layers.remove(act)
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)
        self.kind, self.stride, self.dilation = kind, stride, dilation

    @property
    def conv(self) -> nn.Module:
        return self[0]
