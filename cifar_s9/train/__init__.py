"""Training: config, events, budget (the run's length), trainer; batch streams, schedules, losses, EMA, mixup, recipes.
May import data/, model/, and its peers records/, analysis/, teacher/; never experiments/, app/ or ui/.
"""
# `cifar_s9.train.Trainer` (with `TrainConfig`) is documented (docs/usage.md): loaded on first use.
_DOCUMENTED = {"Trainer": "trainer", "TrainConfig": "config"}


def __getattr__(name):
    if name in _DOCUMENTED:
        import importlib
        return getattr(importlib.import_module(f".{_DOCUMENTED[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
