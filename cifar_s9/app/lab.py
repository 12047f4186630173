"""The augmentation lab's computations: the preview grid and the min/max pair clamping.

The controls themselves come from `AugmentConfig`'s field metadata (see `augment.knob`).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import fields
from pathlib import Path

import numpy as np

from ..atomic import write_bytes_atomic
from ..data.augment import AugmentConfig, min_max_pairs, pipeline_code, pipeline_json, preview, validate
from ..data.images import NETWORK_VIEW_CODE, upscale
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


RANGES = {f.name: f.metadata["range"] for f in fields(AugmentConfig) if "range" in f.metadata}
STEPS = {f.name: f.metadata["step"] for f in fields(AugmentConfig) if "step" in f.metadata}


def out_of_range(values: dict) -> str | None:
    """One sentence for the first typed value outside its control's range (None if all fit):
    a slider's number box accepts any number, and this names the field and what it accepts."""
    for name, value in values.items():
        if name not in RANGES or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        lo, hi = RANGES[name]
        if value > hi or value < lo:
            side = f"above its maximum {hi:g}" if value > hi else f"below its minimum {lo:g}"
            return f"{name} {value:g} is {side}: choose a value from {lo:g} to {hi:g}."
    return None


def link_pair(lo_name: str, hi_name: str, lo_value, hi_value, changed: str
              ) -> tuple[float, float, float] | None:
    """A min/max pair after the visitor moved `changed`: (min value, max value, the max control's
    lowest allowed value). The moved control wins; the max control's range starts at the min,
    so the link shows on the page (and the max can never be dragged below the min). None when
    either value is not a number within its field's range (the status line says so)."""
    try:
        a, b = float(lo_value), float(hi_value)
    except (TypeError, ValueError, OverflowError):
        return None
    if out_of_range({lo_name: a, hi_name: b}) or math.isnan(a) or math.isnan(b):
        return None
    values, _ = clamp_pairs({lo_name: a, hi_name: b}, changed)
    a, b = values[lo_name], values[hi_name]
    # a slider needs minimum < maximum: at the top of the range the max control keeps one step
    top = RANGES[hi_name][1] - STEPS[hi_name]
    return a, b, min(a, top)


def snippet(cfg: AugmentConfig, seed: int, n: int) -> str:
    """Code that reproduces the lab's grid on the visitor's own picture: the network's 32x32
    view of the file (centre crop and resize, as the lab does), then the seeded pipeline, whose
    i-th call gives view #i (normalised, as training sees it)."""
    return (NETWORK_VIEW_CODE + "\n\n" + pipeline_code(cfg, seed) +
            f"\nimage = network_view(\"your_image.jpg\")  # the lab's \"original\"\n"
            f"views = [transform(image=image)[\"image\"] for _ in range({int(n)})]  # #1 to #{int(n)}\n")


PIPELINE_FILE = "augmentation_pipeline.json"


def pipeline_file(cfg: AugmentConfig, folder: Path) -> Path:
    """The pipeline as albumentations' own JSON (`A.load(path)` rebuilds it), for the lab's
    download: `folder/cifar_s9-pipeline-<content hash>/augmentation_pipeline.json`, written once
    (atomically) per setting and shared by every visitor who picks it; the app puts it in the
    upload folder, whose pruning (age, total size) removes old ones."""
    text = pipeline_json(validate(cfg)).encode()
    path = Path(folder) / f"cifar_s9-pipeline-{hashlib.sha256(text).hexdigest()[:16]}" / PIPELINE_FILE
    if not path.is_file():
        write_bytes_atomic(path, text)
    return path
