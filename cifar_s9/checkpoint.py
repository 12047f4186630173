"""Documented alias (docs/usage.md) of `cifar_s9.records.checkpoint`; code in the package imports that module."""
from .records.checkpoint import *  # noqa: F401,F403
