"""The augmentation lab's computations: the preview grid and the min/max pair clamping.

The controls themselves come from `AugmentConfig`'s field metadata (see `augment.knob`).
"""
from __future__ import annotations

from dataclasses import fields

import numpy as np

from ..data.augment import AugmentConfig, min_max_pairs, preview
from ..data.images import upscale
from .uinput import MAX_SEED, MAX_VIEWS, whole_number

AUG_FIELDS = [f.name for f in fields(AugmentConfig)]


def augment_grid(image: np.ndarray, cfg: AugmentConfig, n: int, seed: int,
                 display: int = 128) -> tuple[list[tuple[np.ndarray, str]], dict]:
    """(original + n augmented views as (enlarged image, caption)), {view: sampled parameters}."""
    n = whole_number(n, "augmented versions", 1, MAX_VIEWS)
    seed = whole_number(seed, "seed", 0, MAX_SEED)
    samples = preview(image, cfg, n=n, seed=seed)
    grid = [(upscale(image, display), "original")]
    grid += [(upscale(s.image, display), f"#{i}") for i, s in enumerate(samples, start=1)]
    return grid, {f"#{i}": s.applied for i, s in enumerate(samples, start=1)}


def clamp_pairs(values: dict, changed: str | None = None) -> tuple[dict, str | None]:
    """Keep every min <= max: the control the user just moved (`changed`) wins and its partner
    follows; returns the values and one sentence saying what moved (None if nothing did)."""
    values = dict(values)
    for lo, hi in min_max_pairs():
        a, b = values.get(lo), values.get(hi)
        if a is None or b is None or a <= b:
            continue
        if changed == hi:
            values[lo] = b
            return values, f"{lo} lowered to {b} to stay <= {hi}."
        values[hi] = a
        return values, f"{hi} raised to {a} to stay >= {lo}."
    return values, None
