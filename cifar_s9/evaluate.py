"""Documented alias (docs/usage.md) of `cifar_s9.analysis.evaluate`; code in the package imports that module."""
from .analysis.evaluate import *  # noqa: F401,F403
