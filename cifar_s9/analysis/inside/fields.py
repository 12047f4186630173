"""A unit's receptive field on the image: the theoretical one from the layer geometry (a box,
possibly larger than the image, whose outside part is zero padding) and the effective one (how
strongly each input pixel moves the unit: the gradient magnitude).

A unit at (y, x) of a layer with receptive field r, jump j and start c (`receptive_field`) is
centred on input pixel (c + y j, c + x j) and sees the r x r box around it. A block's output
sees what its last conv sees: the residual shortcut's path is shorter and centred on the same
pixel, so its box lies inside.

"Most of the gradient" is defined as the smallest centred square holding `MOST` (half) of the
gradient mass: the square of odd side s centred on the unit's pixel, cut at the image border.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..gradcam import layer_names
from ...model.receptive_field import RFRow, model_receptive_field
from . import render
from .probe import IMAGE_SIZE, layer_output, module, running, to_input, whole

MOST = 0.5  # "most of the gradient": this fraction of its mass


@dataclass(frozen=True)
class UnitField:
    layer: str
    y: int
    x: int
    size: int                    # r: side of the theoretical receptive field, in input pixels
    centre: tuple[float, float]  # (row, column) of the input pixel the unit is centred on
    box: tuple[int, int, int, int]  # (top, left, bottom, right), inclusive, may leave the image
    image_size: int = IMAGE_SIZE

    @property
    def clipped(self) -> tuple[int, int, int, int]:
        """The part of the box on the image (what the unit sees that is not padding)."""
        top, left, bottom, right = self.box
        last = self.image_size - 1
        return max(top, 0), max(left, 0), min(bottom, last), min(right, last)

    @property
    def on_image(self) -> tuple[int, int]:
        """(rows, columns) of the box that lie on the image."""
        top, left, bottom, right = self.clipped
        return bottom - top + 1, right - left + 1

    @property
    def padding_pixels(self) -> int:
        """Pixels of the box outside the image: the network sees zeros (padding) there."""
        rows, cols = self.on_image
        return self.size * self.size - rows * cols


def layer_geometry(model: nn.Module, image_size: int = IMAGE_SIZE) -> dict[str, RFRow]:
    """Receptive-field row for every layer name, block outputs included (= their last conv)."""
    rows = {r.name: r for r in model_receptive_field(model, image_size)[0]}
    geometry = {}
    for name in layer_names(model):
        last = f"{name}.conv3" if "." not in name else name
        geometry[name] = rows[last]
    return geometry


def unit_field(model: nn.Module, layer: str, y, x, image_size: int = IMAGE_SIZE) -> UnitField:
    """The theoretical receptive field of unit (y, x) of `layer` on an image_size input."""
    module(model, layer)  # a clear error for an unknown name
    row = layer_geometry(model, image_size)[layer]
    y = whole(y, "row", 0, row.output_size - 1)
    x = whole(x, "column", 0, row.output_size - 1)
    cy, cx = row.start + y * row.jump, row.start + x * row.jump
    half = (row.receptive_field - 1) / 2
    box = (int(np.ceil(cy - half)), int(np.ceil(cx - half)),
           int(np.floor(cy + half)), int(np.floor(cx + half)))
    return UnitField(layer, y, x, row.receptive_field, (cy, cx), box, image_size)


def input_gradient(model: nn.Module, x_in: torch.Tensor, layer: str, y: int, x: int,
                   channel=None) -> np.ndarray:
    """|d unit / d input| summed over the input channels, (H, W) float32, for an input tensor
    (1, C, H, W) of any size. The unit is one channel at (y, x), or with `channel` None the sum
    of all channels there."""
    x_in = x_in.detach().requires_grad_(True)
    with running(model) as net, torch.enable_grad():
        out = layer_output(net, x_in, layer)
        y = whole(y, "row", 0, out.shape[2] - 1)
        x = whole(x, "column", 0, out.shape[3] - 1)
        c = None if channel is None else whole(channel, "channel", 0, out.shape[1] - 1)
        unit = out[0, :, y, x].sum() if c is None else out[0, c, y, x]
        (grad,) = torch.autograd.grad(unit, x_in)
    return grad[0].abs().sum(0).cpu().numpy().astype(np.float32)


def effective_field(model: nn.Module, image: np.ndarray, layer: str, y, x,
                    channel=None) -> tuple[UnitField, np.ndarray]:
    """(theoretical field, effective field) of unit (y, x) of `layer` for one 32x32 image."""
    x_in = to_input(image, model)
    field = unit_field(model, layer, y, x)
    return field, input_gradient(model, x_in, layer, field.y, field.x, channel)


def central_square(mass: np.ndarray, centre: tuple[float, float], fraction: float = MOST) -> int | None:
    """Smallest odd side s such that the s x s square centred on `centre` (cut at the border)
    holds at least `fraction` of the map's total mass; None when the map is all zero."""
    mass = np.abs(np.asarray(mass, np.float64))
    total = mass.sum()
    if not total > 0:
        return None
    cy, cx = int(round(centre[0])), int(round(centre[1]))
    h, w = mass.shape
    for half in range(max(h, w) + 1):
        inside = mass[max(cy - half, 0):cy + half + 1, max(cx - half, 0):cx + half + 1].sum()
        if inside >= fraction * total * (1 - 1e-9):  # a tolerance for float sums of the same numbers
            return 2 * half + 1
    return 2 * max(h, w) + 1  # unreachable: the last square covers the whole map


def describe(field: UnitField, mass: np.ndarray, fraction: float = MOST) -> str:
    """The receptive field in words, e.g. for a C4 unit of the default network."""
    n, rows, cols = field.image_size, *field.on_image
    text = f"This {field.layer} unit at row {field.y}, column {field.x} sees {field.size}x{field.size} pixels"
    if field.size > n:
        text += f", more than the {n}x{n} image"
    if field.padding_pixels:
        share = field.padding_pixels / field.size ** 2
        text += f"; {rows}x{cols} of them are on the image, the other {share:.0%} is zero padding"
    side = central_square(mass, field.centre, fraction)
    if side is None:
        return text + ". No gradient reaches the input from it (its ReLU is off for this image)."
    return text + f". {fraction:.0%} of its gradient sits in the central {side}x{side} square."


# ---------------------------------------------------------------- pictures

def field_picture(image: np.ndarray, field: UnitField, size: int = 256) -> np.ndarray:
    """The image on a canvas large enough for the whole box: the box in red, its part outside
    the image (zero padding) hatched grey, the unit's centre pixel outlined."""
    top, left, bottom, right = field.box
    n = field.image_size
    lo, hi = min(0, top, left), max(n - 1, bottom, right)
    scale = -(-size // (hi - lo + 1))  # at least `size` pixels wide, whole pixels per input pixel
    side = (hi - lo + 1) * scale
    canvas = np.empty((side, side, 3), np.uint8)
    canvas[:] = render.OUTSIDE
    # padding: inside the box, outside the image (hatched, so it reads as "nothing there")
    b = [(v - lo) * scale for v in (top, left)] + [(v - lo + 1) * scale for v in (bottom, right)]
    box_area = np.zeros((side, side), bool)
    box_area[b[0]:b[2], b[1]:b[3]] = True
    canvas[box_area & render.hatch((side, side), 8)] = render.PADDING
    o = -lo * scale
    canvas[o:o + n * scale, o:o + n * scale] = np.repeat(np.repeat(image, scale, 0), scale, 1)
    canvas = render.rectangle(canvas, b[0], b[1], b[2] - 1, b[3] - 1, render.BOX, 2)
    cy, cx = (int(round(v)) - lo for v in field.centre)
    return render.rectangle(canvas, cy * scale, cx * scale, (cy + 1) * scale - 1,
                            (cx + 1) * scale - 1, render.SQUARE, 1)


def gradient_picture(mass: np.ndarray, field: UnitField, size: int = 256,
                     fraction: float = MOST) -> np.ndarray:
    """The gradient magnitude as a heatmap on the image's grid, with the clipped box (red) and
    the central square holding `fraction` of the mass (white)."""
    peak = float(mass.max())
    picture = render.enlarge(render.colour(render.unit_range(mass, 0.0, peak), "jet"), size)
    scale = picture.shape[0] // mass.shape[0]
    top, left, bottom, right = field.clipped
    picture = render.rectangle(picture, top * scale, left * scale, (bottom + 1) * scale - 1,
                               (right + 1) * scale - 1, render.BOX, 2)
    side = central_square(mass, field.centre, fraction)
    if side is not None:
        half, (cy, cx) = side // 2, (int(round(v)) for v in field.centre)
        last = mass.shape[0] - 1
        t, l_ = max(cy - half, 0), max(cx - half, 0)
        b, r = min(cy + half, last), min(cx + half, last)
        picture = render.rectangle(picture, t * scale, l_ * scale, (b + 1) * scale - 1,
                                   (r + 1) * scale - 1, render.SQUARE, 2)
    return picture
