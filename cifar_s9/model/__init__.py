"""The network: conv units (layers), the Net and its presets (net), receptive fields, the assignment's rules.
Imports only torch and the package's base modules (paths, atomic); nothing from data/ or any layer above.
"""
# `cifar_s9.model.build_model`, `get_config`, `ALL_PRESETS` are documented (docs/usage.md): loaded
# on first use, so importing a submodule stays light.
_DOCUMENTED = {"build_model": "net", "get_config": "net", "ALL_PRESETS": "net"}


def __getattr__(name):
    if name in _DOCUMENTED:
        import importlib
        return getattr(importlib.import_module(f".{_DOCUMENTED[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
