"""Documented alias (docs/usage.md) of `cifar_s9.data.images`; code in the package imports that module."""
from .data.images import *  # noqa: F401,F403
