"""Documented alias (docs/usage.md) of `cifar_s9.analysis.gradcam`; code in the package imports that module."""
from .analysis.gradcam import *  # noqa: F401,F403
