"""What a training run reports, as it goes: a `StepEvent` every few steps, an `EpochEvent` after
every epoch. The CLI's progress table, the app's live curves and the run tracker read these;
none of them needs the trainer.

What is scored after an epoch is `eval_*`, with `eval_split` saying on what: "validation" (held-
back training images, where choices are made) or "test" (the test set, or the app's sample of
it). Histories written before the split was recorded call the numbers `test_*`;
`upgrade_history` renames them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Literal

EvalSplit = Literal["validation", "test"]
EVAL_SPLITS = ("validation", "test")


@dataclass(frozen=True)
class StepEvent:
    epoch: int          # 1-based
    step: int           # global step, 1-based
    total_steps: int
    loss: float         # mean over the steps since the last event
    lr: float
    images_per_s: float
    eta_s: float


@dataclass(frozen=True)
class EpochEvent:
    epoch: int                 # 1-based
    epochs: int                # planned (a time budget may change it between epochs)
    train_loss: float
    train_acc: float
    eval_loss: float | None    # None: no evaluation this epoch
    eval_acc: float | None
    lr: float
    images_per_s: float
    epoch_time_s: float        # training plus evaluation
    eta_s: float
    eval_split: EvalSplit | None = None  # what eval_* was scored on; None: nothing is scored

    def to_dict(self) -> dict:
        return asdict(self)

    # Read-only aliases of the old names, for the callers being rewritten in parallel (the app's
    # training slot, issue 24.2); new code reads eval_*.
    @property
    def test_loss(self) -> float | None:
        return self.eval_loss

    @property
    def test_acc(self) -> float | None:
        return self.eval_acc


Event = StepEvent | EpochEvent
Callback = Callable[[Event], None]


def upgrade_history(history: list[dict], eval_split: EvalSplit | None) -> list[dict]:
    """Epoch records of any age -> today's keys: `test_loss`/`test_acc` become `eval_loss`/
    `eval_acc`, and records without an `eval_split` get `eval_split` (what that run scored)."""
    out = []
    for h in history:
        h = dict(h)
        for old, new in (("test_loss", "eval_loss"), ("test_acc", "eval_acc")):
            if old in h:
                h.setdefault(new, h.pop(old))
        h.setdefault("eval_split", eval_split)
        out.append(h)
    return out
