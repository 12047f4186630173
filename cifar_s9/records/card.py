"""The model card: the one function that describes a trained network (the CLI and the app's
training jobs both call it), so every checkpoint carries the same provenance fields."""
from __future__ import annotations

from ..data.cifar import Split
from .provenance import run_info
from ..model.receptive_field import model_receptive_field


def model_card(trainer, train_source: str, preset: str, *, recipe: str | None = None,
               test: Split | None = None, test_acc: dict[str, float] | None = None,
               validation: dict | None = None, **extra) -> dict:
    """Card for `trainer`'s network after `fit`.

    `test_acc` maps "plain"/"tta" to accuracies measured on `test`; when `validation` describes a
    split held back from the training images (data.ValidationSpec and its size), `test` is that
    split and the figures are recorded as validation accuracy, never as test accuracy; `extra` adds fields that only
    one caller knows (the app's `source`, `stopped_early`, `demo_only` ...). `save_weights` adds
    the model config and parameter count itself.
    """
    card = {"preset": preset, "train_config": trainer.cfg.to_dict(),
            "aug_config": trainer.aug_config.to_dict(),
            "receptive_field": model_receptive_field(trainer.eval_model)[1],
            "train_data": {"source": train_source, "n": len(trainer.train_split)},
            "epochs": trainer.epoch, "wall_time_s": round(trainer.wall_time_s, 1),
            "history": trainer.history, **run_info(trainer.device), "accuracy": {}}
    if recipe is not None:
        card["recipe"] = recipe
    if validation is not None:
        card["validation"] = validation
    if test is not None and test_acc:
        card["accuracy"]["validation" if validation is not None else "test"] = {
            "data": test.source, "n": len(test), **{k: round(float(v), 4) for k, v in test_acc.items()}}
    demo_only = extra.pop("demo_only", None)
    if demo_only is not None:
        card["train_data"]["demo_only"] = demo_only
    card.update(extra)
    return card
