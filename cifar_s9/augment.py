"""Training augmentations. Every albumentations call in the project lives in this module.

`AugmentConfig` holds every tunable number; the trainer, the CLI and the app share it.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

# albumentations asks PyPI for a newer version on import: up to 2 s lost and a warning on
# offline machines (the lab's, a GPU box), and a network call nobody asked for
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A  # noqa: E402
import cv2
import numpy as np

from .data import MEAN, STD

BorderMode = Literal["reflect", "constant", "replicate", "wrap"]
BORDER_MODES = {"reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT,
                "replicate": cv2.BORDER_REPLICATE, "wrap": cv2.BORDER_WRAP}
IMAGE_SIZE = 32


class InvalidAugmentConfig(ValueError):
    pass


@dataclass(frozen=True)
class AugmentConfig:
    flip_p: float = 0.5
    # Affine (the current replacement for ShiftScaleRotate)
    affine_p: float = 0.5
    shift_limit: float = 0.1      # fraction of image size, each direction
    scale_limit: float = 0.1      # scale drawn from [1 - limit, 1 + limit]
    rotate_limit: float = 15.0    # degrees, each direction
    border_mode: BorderMode = "reflect"
    # CoarseDropout (cutout)
    dropout_p: float = 0.5
    holes_min: int = 1
    holes_max: int = 1
    hole_height_min: int = 8      # pixels
    hole_height_max: int = 8
    hole_width_min: int = 8
    hole_width_max: int = 8
    fill: int = 128               # grey, close to the dataset mean (0-255)
    # Robustness to compression: our offline data is JPEG, real users send clean images
    jpeg_p: float = 0.0
    jpeg_quality_min: int = 60
    sharpen_p: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AugmentConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def with_changes(self, **changes) -> "AugmentConfig":
        return replace(self, **changes)


NO_AUGMENT = AugmentConfig(flip_p=0.0, affine_p=0.0, dropout_p=0.0)


def validate(cfg: AugmentConfig) -> AugmentConfig:
    """Raise InvalidAugmentConfig with a readable message for any impossible combination."""
    problems: list[str] = []
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{f.name} must be a number, got {value}")
    if problems:
        raise InvalidAugmentConfig("; ".join(problems))
    for name in ("flip_p", "affine_p", "dropout_p", "jpeg_p", "sharpen_p"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            problems.append(f"{name} must be a probability in [0, 1], got {getattr(cfg, name)}")
    if not 0.0 <= cfg.shift_limit <= 0.5:
        problems.append(f"shift_limit must be in [0, 0.5], got {cfg.shift_limit}")
    if not 0.0 <= cfg.scale_limit < 1.0:
        problems.append(f"scale_limit must be in [0, 1), got {cfg.scale_limit}")
    if not 0.0 <= cfg.rotate_limit <= 180.0:
        problems.append(f"rotate_limit must be in [0, 180] degrees, got {cfg.rotate_limit}")
    if cfg.border_mode not in BORDER_MODES:
        problems.append(f"border_mode must be one of {sorted(BORDER_MODES)}, got {cfg.border_mode!r}")
    for lo, hi, upper in (("holes_min", "holes_max", 64),
                          ("hole_height_min", "hole_height_max", IMAGE_SIZE),
                          ("hole_width_min", "hole_width_max", IMAGE_SIZE)):
        a, b = getattr(cfg, lo), getattr(cfg, hi)
        if not (isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer))):
            problems.append(f"{lo} and {hi} must be whole numbers, got {a} and {b}")
        elif not 1 <= a <= b <= upper:
            problems.append(f"need 1 <= {lo} <= {hi} <= {upper}, got {lo}={a}, {hi}={b}")
    if not 0 <= cfg.fill <= 255:
        problems.append(f"fill must be a grey level in [0, 255], got {cfg.fill}")
    if not 1 <= cfg.jpeg_quality_min <= 100:
        problems.append(f"jpeg_quality_min must be in [1, 100], got {cfg.jpeg_quality_min}")
    if problems:
        raise InvalidAugmentConfig("; ".join(problems))
    return cfg


def spatial_transforms(cfg: AugmentConfig) -> list[A.BasicTransform]:
    validate(cfg)
    border = BORDER_MODES[cfg.border_mode]
    return [
        A.HorizontalFlip(p=cfg.flip_p),
        A.Affine(translate_percent=(-cfg.shift_limit, cfg.shift_limit),
                 scale=(1 - cfg.scale_limit, 1 + cfg.scale_limit),
                 rotate=(-cfg.rotate_limit, cfg.rotate_limit),
                 keep_ratio=True, border_mode=border, fill=cfg.fill, p=cfg.affine_p),
        A.ImageCompression(quality_range=(cfg.jpeg_quality_min, 100), p=cfg.jpeg_p),
        A.Sharpen(alpha=(0.1, 0.3), lightness=(1.0, 1.0), p=cfg.sharpen_p),
        A.CoarseDropout(num_holes_range=(cfg.holes_min, cfg.holes_max),
                        hole_height_range=(cfg.hole_height_min, cfg.hole_height_max),
                        hole_width_range=(cfg.hole_width_min, cfg.hole_width_max),
                        fill=cfg.fill, p=cfg.dropout_p),
    ]


def build_pipeline(cfg: AugmentConfig, normalize: bool = True, seed: int | None = None) -> A.Compose:
    steps = spatial_transforms(cfg)
    if normalize:
        steps.append(A.Normalize(mean=MEAN, std=STD, max_pixel_value=255.0))
    return A.Compose(steps, seed=seed, save_applied_params=True)


def normalize_uint8(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 with CIFAR-10 statistics; the eval-time transform."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


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


def _jsonable(applied: list) -> dict:
    result = {}
    for name, params in applied:
        result[name] = {k: _plain(v) for k, v in params.items()
                        if k in ("shape",) or not isinstance(v, np.ndarray) or v.size <= 16}
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
    return v if isinstance(v, (int, str, bool, type(None))) else str(v)


def pipeline_code(cfg: AugmentConfig) -> str:
    """A copyable Python snippet that rebuilds this exact pipeline."""
    validate(cfg)
    return f"""import albumentations as A
import cv2

transform = A.Compose([
    A.HorizontalFlip(p={cfg.flip_p}),
    A.Affine(translate_percent=({-cfg.shift_limit}, {cfg.shift_limit}),
             scale=({1 - cfg.scale_limit:.3g}, {1 + cfg.scale_limit:.3g}),
             rotate=({-cfg.rotate_limit}, {cfg.rotate_limit}),
             keep_ratio=True, border_mode=cv2.{_border_name(cfg.border_mode)},
             fill={cfg.fill}, p={cfg.affine_p}),
    A.ImageCompression(quality_range=({cfg.jpeg_quality_min}, 100), p={cfg.jpeg_p}),
    A.Sharpen(alpha=(0.1, 0.3), lightness=(1.0, 1.0), p={cfg.sharpen_p}),
    A.CoarseDropout(num_holes_range=({cfg.holes_min}, {cfg.holes_max}),
                    hole_height_range=({cfg.hole_height_min}, {cfg.hole_height_max}),
                    hole_width_range=({cfg.hole_width_min}, {cfg.hole_width_max}),
                    fill={cfg.fill}, p={cfg.dropout_p}),
    A.Normalize(mean={MEAN}, std={STD}, max_pixel_value=255.0),
])
"""


def _border_name(mode: str) -> str:
    return {"reflect": "BORDER_REFLECT_101", "constant": "BORDER_CONSTANT",
            "replicate": "BORDER_REPLICATE", "wrap": "BORDER_WRAP"}[mode]
