"""Colour maps and blending for every heatmap the app draws (Grad-CAM, the Inside views).

Nearest-neighbour enlargement, the third display helper, is `data.images.upscale`: the Classify
tab and the augmentation lab use it on plain images too.
"""
from __future__ import annotations

import functools

import numpy as np

COLORMAPS = ("viridis", "jet")  # OpenCV's names, lower case


def colour(a01: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """(h, w) values in [0, 1] -> (h, w, 3) uint8 RGB."""
    u8 = np.uint8(np.rint(255 * np.clip(a01, 0, 1)))
    return _lut(cmap)[u8]


def colour_levels(levels: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """(h, w) uint8 levels (0-255) -> (h, w, 3) uint8 RGB."""
    return _lut(cmap)[levels]


@functools.lru_cache(maxsize=4)
def _lut(cmap: str) -> np.ndarray:
    """OpenCV's colour map as a (256, 3) RGB table: indexing it costs microseconds, where
    `applyColorMap` costs most of a millisecond per call even on a 4x4 map."""
    import cv2  # loaded on the first picture, not when the app starts

    if cmap not in COLORMAPS:
        raise ValueError(f"unknown colour map {cmap!r}; expected one of {COLORMAPS}")
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    code = getattr(cv2, f"COLORMAP_{cmap.upper()}")
    return cv2.cvtColor(cv2.applyColorMap(ramp, code), cv2.COLOR_BGR2RGB)[:, 0]


def blend(image: np.ndarray, heat_rgb: np.ndarray, opacity: float) -> np.ndarray:
    """(1 - opacity) * image + opacity * heat_rgb, both (h, w, 3) uint8, rounded to uint8.
    In 8-bit fixed point (opacity in 256ths): a quarter of the float version's time on a
    256x256 picture, and opacity 0 and 1 still give either picture exactly."""
    w = np.uint16(round(float(np.clip(opacity, 0, 1)) * 256))
    mixed = image.astype(np.uint16) * (256 - w) + heat_rgb.astype(np.uint16) * w + 128
    return (mixed >> 8).astype(np.uint8)
