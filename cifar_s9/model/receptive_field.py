"""Receptive-field arithmetic, as pure functions you can check by hand.

For a layer with kernel k, dilation d, stride s and padding p on an input with receptive field
r, jump j (distance in input pixels between neighbouring outputs), start c (the input
coordinate of the centre of output unit 0) and size n:
    k_eff = d * (k - 1) + 1
    r' = r + (k_eff - 1) * j,   j' = j * s,   n' = floor((n + 2p - k_eff) / s) + 1
    c' = c + ((k_eff - 1) / 2 - p) * j
so unit i of a layer is centred on input pixel c + i * j and sees the r pixels around it
("same" padding, p = (k_eff - 1) / 2, keeps c at 0).
A residual connection adds a shorter path, so the largest receptive field is the main path's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from .layers import ConvUnit, DepthwiseSeparableConv2d


@dataclass(frozen=True)
class LayerGeometry:
    name: str
    kernel: int
    stride: int
    dilation: int
    padding: int


@dataclass(frozen=True)
class RFRow:
    name: str
    kernel: int
    stride: int
    dilation: int
    jump: int
    receptive_field: int
    output_size: int
    start: float = 0.0  # input coordinate of the centre of output unit 0 (c above)

    def to_dict(self) -> dict:
        return asdict(self)


def effective_kernel(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def receptive_field_table(layers: list[LayerGeometry], input_size: int = 32) -> list[RFRow]:
    rows, rf, jump, size, start = [], 1, 1, input_size, 0.0
    for layer in layers:
        k_eff = effective_kernel(layer.kernel, layer.dilation)
        rf += (k_eff - 1) * jump
        size = (size + 2 * layer.padding - k_eff) // layer.stride + 1
        start += ((k_eff - 1) / 2 - layer.padding) * jump  # uses the jump *before* this layer
        jump *= layer.stride
        rows.append(RFRow(layer.name, layer.kernel, layer.stride, layer.dilation, jump, rf, size, start))
    return rows


def _geometry(name: str, conv: nn.Module) -> LayerGeometry:
    spatial = conv.depthwise if isinstance(conv, DepthwiseSeparableConv2d) else conv
    return LayerGeometry(name, spatial.kernel_size[0], spatial.stride[0], spatial.dilation[0],
                         spatial.padding[0])


def model_geometry(model: nn.Module) -> list[LayerGeometry]:
    """The spatial layers of a `Net`, in order, named like the architecture (C1.conv1 ... C4.conv3).

    Every ConvUnit of each block counts, in registration order, so a model that breaks the
    three-convs rule still gets a table (and `check_rules` reports the rule instead of crashing).
    """
    layers = []
    for i, block in enumerate(model.blocks, start=1):
        units = [m for m in block.modules() if isinstance(m, ConvUnit)]
        for j, unit in enumerate(units, start=1):
            layers.append(_geometry(f"C{i}.conv{j}", unit.conv))
    return layers


def model_receptive_field(model: nn.Module, input_size: int = 32) -> tuple[list[RFRow], int]:
    """Per-layer table and the receptive field of the last conv (the input to global pooling)."""
    table = receptive_field_table(model_geometry(model), input_size)
    return table, table[-1].receptive_field
