"""How many steps a run takes: a fixed number of epochs, or what fits in a time budget.

A `Plan` is the run's length in steps (the last epoch of a budgeted run may be partial). The
`BudgetPlanner` turns measured times into plans and never touches the `TrainConfig`: a first
plan from a calibration of a few real steps, then a new one after every epoch from the epochs'
own times, which the one-cycle schedule follows without a jump in the learning rate
(schedule.py). All times come from the trainer's `clock`, so tests can plan by hand.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RECENT_EPOCHS = 3  # the step time is the median over this many latest epochs


@dataclass(frozen=True)
class Plan:
    total_steps: int
    steps_per_epoch: int

    @classmethod
    def fixed(cls, epochs: int, steps_per_epoch: int) -> "Plan":
        return cls(epochs * steps_per_epoch, steps_per_epoch)

    @property
    def epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)


def steps_within_budget(budget_s: float, spent_s: float, steps_done: int, step_s: float,
                        eval_s: float, steps_per_epoch: int, eval_every: int, max_steps: int) -> int:
    """Total step count for a time budget: the most steps whose training and evaluations fit in
    what is left. An evaluation follows every `eval_every`-th epoch and the run's last (maybe
    partial) epoch, counted exactly: an average share of an evaluation per step would charge a
    partial last epoch for an evaluation it never runs (a 2-minute budget on 4,000 images used
    77% of itself that way, 88% counted exactly). At least one step, never fewer than those
    done, at most `max_steps`."""
    epochs_done = steps_done // steps_per_epoch

    def cost(total: int) -> float:  # seconds from now to the end of a run of `total` steps
        last_epoch = math.ceil(total / steps_per_epoch)
        evals_between = max(0, (last_epoch - 1) // eval_every - epochs_done // eval_every)
        return (total - steps_done) * step_s + (evals_between + 1) * eval_s

    left = budget_s - spent_s
    lo, hi = steps_done, max_steps  # the largest total in (steps_done, max_steps] that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if cost(mid) <= left else (lo, mid - 1)
    return max(1, lo)


class BudgetPlanner:
    """Plans for `budget_s` seconds counted from `started_at`, from the times it is told."""

    def __init__(self, budget_s: float, started_at: float, steps_per_epoch: int, eval_every: int,
                 max_steps: int):
        self.budget_s, self.started_at = budget_s, started_at
        self.steps_per_epoch, self.eval_every, self.max_steps = steps_per_epoch, eval_every, max_steps
        self.eval_s = 0.0                  # one evaluation: calibrated, then as last measured
        self.step_s: list[float] = []      # seconds per step of each epoch so far
        self._plan_made_at, self._evals_since_plan = started_at, 0.0

    def _plan(self, now: float, step_s: float, steps_done: int, pending_s: float = 0.0) -> Plan:
        steps = steps_within_budget(self.budget_s, now - self.started_at + pending_s, steps_done,
                                    step_s, self.eval_s, self.steps_per_epoch, self.eval_every,
                                    self.max_steps)
        self._plan_made_at, self._evals_since_plan = now, 0.0
        return Plan(steps, self.steps_per_epoch)

    def first(self, now: float, step_times: list[float], eval_s: float) -> Plan:
        """The first guess, from timed calibration steps (their median ignores one-off stalls:
        page faults, a background process) and one timed evaluation."""
        self.eval_s = eval_s
        return self._plan(now, float(np.median(step_times)), steps_done=0)

    def evaluated(self, seconds: float) -> None:
        """An evaluation took `seconds`: a measured one beats the calibration's."""
        self.eval_s = seconds
        self._evals_since_plan += seconds

    def after_epoch(self, now: float, steps_this_epoch: int, steps_done: int,
                    evaluates_next: bool) -> Plan:
        """Fit the rest of the run to what is left of the budget.

        The step time is the median over the latest epochs of their whole wall time (data,
        EMA, checkpoint and callbacks included, evaluations excluded) per step: the first
        epoch is often slower (allocator, caches, another process), and a median over recent
        epochs follows the machine as it is now. `evaluates_next`: this epoch's evaluation
        comes right after the plan, so it counts as spent."""
        self.step_s.append((now - self._plan_made_at - self._evals_since_plan) / steps_this_epoch)
        step_s = float(np.median(self.step_s[-RECENT_EPOCHS:]))
        return self._plan(now, step_s, steps_done, self.eval_s if evaluates_next else 0.0)
