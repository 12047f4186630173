"""The project's one error boundary: what a visitor (or a CLI user) may be told.

`UserError` is the base of every error that describes a bad input (a file, a setting, a number)
in words meant for the person who gave it. The app's `ui.common.user_errors` shows exactly
these as messages; any other exception is a bug and goes to the log with its traceback. A
`ValueError` subclass, so callers that caught ValueError before still catch it.

`number` and `whole_number` are the one parser of numbers from hostile sources (sliders send
floats, JSON and HTTP clients anything): every refusal names the field and, where there is
one, the allowed range, never Python's own `int()` or OverflowError message.
"""
from __future__ import annotations

import math


class UserError(ValueError):
    """A bad input, explained in words its author can act on."""


def number(value, name: str, error: type[UserError] = UserError) -> float:
    """A finite float, or `error` naming the field (bools are not numbers: JSON `true` is no 1)."""
    if isinstance(value, bool):
        raise error(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise error(f"{name} must be a number, got {value!r:.40}") from None
    if not math.isfinite(x):
        raise error(f"{name} must be a finite number, got {value!r}")
    return x


def whole_number(value, name: str, lo: int | None = None, hi: int | None = None,
                 error: type[UserError] = UserError) -> int:
    """An int within [lo, hi]; NaN, infinity, fractions and text give `error`."""
    span = f" in [{lo}, {hi}]" if lo is not None and hi is not None else ""
    x = number(value, name, error)
    if not x.is_integer():
        raise error(f"{name} must be a whole number{span}, got {value!r}")
    n = int(x)
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise error(f"{name} must be a whole number{span or ' in range'}, got {n}")
    return n
