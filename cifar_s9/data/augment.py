"""Training augmentations. Every albumentations call in the project lives in this module.

`AugmentConfig` holds every tunable number; the trainer, the CLI and the app share it.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal

import numpy as np

from .cifar import MEAN, STD
from .transforms import normalize_uint8  # noqa: F401  (re-exported: it lived here)
from ..errors import UserError

# albumentations and OpenCV are imported where first used (`_albumentations()`): the app builds
# its controls from AugmentConfig at start-up without paying for them.
BorderMode = Literal["reflect", "constant", "replicate", "wrap"]
BORDER_NAMES = {"reflect": "BORDER_REFLECT_101", "constant": "BORDER_CONSTANT",
                "replicate": "BORDER_REPLICATE", "wrap": "BORDER_WRAP"}  # OpenCV constant names
BORDER_MODES = tuple(BORDER_NAMES)
IMAGE_SIZE = 32


class InvalidAugmentConfig(UserError):
    pass


def knob(default, lo, hi, step, label: str, group: str, kind: str = "range"):
    """A field with its control's metadata: the app builds its sliders from these, `validate`
    checks the same bounds, so a new parameter is added here and nowhere else."""
    return field(default=default, metadata={"range": (lo, hi), "step": step, "label": label,
                                            "group": group, "kind": kind})


GROUPS = ("Flip and affine", "Coarse dropout (cutout)", "Compression and sharpening", "Colour jitter")
_G1, _G2, _G3, _G4 = GROUPS


@dataclass(frozen=True)
class AugmentConfig:
    flip_p: float = knob(0.5, 0, 1, 0.05, "flip_p (horizontal flip probability)", _G1, "probability")
    # Affine (the current replacement for ShiftScaleRotate)
    affine_p: float = knob(0.5, 0, 1, 0.05, "affine_p (probability)", _G1, "probability")
    shift_limit: float = knob(0.1, 0, 0.5, 0.01, "shift_limit (fraction of size)", _G1)
    scale_limit: float = knob(0.1, 0, 0.9, 0.01, "scale_limit (scale in 1 ± limit)", _G1)
    rotate_limit: float = knob(15.0, 0, 180, 1, "rotate_limit (degrees)", _G1)
    border_mode: BorderMode = field(default="reflect", metadata={
        "choices": BORDER_MODES, "label": "border_mode", "group": _G1})
    border_fill: int = knob(128, 0, 255, 1, "border_fill (grey, border_mode constant)", _G1, "grey")
    # CoarseDropout (cutout)
    dropout_p: float = knob(0.5, 0, 1, 0.05, "dropout_p (probability)", _G2, "probability")
    holes_min: int = knob(1, 1, 16, 1, "holes_min", _G2)
    holes_max: int = knob(1, 1, 16, 1, "holes_max", _G2)
    hole_height_min: int = knob(8, 1, 32, 1, "hole_height_min (px)", _G2)
    hole_height_max: int = knob(8, 1, 32, 1, "hole_height_max (px)", _G2)
    hole_width_min: int = knob(8, 1, 32, 1, "hole_width_min (px)", _G2)
    hole_width_max: int = knob(8, 1, 32, 1, "hole_width_max (px)", _G2)
    fill: int = knob(128, 0, 255, 1, "fill (grey of the holes)", _G2, "grey")  # near the dataset mean
    # Robustness to compression: our offline data is JPEG, real users send clean images
    jpeg_p: float = knob(0.0, 0, 1, 0.05, "jpeg_p (probability)", _G3, "probability")
    jpeg_quality_min: int = knob(60, 1, 100, 1, "jpeg_quality_min", _G3)
    sharpen_p: float = knob(0.0, 0, 1, 0.05, "sharpen_p (probability)", _G3, "probability")
    # ColorJitter: factors drawn from [1 - x, 1 + x] (hue: a shift in [-x, x] of a full turn)
    color_p: float = knob(0.0, 0, 1, 0.05, "color_p (probability)", _G4, "probability")
    brightness: float = knob(0.1, 0, 0.9, 0.01, "brightness (factor in 1 ± x)", _G4)
    contrast: float = knob(0.1, 0, 0.9, 0.01, "contrast (factor in 1 ± x)", _G4)
    saturation: float = knob(0.5, 0, 0.9, 0.01, "saturation (factor in 1 ± x)", _G4)
    hue: float = knob(0.05, 0, 0.5, 0.01, "hue (shift in ± x turns)", _G4)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AugmentConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def with_changes(self, **changes) -> "AugmentConfig":
        return replace(self, **changes)


NO_AUGMENT = AugmentConfig(flip_p=0.0, affine_p=0.0, dropout_p=0.0)


def min_max_pairs() -> list[tuple[str, str]]:
    """("holes_min", "holes_max") ...: fields whose names differ only in _min/_max."""
    names = [f.name for f in fields(AugmentConfig)]
    return [(n, n[:-4] + "_max") for n in names if n.endswith("_min") and n[:-4] + "_max" in names]


def validate(cfg: AugmentConfig) -> AugmentConfig:
    """Raise InvalidAugmentConfig with a readable message for any impossible combination; the
    bounds are the fields' own metadata (the app's sliders show the same ones)."""
    problems: list[str] = []
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{f.name} must be a number, got {value}")
    if problems:
        raise InvalidAugmentConfig("; ".join(problems))
    paired = {name for pair in min_max_pairs() for name in pair}
    for f in fields(cfg):
        value, meta = getattr(cfg, f.name), f.metadata
        if "choices" in meta:
            if value not in meta["choices"]:
                problems.append(f"{f.name} must be one of {sorted(meta['choices'])}, got {value!r}")
            continue
        lo, hi = meta["range"]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            problems.append(f"{f.name} must be a number, got {value!r}")
        elif f.type in ("int", int) and not isinstance(value, (int, np.integer)):
            problems.append(f"{f.name} must be a whole number, got {value}")
        elif f.name in paired:
            continue  # checked with its partner below
        elif not lo <= value <= hi:
            what = {"probability": "a probability", "grey": "a grey level"}.get(meta["kind"])
            problems.append(f"{f.name} must be {what + ' ' if what else ''}in [{lo:g}, {hi:g}]"
                            f"{' degrees' if f.name == 'rotate_limit' else ''}, got {value}")
    limits = {f.name: f.metadata["range"] for f in fields(cfg) if "range" in f.metadata}
    for lo_name, hi_name in min_max_pairs():
        a, b = getattr(cfg, lo_name), getattr(cfg, hi_name)
        low, high = limits[lo_name][0], limits[hi_name][1]
        whole = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (a, b))
        if whole and not low <= a <= b <= high:
            problems.append(f"need {low} <= {lo_name} <= {hi_name} <= {high}, got {lo_name}={a}, {hi_name}={b}")
    if problems:
        raise InvalidAugmentConfig("; ".join(problems))
    return cfg


def _albumentations():
    # albumentations asks PyPI for a newer version on import: up to 2 s lost and a warning on
    # offline machines (the lab's, a GPU box), and a network call nobody asked for
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations
    return albumentations


def spatial_transforms(cfg: AugmentConfig) -> list:
    validate(cfg)
    import cv2
    A = _albumentations()
    border = getattr(cv2, BORDER_NAMES[cfg.border_mode])
    return [
        A.HorizontalFlip(p=cfg.flip_p),
        A.Affine(translate_percent=(-cfg.shift_limit, cfg.shift_limit),
                 scale=(1 - cfg.scale_limit, 1 + cfg.scale_limit),
                 rotate=(-cfg.rotate_limit, cfg.rotate_limit),
                 keep_ratio=True, border_mode=border, fill=cfg.border_fill, p=cfg.affine_p),
        A.ImageCompression(quality_range=(cfg.jpeg_quality_min, 100), p=cfg.jpeg_p),
        A.Sharpen(alpha=(0.1, 0.3), lightness=(1.0, 1.0), p=cfg.sharpen_p),
        # only when used: a transform at p=0 still draws, and would change every other draw
        *([A.ColorJitter(brightness=cfg.brightness, contrast=cfg.contrast, saturation=cfg.saturation,
                         hue=cfg.hue, p=cfg.color_p)] if cfg.color_p > 0 else []),
        A.CoarseDropout(num_holes_range=(cfg.holes_min, cfg.holes_max),
                        hole_height_range=(cfg.hole_height_min, cfg.hole_height_max),
                        hole_width_range=(cfg.hole_width_min, cfg.hole_width_max),
                        fill=cfg.fill, p=cfg.dropout_p),
    ]


def build_pipeline(cfg: AugmentConfig, normalize: bool = True, seed: int | None = None):
    """An `A.Compose`; with a seed, the same seed gives the same draws (the lab's preview)."""
    A = _albumentations()
    steps = spatial_transforms(cfg)
    if normalize:
        steps.append(A.Normalize(mean=MEAN, std=STD, max_pixel_value=255.0))
    return A.Compose(steps, seed=seed, save_applied_params=True)


def pipeline_dict(cfg: AugmentConfig, normalize: bool = True) -> dict:
    """The pipeline in albumentations' own serialised form (`A.to_dict`): `A.from_dict` rebuilds
    it anywhere albumentations is installed, without this package. The seed is not part of it
    (`pipeline.set_random_seed(s)` on the rebuilt one gives the same draws as ours with `s`)."""
    return _albumentations().to_dict(build_pipeline(cfg, normalize=normalize))


def pipeline_json(cfg: AugmentConfig, normalize: bool = True) -> str:
    """`pipeline_dict` as the JSON text `A.load(path)` reads (the lab's and a run bundle's file)."""
    return json.dumps(pipeline_dict(cfg, normalize), indent=2) + "\n"


@dataclass(frozen=True)
class PreviewSample:
    image: np.ndarray       # (H, W, 3) uint8
    applied: dict           # transform name -> the parameters it sampled


def preview(image: np.ndarray, cfg: AugmentConfig, n: int = 8, seed: int = 0) -> list[PreviewSample]:
    """N augmented uint8 versions of one (H, W, 3) uint8 image; the same seed gives the same grid."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    pipeline = build_pipeline(cfg, normalize=False, seed=seed)
    samples = []
    for _ in range(n):
        out = pipeline(image=image)
        samples.append(PreviewSample(out["image"], _jsonable(out.get("applied_transforms", []))))
    return samples


# albumentations' bookkeeping, not a choice the transform made: hidden from the lab's JSON
INTERNAL_PARAMS = {"matrix", "bbox_matrix", "shape", "output_shape", "keypoints_matrix", "seed", "fill_mask"}


def _jsonable(applied: list) -> dict:
    result = {}
    for name, params in applied:
        result[name] = {k: _plain(v) for k, v in params.items()
                        if k not in INTERNAL_PARAMS and (not isinstance(v, np.ndarray) or v.size <= 16)}
    return result


def _plain(v):
    if isinstance(v, np.ndarray):
        return np.round(v, 3).tolist()
    if isinstance(v, (np.floating, float)):
        return round(float(v), 3)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):  # Affine's scale is {"x": ..., "y": ...}
        return {str(k): _plain(x) for k, x in v.items()}
    return v if isinstance(v, (int, str, bool, type(None))) else str(v)


def _color_code(cfg: AugmentConfig) -> str:
    if cfg.color_p <= 0:
        return ""
    return (f"\n    A.ColorJitter(brightness={cfg.brightness}, contrast={cfg.contrast}, "
            f"saturation={cfg.saturation}, hue={cfg.hue}, p={cfg.color_p}),")


def pipeline_code(cfg: AugmentConfig, seed: int | None = None) -> str:
    """A copyable Python snippet that rebuilds this exact pipeline; with `seed`, calling it on the
    same image gives the lab's preview views in order."""
    validate(cfg)
    return f"""import albumentations as A
import cv2

transform = A.Compose([
    A.HorizontalFlip(p={cfg.flip_p}),
    A.Affine(translate_percent=({-cfg.shift_limit}, {cfg.shift_limit}),
             scale=({1 - cfg.scale_limit:.3g}, {1 + cfg.scale_limit:.3g}),
             rotate=({-cfg.rotate_limit}, {cfg.rotate_limit}),
             keep_ratio=True, border_mode=cv2.{BORDER_NAMES[cfg.border_mode]},
             fill={cfg.border_fill}, p={cfg.affine_p}),
    A.ImageCompression(quality_range=({cfg.jpeg_quality_min}, 100), p={cfg.jpeg_p}),
    A.Sharpen(alpha=(0.1, 0.3), lightness=(1.0, 1.0), p={cfg.sharpen_p}),{_color_code(cfg)}
    A.CoarseDropout(num_holes_range=({cfg.holes_min}, {cfg.holes_max}),
                    hole_height_range=({cfg.hole_height_min}, {cfg.hole_height_max}),
                    hole_width_range=({cfg.hole_width_min}, {cfg.hole_width_max}),
                    fill={cfg.fill}, p={cfg.dropout_p}),
    A.Normalize(mean={MEAN}, std={STD}, max_pixel_value=255.0),
]{f", seed={int(seed)}" if seed is not None else ""})
"""
