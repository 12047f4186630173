"""Pictures for the Inside views as (H, W, 3) uint8 arrays: rectangles, shading and labels, with
the app's one colour map and blend (`analysis.pictures`) and its one nearest-neighbour
enlargement (`data.images.upscale`: one network pixel or unit = one visible block).

Activations use viridis, attributions jet (as Grad-CAM does elsewhere in the app), so the two
kinds of map are not confused.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from ...data.images import upscale as enlarge  # noqa: F401  (one nearest-neighbour enlargement)
from ..pictures import blend, colour  # noqa: F401  (one colour map and blend, Grad-CAM's too)

BOX = (255, 48, 48)        # the theoretical receptive field
SQUARE = (255, 255, 255)   # where most of the gradient sits
PADDING = (150, 150, 150)  # zero padding: the part of a receptive field outside the image
OUTSIDE = (32, 32, 32)     # the canvas beyond both


def unit_range(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] linearly to [0, 1] (clipped); a flat map (hi <= lo) becomes all 0."""
    a = np.asarray(a, np.float32)
    if not hi > lo:
        return np.zeros_like(a)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def rectangle(image: np.ndarray, top: int, left: int, bottom: int, right: int,
              rgb: tuple[int, int, int], width: int = 2) -> np.ndarray:
    """A copy of `image` with the outline of rows top..bottom, columns left..right (inclusive)."""
    out = image.copy()
    cv2.rectangle(out, (int(left), int(top)), (int(right), int(bottom)), tuple(int(c) for c in rgb),
                  int(width))
    return out


def hatch(shape: tuple[int, int], period: int = 8) -> np.ndarray:
    """(h, w) bool mask of diagonal stripes, to shade an area without hiding what is under it."""
    rows, cols = np.indices(shape)
    return ((rows + cols) // max(1, period // 2)) % 2 == 0


def label_below(picture: np.ndarray, lines: list[str], line_height: int = 13) -> np.ndarray:
    """The picture with a white strip below holding `lines` of dark text (PIL's built-in font),
    so a grid of small maps can be read without captions covering the maps."""
    h, w = picture.shape[:2]
    strip = np.full((line_height * len(lines) + 2, w), 255, np.uint8)
    for i, line in enumerate(lines):
        x, top = 2, 1 + i * line_height
        for char in line:  # glyphs drawn once per size and reused: a grid has hundreds of labels
            glyph = _glyph(char, line_height - 2)
            gh, gw = glyph.shape
            if x + gw > w:
                break
            region = strip[top:top + gh, x:x + gw]
            np.minimum(region, glyph[:region.shape[0]], out=region)
            x += gw
    text = np.repeat(np.maximum(strip, 40)[:, :, None], 3, axis=2)
    return np.concatenate([picture, text], axis=0)


@functools.lru_cache(maxsize=512)
def _glyph(char: str, size: int) -> np.ndarray:
    """One character of PIL's built-in font, dark on white, as wide as its advance."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    width = max(1, round(font.getlength(char)))
    image = Image.new("L", (width, size + 2), 255)
    ImageDraw.Draw(image).text((0, 0), char, fill=0, font=font)
    return np.asarray(image)
