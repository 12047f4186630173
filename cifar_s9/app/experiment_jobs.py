"""Experiments in the app: the arms of one A/B run one after another in the app's single
training slot (the one `TrainingJobs` guards), observed through snapshots.

Only the visitor who started an experiment sees its curves and results and can stop it; every
other visitor sees only that the slot is busy with an experiment, and how far it has got.
Nothing here knows about Gradio.
"""
from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, field
from typing import Callable

from ..experiments.runner import ArmRun, ArmStarted, ExperimentConfig, ExperimentData, ExperimentResult
from .jobs import APP_LIMITS, Busy, NotOwner, TrainingJobs
from ..experiments.tracker import owner_tag
from ..train.trainer import EpochEvent, StepEvent
from ..experiments.zerogpu import run_in_slot  # @spaces.GPU; a plain call off ZeroGPU
from ..errors import UserError

RUNNING, DONE, STOPPED, FAILED = "running", "done", "stopped", "failed"
# one experiment holds the slot every visitor shares: keep its total bounded
MAX_TOTAL_MINUTES = 60
MAX_TOTAL_EPOCHS = 200


@dataclass
class ExperimentSnapshot:
    state: str = RUNNING
    message: str = "starting"
    queue: list[dict] = field(default_factory=list)     # {"arm", "seed", "state"} in run order
    curves: dict[str, dict] = field(default_factory=dict)  # "arm (seed s)" -> {"epoch", "train_loss", "val_acc"}
    result: ExperimentResult | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state != RUNNING


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
    return config


class ExperimentJob:
    def __init__(self, config: ExperimentConfig, owner: str):
        self.config, self.owner = config, owner
        self.stop_event = threading.Event()
        self._cond = threading.Condition()
        self._snap = ExperimentSnapshot(queue=[{"arm": a.name, "seed": config.seed + r, "state": "waiting"}
                                               for r in range(config.repeats) for a in config.arms])
        self._version = 0
        self.thread: threading.Thread | None = None

    def snapshot(self) -> ExperimentSnapshot:
        with self._cond:
            s = self._snap
            return ExperimentSnapshot(s.state, s.message, [dict(q) for q in s.queue],
                                      {k: {n: list(v) for n, v in c.items()} for k, c in s.curves.items()},
                                      s.result, s.error)

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    def wait(self, seen_version: int, timeout: float = 1.0) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._version != seen_version, timeout)
            return self._version

    def _update(self, **changes) -> None:
        with self._cond:
            for k, v in changes.items():
                setattr(self._snap, k, v)
            self._version += 1
            self._cond.notify_all()

    def progress(self, message: str, run: ArmRun | None, event) -> None:
        """The runner's progress callback: queue states, curves, messages."""
        with self._cond:
            s = self._snap
            if isinstance(event, EpochEvent):
                current = next((q for q in s.queue if q["state"] == "running"), None)
                if current is not None:
                    curve = s.curves.setdefault(f"{current['arm']} (seed {current['seed']})",
                                                {"epoch": [], "train_loss": [], "val_acc": []})
                    curve["epoch"].append(event.epoch)
                    curve["train_loss"].append(event.train_loss)
                    curve["val_acc"].append(event.test_acc)
                    s.message = f"{current['arm']} (seed {current['seed']}): epoch {event.epoch}/{event.epochs}"
            elif isinstance(event, StepEvent):
                current = next((q for q in s.queue if q["state"] == "running"), None)
                if current is not None:
                    s.message = (f"{current['arm']} (seed {current['seed']}): epoch {event.epoch}, step "
                                 f"{event.step}/{event.total_steps}, {event.images_per_s:.0f} img/s")
            elif run is not None:
                for q in s.queue:
                    if q["state"] == "running":
                        q["state"] = run.state
                s.message = message
            elif isinstance(event, ArmStarted):
                s.queue[event.index]["state"] = "running"
                s.message = message
            else:
                s.message = message
            self._version += 1
            self._cond.notify_all()

    def stop(self, reason: str | None = None) -> None:
        self.stop_event.set()
        self._update(message=f"{reason}: stopping after the current step" if reason
                     else "stopping after the current step")

    def run(self, load_data: Callable[[], ExperimentData]) -> dict:
        try:
            self._update(message="loading data")
            data = load_data()
            result = run_in_slot(self.config, data.train, data.evaluation, data_note=data.note,
                                    meaningless=data.demo_only, stop=self.stop_event,
                                    progress=self.progress, owner=owner_tag(self.owner),
                                    owns_process=False)
            return dict(state=DONE if result.complete else STOPPED, result=result,
                        message="finished" if result.complete else "stopped; the arms that finished are shown")
        except Exception as exc:  # reported to its owner; the slot is released all the same
            traceback.print_exc()
            return dict(state=FAILED, error=f"{type(exc).__name__}", message=f"the experiment failed: {exc}")


class Experiments:
    """Starts experiments in the training slot of `jobs`, one at a time for all visitors."""

    def __init__(self, jobs: TrainingJobs, load_data: Callable[[], ExperimentData]):
        self.jobs, self.load_data = jobs, load_data
        self._guard = threading.Lock()
        self.current: ExperimentJob | None = None
        self._last: dict[str, ExperimentJob] = {}  # owner -> their latest experiment

    def start(self, config: ExperimentConfig, owner: str) -> ExperimentJob:
        if not isinstance(owner, str) or not owner:
            raise UserError("an experiment needs an owner (the visitor's session)")
        config = check_app_budget(config)  # invalid settings: ValueError before taking the slot
        box: list[ExperimentJob] = []
        if not self.jobs.acquire_slot(owner, stop=lambda reason: box and box[0].stop(reason)):
            raise Busy("The training slot is busy (one run or experiment at a time for all visitors "
                       "of this app). Wait for it to finish.")
        try:
            job = ExperimentJob(config, owner)
            box.append(job)
            with self._guard:
                self.current = job
                self._last[owner] = job
            job.thread = threading.Thread(target=self._run, args=(job,), name="cifar_s9-experiment",
                                          daemon=True)
            job.thread.start()
        except BaseException:
            self.jobs.release_slot()
            raise
        return job

    def _run(self, job: ExperimentJob) -> None:
        final = dict(state=FAILED, error="interrupted", message="the experiment was interrupted")
        try:
            final = job.run(self.load_data)
        finally:  # free the slot first, so whoever sees the final state can start again at once
            self.jobs.release_slot()
            job._update(**final)

    def mine(self, owner: str) -> ExperimentJob | None:
        with self._guard:
            return self._last.get(owner)

    def slot_note(self, owner: str) -> str:
        """What any visitor may know about the shared slot."""
        with self._guard:
            job = self.current
        if job is not None and not job.snapshot().finished:
            snap = job.snapshot()
            done = sum(q["state"] != "waiting" and q["state"] != "running" for q in snap.queue)
            whose = "your" if job.owner == owner else "another visitor's"
            return f"The training slot is running {whose} experiment: {done} of {len(snap.queue)} runs done."
        if self.jobs.busy:
            return "The training slot is busy with a training run."
        return "The training slot is free."

    def stop(self, owner: str) -> bool:
        with self._guard:
            job = self.current
        if job is None or job.snapshot().finished:
            return False
        if job.owner != owner:
            raise NotOwner("The experiment in progress was started by another visitor; only they can stop it.")
        job.stop()
        return True
