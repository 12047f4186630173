"""Numbers from the UI: sliders send floats, JSON and HTTP clients may send anything.

Each function turns one raw value into a typed one or raises a ValueError whose message names
the field and the allowed range (never Python's own OverflowError or `int()` message).
"""
from __future__ import annotations

import math
from dataclasses import fields

from ..data.augment import AugmentConfig, InvalidAugmentConfig

MAX_VIEWS = 64          # augmented versions in one preview
MAX_SEED = 2**32 - 1    # numpy's seed range


def number(value, name: str) -> float:
    """A UI value (slider float, numeric string) -> a finite float, or ValueError naming the field."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return x


def whole_number(value, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """A UI value -> int within [lo, hi]; NaN, infinity, fractions and text give a ValueError."""
    span = f" in [{lo}, {hi}]" if lo is not None and hi is not None else ""
    x = number(value, name)
    if not x.is_integer():
        raise ValueError(f"{name} must be a whole number{span}, got {value!r}")
    n = int(x)
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise ValueError(f"{name} must be{span or ' in range'}, got {n}")
    return n


_INT_FIELDS = {f.name for f in fields(AugmentConfig) if f.type in ("int", int)}
_FLOAT_FIELDS = {f.name for f in fields(AugmentConfig) if f.type in ("float", float)}


def coerce_augment(values: dict) -> AugmentConfig:
    """UI values (sliders send floats, JSON may send strings) -> AugmentConfig; unknown keys ignored.

    Only types are fixed here; `augment.validate` judges the ranges.
    """
    if not isinstance(values, dict):
        raise InvalidAugmentConfig(f"augmentation settings must be a mapping, got {type(values).__name__}")
    clean = {}
    for name, value in values.items():
        if value is None:
            continue
        try:
            if name in _INT_FIELDS:
                x = float(value)  # NaN and infinity are not whole numbers either
                if not x.is_integer():
                    raise InvalidAugmentConfig(f"{name} must be a whole number, got {value}")
                clean[name] = int(x)
            elif name in _FLOAT_FIELDS:
                clean[name] = number(value, name)
            else:
                clean[name] = value
        except InvalidAugmentConfig:
            raise
        except (TypeError, ValueError, OverflowError):
            raise InvalidAugmentConfig(f"{name} must be a number, got {value!r}") from None
    return AugmentConfig.from_dict(clean)
