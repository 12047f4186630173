"""Training: the Trainer and TrainConfig (trainer), batch streams, schedules, losses, distillation, recipes.
May import data/, model/, and its peers records/, analysis/, teacher/; never experiments/, app/ or ui/.
"""
# `cifar_s9.train.Trainer` (with `TrainConfig`) is documented (docs/usage.md): loaded on first use.
_DOCUMENTED = {"Trainer": "trainer", "TrainConfig": "trainer"}


def __getattr__(name):
    if name in _DOCUMENTED:
        import importlib
        return getattr(importlib.import_module(f".{_DOCUMENTED[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
