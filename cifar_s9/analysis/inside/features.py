"""Feature maps: every channel of one layer for one image, sorted by mean activation.

"C1".."C4" are block outputs (after the residual sum and its ReLU); "Ci.convj" is a conv
unit's output, post-ReLU except the third unit of a residual block, which is the branch before
the sum (so its values can be negative). See `cifar_s9.analysis.gradcam` for the naming.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from . import render
from .probe import InsideError, layer_output, running, to_input, whole

Scale = Literal["shared", "channel"]
SCALES: tuple[str, ...] = ("shared", "channel")  # one colour scale for all channels, or one each
TILE = 96       # display size of one channel in the grid (its label strip comes below)
ENLARGED = 256  # display size of one channel clicked open


@dataclass(frozen=True)
class FeatureMaps:
    layer: str
    activations: np.ndarray  # (C, h, w) float32, channel order as in the network

    @property
    def means(self) -> np.ndarray:
        return self.activations.mean(axis=(1, 2))

    @property
    def order(self) -> np.ndarray:
        """Channel indices, highest mean activation first (stable for ties)."""
        return np.argsort(-self.means, kind="stable")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.activations.shape)

    def value_range(self, channel: int) -> tuple[float, float]:
        a = self.activations[self.channel(channel)]
        return float(a.min()), float(a.max())

    def channel(self, channel) -> int:
        return whole(channel, "channel", 0, self.activations.shape[0] - 1)

    def scale_for(self, channel: int, scale: Scale) -> tuple[float, float]:
        """The (lo, hi) a channel's colours span: the whole layer's range, or its own."""
        if scale == "shared":
            return float(self.activations.min()), float(self.activations.max())
        if scale == "channel":
            return self.value_range(channel)
        raise InsideError(f"scale must be one of {list(SCALES)}, got {scale!r}")


def feature_maps(model: nn.Module, image: np.ndarray, layer: str) -> FeatureMaps:
    """The activations of `layer` for one (32, 32, 3) uint8 image (the eval-mode network)."""
    x = to_input(image, model)
    with running(model) as net, torch.no_grad():
        out = layer_output(net, x, layer)
    return FeatureMaps(layer, out[0].detach().float().cpu().numpy().copy())


def caption(fm: FeatureMaps, channel: int) -> str:
    lo, hi = fm.value_range(channel)
    return f"#{channel}  {lo:.2f} to {hi:.2f}"


def channel_picture(fm: FeatureMaps, channel, scale: Scale = "shared", size: int = ENLARGED) -> np.ndarray:
    """One channel coloured on its scale and enlarged (nearest: each unit a visible block)."""
    c = fm.channel(channel)
    lo, hi = fm.scale_for(c, scale)
    return render.enlarge(render.colour(render.unit_range(fm.activations[c], lo, hi)), size)


def channel_tiles(fm: FeatureMaps, scale: Scale = "shared", size: int = TILE) -> list[tuple[np.ndarray, str]]:
    """[(picture, "#channel  min to max")] for every channel, highest mean activation first; each
    picture carries its index and value range in a strip below the map."""
    if scale not in SCALES:
        raise InsideError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    tiles = []
    for c in (int(c) for c in fm.order):
        lo, hi = fm.value_range(c)
        picture = render.label_below(channel_picture(fm, c, scale, size), [f"#{c}  {lo:.3g}..{hi:.3g}"])
        tiles.append((picture, caption(fm, c)))
    return tiles


def unit_at(point, picture_shape: tuple[int, ...], map_shape: tuple[int, int]) -> tuple[int, int]:
    """Which unit (y, x) of an (h, w) map a click at point (x, y) on its enlarged picture hits
    (Gradio's `SelectData.index` is [x, y] in the picture's pixels)."""
    if not isinstance(point, (list, tuple)) or len(point) != 2:
        raise InsideError(f"a click position is [x, y], got {point!r}")
    height, width = picture_shape[:2]
    px = whole(point[0], "click x", 0, width - 1)
    py = whole(point[1], "click y", 0, height - 1)
    h, w = map_shape
    return py * h // height, px * w // width
