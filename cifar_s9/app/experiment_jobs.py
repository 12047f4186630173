"""Experiments in the app: the arms of one A/B run one after another in the app's single
training slot (`slot.TrainingSlot`, shared with the Train tab), observed through snapshots.

Only the visitor who started an experiment (or re-attached to it with its run token) sees its
curves and results and can stop it; every other visitor sees only that the slot is busy with an
experiment, and how far it has got. Nothing here knows about Gradio.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Callable

from ..experiments.runner import (ArmRun, ArmStarted, ExperimentConfig, ExperimentData, ExperimentResult,
                                  run_experiment)
from ..experiments import zerogpu
from ..experiments.tracker import owner_tag
from ..errors import UserError
from ..train.trainer import EpochEvent, StepEvent
from .jobs import APP_LIMITS
from .slot import DONE, FAILED, RUNNING, STOPPED, Job, JobSnapshot, TrainingSlot  # noqa: F401

# one experiment holds the slot every visitor shares: keep its total bounded
MAX_TOTAL_MINUTES = 60
MAX_TOTAL_EPOCHS = 200


@dataclass
class ExperimentSnapshot(JobSnapshot):
    queue: list[dict] = field(default_factory=list)     # {"arm", "seed", "state"} in run order
    curves: dict[str, dict] = field(default_factory=dict)  # "arm (seed s)" -> {"epoch", "train_loss", "val_acc"}
    result: ExperimentResult | None = None
    error: str | None = None


def check_app_budget(config: ExperimentConfig) -> ExperimentConfig:
    """The app's extra limits on an experiment: the shared slot must not be held for hours."""
    config = config.validated()
    runs = len(config.arms) * config.repeats
    if config.minutes is not None and runs * config.minutes > MAX_TOTAL_MINUTES:
        raise UserError(f"{runs} runs of {config.minutes:g} minutes exceed the app's {MAX_TOTAL_MINUTES} "
                         "minutes per experiment; shorten the budget or use fewer arms or seeds")
    if config.epochs is not None and runs * config.epochs > MAX_TOTAL_EPOCHS:
        raise UserError(f"{runs} runs of {config.epochs} epochs exceed the app's {MAX_TOTAL_EPOCHS} "
                         "epochs per experiment")
    lo, hi = APP_LIMITS["subset"]
    if config.subset is not None and not lo <= config.subset <= hi:
        raise UserError(f"subset must be in [{lo}, {hi}] in the app, got {config.subset}")
    if zerogpu.on_zerogpu():  # every epoch must fit in one GPU call
        zerogpu.check_fits(config.subset or hi, config.train.batch_size, config.curve_images)
    return config


class ExperimentJob(Job):
    kind, noun = "experiment", "experiment"

    def __init__(self, config: ExperimentConfig, owner: str):
        super().__init__(owner, ExperimentSnapshot(queue=[
            {"arm": a.name, "seed": config.seed + r, "state": "waiting"}
            for r in range(config.repeats) for a in config.arms]))
        self.config = config

    def note(self) -> str:
        """For every visitor's slot line: how many of its runs are done (no arm, no curve)."""
        queue = self.snapshot().queue
        done = sum(q["state"] not in ("waiting", "running") for q in queue)
        return f"{done} of {len(queue)} runs done"

    def progress(self, message: str, run: ArmRun | None, event) -> None:
        """The runner's progress callback: queue states, curves, messages."""
        self.apply(lambda s: self._record(s, message, run, event))

    @staticmethod
    def _record(s: ExperimentSnapshot, message: str, run: ArmRun | None, event) -> None:
        current = next((q for q in s.queue if q["state"] == "running"), None)
        if isinstance(event, EpochEvent):
            if current is not None:
                curve = s.curves.setdefault(f"{current['arm']} (seed {current['seed']})",
                                            {"epoch": [], "train_loss": [], "val_acc": []})
                curve["epoch"].append(event.epoch)
                curve["train_loss"].append(event.train_loss)
                curve["val_acc"].append(event.test_acc)
                s.message = f"{current['arm']} (seed {current['seed']}): epoch {event.epoch}/{event.epochs}"
        elif isinstance(event, StepEvent):
            if current is not None:
                s.message = (f"{current['arm']} (seed {current['seed']}): epoch {event.epoch}, step "
                             f"{event.step}/{event.total_steps}, {event.images_per_s:.0f} img/s")
        elif run is not None:
            if current is not None:
                current["state"] = run.state
            s.message = message
        elif isinstance(event, ArmStarted):
            s.queue[event.index]["state"] = "running"
            s.message = message
        else:
            s.message = message

    def run(self, load_data: Callable[[], ExperimentData],
            time_left: Callable[[], float | None] | None = None) -> dict:
        """Every arm in turn (on ZeroGPU each in GPU calls of a few epochs: experiments/zerogpu.py);
        `time_left()`: the seconds the slot still lends."""
        try:
            self._update(message="loading data")
            data = load_data()
            result = run_experiment(self.config, data.train, data.evaluation, data_note=data.note,
                                    meaningless=data.demo_only, stop=self.stop_event,
                                    progress=self.progress, owner=owner_tag(self.owner),
                                    owns_process=False, time_left=time_left)
            return dict(state=DONE if result.complete else STOPPED, result=result,
                        message="finished" if result.complete else "stopped; the arms that finished are shown")
        except Exception as exc:  # reported to its owner; the slot is released all the same
            traceback.print_exc()
            return dict(state=FAILED, error=f"{type(exc).__name__}", message=f"the experiment failed: {exc}")


class Experiments:
    """Starts experiments in the training slot `jobs`, one job at a time for all visitors.
    Built once per app in its `AppContext`."""

    def __init__(self, jobs: TrainingSlot, load_data: Callable[[], ExperimentData]):
        self.jobs, self.load_data = jobs, load_data

    def start(self, config: ExperimentConfig, owner: str) -> ExperimentJob:
        if not isinstance(owner, str) or not owner:
            raise UserError("an experiment needs an owner (the visitor's session)")
        config = check_app_budget(config)  # invalid settings: ValueError before taking the slot
        job = ExperimentJob(config, owner)
        return self.jobs.run(job, lambda: job.run(self.load_data, self.jobs.hold_left_s))

    def mine(self, owner: str) -> ExperimentJob | None:
        job = self.jobs.latest(owner, ExperimentJob.kind)
        return job if isinstance(job, ExperimentJob) else None

    def slot_note(self, owner: str) -> str:
        """What any visitor may know about the shared slot: the one status line."""
        return self.jobs.status(owner)

    def stop(self, owner: str) -> bool:
        return self.jobs.stop(owner, ExperimentJob.kind)
