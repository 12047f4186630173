"""Resume files: what a run saves after every epoch, and how a `Trainer` continues from one.

The file is a weights-only torch file (records/checkpoint.py): model, EMA, optimizer and
scheduler states, the epoch, the history, the wall time, the three configs and `eval_split`.
A resumed run continues bit-for-bit on CPU. The same state, as bytes, is what a ZeroGPU call takes and
returns (train/chunks.py): `apply_state` puts a trainer where either left off. Files written before the trainer was split (no
`eval_split`, `test_*` history, a budgeted run's planned epochs inside `train_config`) load the
same way (tests/test_resume_compat.py).
"""
from __future__ import annotations

from pathlib import Path

from ..data.augment import AugmentConfig
from ..data.cifar import Split
from ..errors import UserError
from ..model.net import ModelConfig
from ..records.checkpoint import load_resume
from .budget import Plan
from .config import TrainConfig
from .events import Callback, EvalSplit, upgrade_history
from .schedule import ReplannableOneCycle


def state_of(trainer) -> dict:
    return {"model": trainer.model.state_dict(),
            "ema": trainer.ema.state_dict() if trainer.ema is not None else None,
            "optimizer": trainer.optimizer.state_dict(), "scheduler": trainer.scheduler.state_dict(),
            "epoch": trainer.epoch, "history": trainer.history, "wall_time_s": trainer.wall_time_s,
            "model_config": trainer.model_config.to_dict(), "train_config": trainer.cfg.to_dict(),
            "aug_config": trainer.aug_config.to_dict(), "eval_split": trainer.eval_split}


def resume(trainer_cls, path: Path, train_split: Split, eval_data: Split | None = None,
           callback: Callback | None = None, eval_split: EvalSplit | None = None, **overrides):
    """A `trainer_cls` rebuilt from `path`, at the step it saved. `overrides` are TrainConfig
    fields (a new `epochs` keeps the curve's shape from the steps done); a budgeted run
    continues its saved plan. `eval_split`: what `eval_data` is, by default what the file
    recorded (files from before it was recorded: the validation split when the run held one
    back, as the CLI did, else the test set)."""
    state = load_resume(path)
    saved_cfg = state["train_config"]
    recorded = state.get("eval_split") or ("validation" if saved_cfg.get("val_per_class") else "test")
    train_cfg = TrainConfig.from_dict({**saved_cfg, "time_budget_s": None, **overrides})
    trainer = trainer_cls(ModelConfig.from_dict(state["model_config"]), train_cfg,
                          AugmentConfig.from_dict(state["aug_config"]), train_split, eval_data, callback,
                          eval_split=eval_split or recorded)
    apply_state(trainer, state, overrides.get("epochs"), Path(path).name, recorded)
    return trainer


def apply_state(trainer, state: dict, new_epochs: int | None = None, name: str = "the saved state",
                recorded: EvalSplit | None = None) -> None:
    """Put `trainer` where `state` (`state_of`) left off: weights, EMA, optimizer, schedule,
    epoch, history and wall time. The resume file's path and a GPU call's returned state
    (train/chunks.py) both come here. `name` names the state in a refusal; `recorded`: what the
    history's scores were on, when the state does not say."""
    trainer.model.load_state_dict(state["model"])
    if trainer.ema is not None and state["ema"] is not None:
        trainer.ema.load_state_dict(state["ema"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    restore_schedule(trainer, state["scheduler"], state["epoch"], new_epochs, name)
    trainer.epoch, trainer.wall_time_s = state["epoch"], state["wall_time_s"]
    trainer.history = upgrade_history(state["history"], recorded or state.get("eval_split"))


def restore_schedule(trainer, saved: dict, epochs_done: int, new_epochs: int | None, name: str) -> None:
    """The saved schedule, at its step, and the plan it implies; a new epoch count re-paces it
    from there: a budgeted run's curve at a new pace, a fixed run's one-cycle for the new length."""
    nb = trainer.batches.batches_per_epoch

    def refuse_if_past(steps_done: int, total: int) -> None:
        if steps_done > total:
            raise UserError(f"{name} has already trained {epochs_done} epochs; "
                            f"cannot resume with epochs={trainer.cfg.epochs}")

    if ReplannableOneCycle.owns(saved):  # a time-budgeted run: its plan, in steps
        trainer.scheduler = trainer._replannable(1)
        trainer.scheduler.load_state_dict(saved)
        if new_epochs is not None:
            refuse_if_past(trainer.steps_done, trainer.cfg.epochs * nb)
            trainer.scheduler.replan(trainer.cfg.epochs * nb)
    elif saved["total_steps"] == trainer.total_steps:
        trainer.scheduler.load_state_dict(saved)
    else:
        refuse_if_past(epochs_done * nb, trainer.total_steps)
        trainer.scheduler = trainer._make_scheduler(epochs_done * nb)
    trainer.plan = Plan(trainer.scheduler.total_steps, nb)
