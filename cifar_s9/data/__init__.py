"""Images in: the CIFAR-10 splits and cache (cifar), the app's data fallbacks, image decoding, transforms, augment.
Imports only the base modules (paths, atomic) and its own modules; augment.py is the only albumentations user.
"""
# `cifar_s9.data.CLASSES` and `load_split` are documented (docs/usage.md): loaded on first use.
_DOCUMENTED = {"CLASSES": "cifar", "load_split": "cifar"}


def __getattr__(name):
    if name in _DOCUMENTED:
        import importlib
        return getattr(importlib.import_module(f".{_DOCUMENTED[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
