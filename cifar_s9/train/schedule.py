"""A one-cycle learning-rate schedule whose length can change while it runs (time-budgeted runs).

torch's OneCycleLR is a function of step / total_steps: changing total_steps mid-run moves the
run to another point of the curve, so a longer plan makes the learning rate jump back up
during the annealing. Here the schedule is a function of `progress`, from 0 to 1, and each
step moves progress an equal share of what is left: (1 - progress) / (steps left). A re-plan
changes only the pace of what is left, so the learning rate never jumps, still anneals
monotonically and still ends exactly at its final value on the last planned step. With a
fixed length, progress is step / total_steps and the curve is OneCycleLR's (cosine warm-up
from max_lr / div_factor to max_lr over pct_start, cosine annealing to
max_lr / div_factor / final_div_factor, momentum cycled the other way).

The state (steps taken, progress, planned length) is a few numbers, so a resume continues the
schedule bit-for-bit.
"""
from __future__ import annotations

import math
import warnings

import torch

BASE_MOMENTUM, MAX_MOMENTUM = 0.85, 0.95  # OneCycleLR's defaults, which the fixed-length runs use


def cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1.0)


def one_cycle(progress: float, max_lr: float, pct_start: float, div_factor: float = 10.0,
              final_div_factor: float = 100.0) -> tuple[float, float]:
    """(learning rate, momentum) at `progress` in [0, 1] of a one-cycle schedule."""
    initial = max_lr / div_factor
    if progress <= pct_start:
        f = progress / pct_start
        return cosine(initial, max_lr, f), cosine(MAX_MOMENTUM, BASE_MOMENTUM, f)
    f = min(1.0, (progress - pct_start) / (1.0 - pct_start))
    return cosine(max_lr, initial / final_div_factor, f), cosine(BASE_MOMENTUM, MAX_MOMENTUM, f)


def next_progress(progress: float, steps_done: int, total_steps: int) -> float:
    """Progress after one more step: an equal share of what is left; exactly 1 on the last step."""
    if steps_done + 1 >= total_steps:
        return 1.0
    return progress + (1.0 - progress) / (total_steps - steps_done)


class ReplannableOneCycle:
    """The one-cycle schedule on progress; `replan(total_steps)` changes the length left.

    Mirrors the part of the LRScheduler interface the trainer uses: step(), get_last_lr(),
    state_dict(), load_state_dict(), total_steps and last_epoch (the steps taken)."""

    def __init__(self, optimizer: torch.optim.Optimizer, max_lr: float, total_steps: int,
                 pct_start: float, div_factor: float = 10.0, final_div_factor: float = 100.0,
                 cycle_momentum: bool = True):
        if total_steps < 1:
            raise ValueError(f"total_steps must be at least 1, got {total_steps}")
        self.optimizer = optimizer
        self.max_lr, self.pct_start = max_lr, pct_start
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        self.cycle_momentum = cycle_momentum
        self.total_steps, self.last_epoch, self.progress = total_steps, 0, 0.0
        self._apply()

    def replan(self, total_steps: int) -> None:
        if total_steps < self.last_epoch:
            raise ValueError(f"cannot plan {total_steps} steps: {self.last_epoch} are already done")
        self.total_steps = total_steps

    def step(self) -> None:
        if self.last_epoch >= self.total_steps:
            raise ValueError(f"stepped past the planned {self.total_steps} steps")
        self.progress = next_progress(self.progress, self.last_epoch, self.total_steps)
        self.last_epoch += 1
        self._apply()

    def _apply(self) -> None:
        lr, momentum = one_cycle(self.progress, self.max_lr, self.pct_start, self.div_factor,
                                 self.final_div_factor)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
            if not self.cycle_momentum:
                continue
            if "betas" in group:
                group["betas"] = (momentum, *group["betas"][1:])
            elif "momentum" in group:
                group["momentum"] = momentum

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"kind": "replannable_one_cycle", "total_steps": self.total_steps,
                "last_epoch": self.last_epoch, "progress": self.progress, "max_lr": self.max_lr,
                "pct_start": self.pct_start, "div_factor": self.div_factor,
                "final_div_factor": self.final_div_factor, "cycle_momentum": self.cycle_momentum}

    def load_state_dict(self, state: dict) -> None:
        self.total_steps, self.last_epoch = int(state["total_steps"]), int(state["last_epoch"])
        self.progress = float(state["progress"])
        self.max_lr, self.pct_start = float(state["max_lr"]), float(state["pct_start"])
        self.div_factor, self.final_div_factor = float(state["div_factor"]), float(state["final_div_factor"])
        self.cycle_momentum = bool(state.get("cycle_momentum", True))  # older resume files cycled it
        self._apply()

    @staticmethod
    def owns(state: dict) -> bool:
        return state.get("kind") == "replannable_one_cycle"


def one_cycle_lr(optimizer: torch.optim.Optimizer, max_lr: float, total_steps: int, pct_start: float,
                 final_div_factor: float, cycle_momentum: bool,
                 steps_done: int = 0) -> torch.optim.lr_scheduler.OneCycleLR:
    """torch's OneCycleLR for a fixed-length run, moved on to `steps_done` (a resume with a new
    length lands at the same step of the new curve)."""
    if pct_start * total_steps == 1.0:  # OneCycleLR divides by zero on a 1-step warm-up
        pct_start = 1.5 / total_steps
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start, div_factor=10.0,
        final_div_factor=final_div_factor, cycle_momentum=cycle_momentum)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()"
        for _ in range(steps_done):
            scheduler.step()
    return scheduler
