"""Numbers from the UI: sliders send floats, JSON and HTTP clients may send anything.

The parsers themselves (`number`, `whole_number`) are the package's one set, in `errors.py`;
here they are applied to the augmentation settings. Every refusal names the field.
"""
from __future__ import annotations

from dataclasses import fields

from ..data.augment import AugmentConfig, InvalidAugmentConfig
from ..errors import number, whole_number  # noqa: F401  (the tabs import them from here)

MAX_VIEWS = 64          # augmented versions in one preview
MAX_SEED = 2**32 - 1    # numpy's seed range

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
        if name in _INT_FIELDS:
            clean[name] = whole_number(value, name, error=InvalidAugmentConfig)
        elif name in _FLOAT_FIELDS:
            clean[name] = number(value, name, error=InvalidAugmentConfig)
        else:
            clean[name] = value
    return AugmentConfig.from_dict(clean)
