"""One training run at a time, in a background thread, observed through snapshots.

`TrainingJobs.start` refuses a second run with `Busy` (across all users of the app), validates
the settings before anything starts, and runs the Trainer in a thread. The thread releases the
slot in a `finally`, so a crash never leaves the app stuck "busy". Observers call
`job.wait(version)` to block until something new happened, then read `job.snapshot()`.
"""
from __future__ import annotations

import datetime as dt
import threading
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .augment import AugmentConfig, validate
from .checkpoint import save_weights
from .model import get_config
from .paths import WEIGHTS_DIR
from .card import model_card
from .app_data import TrainingData
from .train import EpochEvent, StepEvent, Trainer, TrainConfig, resolve_device, validate_train_config

RUNNING, DONE, STOPPED, FAILED = "running", "done", "stopped", "failed"
SHIPPED_WEIGHTS = WEIGHTS_DIR  # the released checkpoints: no app run may write here
# The app's one training slot is shared by every user, so a run from the app is capped tighter than
# the trainer's own LIMITS (the CLI may train for 1000 epochs; a public app must not hold the slot for days).
APP_LIMITS = {"epochs": (1, 50), "batch_size": (1, 1024), "subset": (1, 50_000)}


class Busy(RuntimeError):
    pass


@dataclass(frozen=True)
class TrainRequest:
    preset: str = "default"
    train: TrainConfig = TrainConfig(epochs=2, batch_size=128, lr=0.1, subset=2000)
    aug: AugmentConfig = AugmentConfig()
    eval_images: int = 1000  # test images evaluated after each epoch (the full set is slow on CPU)

    def validated(self) -> "TrainRequest":
        get_config(self.preset)
        validate_train_config(self.train)
        for name, (lo, hi) in APP_LIMITS.items():
            value = getattr(self.train, name)
            if value is not None and not lo <= value <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}] in the app, got {value}")
        validate(self.aug)
        if self.eval_images < 1:
            raise ValueError(f"eval_images must be positive, got {self.eval_images}")
        return self


@dataclass
class Snapshot:
    state: str = RUNNING
    message: str = "starting"
    device: str = ""
    data_note: str = ""
    epochs: list[dict] = field(default_factory=list)       # EpochEvent dicts
    steps: list[tuple[int, float]] = field(default_factory=list)  # (global step, loss)
    step: int = 0
    total_steps: int = 0
    eta_s: float | None = None
    weights: str | None = None                              # saved checkpoint, once finished
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state != RUNNING

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


class Job:
    def __init__(self, request: TrainRequest, out_dir: Path):
        self.request, self.out_dir = request, out_dir
        self.stop_event = threading.Event()
        self._cond = threading.Condition()
        self._snap, self._version = Snapshot(), 0
        self.thread: threading.Thread | None = None

    # -------------------------------------------------------------- observing
    def snapshot(self) -> Snapshot:
        with self._cond:
            return replace(self._snap, epochs=list(self._snap.epochs), steps=list(self._snap.steps))

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    def wait(self, seen_version: int, timeout: float = 1.0) -> int:
        """Block until the version moves past `seen_version` (or timeout); returns the version."""
        with self._cond:
            self._cond.wait_for(lambda: self._version != seen_version, timeout)
            return self._version

    def _update(self, **changes) -> None:
        with self._cond:
            for k, v in changes.items():
                setattr(self._snap, k, v)
            self._version += 1
            self._cond.notify_all()

    def stop(self) -> None:
        self.stop_event.set()
        self._update(message="stopping after the current step")

    # -------------------------------------------------------------- running
    def on_event(self, event: StepEvent | EpochEvent) -> None:
        with self._cond:
            s = self._snap
            if isinstance(event, StepEvent):
                s.steps.append((event.step, event.loss))
                s.step, s.total_steps, s.eta_s = event.step, event.total_steps, event.eta_s
                s.message = (f"epoch {event.epoch}, step {event.step}/{event.total_steps}, "
                             f"loss {event.loss:.3f}, {event.images_per_s:.0f} img/s")
            else:
                s.epochs.append(event.to_dict())
                s.eta_s = event.eta_s
                acc = f", test accuracy {event.test_acc:.1%}" if event.test_acc is not None else ""
                s.message = f"epoch {event.epoch}/{event.epochs} done{acc}"
            self._version += 1
            self._cond.notify_all()

    def run(self, load_data: Callable[[], TrainingData]) -> dict:
        """Train and save; returns the final snapshot changes (applied by the caller)."""
        req = self.request
        try:
            device = resolve_device(req.train.device)
            self._update(message="loading data")
            data = load_data()
            test = data.test.subset(req.eval_images, seed=0)
            self._update(data_note=data.note, message="building the model")
            trainer = Trainer(get_config(req.preset), req.train, req.aug, data.train, test, self.on_event,
                              owns_process=False)  # the app's threads and RNG are the app's
            steps_per_epoch = trainer.batches.batches_per_epoch
            self._update(total_steps=trainer.total_steps, message="training", device=_device_label(device))
            trainer.fit(self.stop_event)
            stopped = trainer.epoch < trainer.cfg.epochs
            last = trainer.history[-1] if trainer.history else {}
            acc = {"plain": last["test_acc"]} if last.get("test_acc") is not None else None
            card = model_card(trainer, data.train.source, req.preset, test=test, test_acc=acc,
                              source="cifar_s9 app", demo_only=data.demo_only, stopped_early=stopped,
                              steps_per_epoch=steps_per_epoch)
            weights = self.out_dir / "model.safetensors"
            save_weights(trainer.eval_model, weights, card)
            return dict(state=STOPPED if stopped else DONE, weights=str(weights), eta_s=0.0,
                        message=(f"stopped after {trainer.epoch} of {trainer.cfg.epochs} epochs"
                                 if stopped else f"finished {trainer.epoch} epochs") + f"; saved as run {self.out_dir.name}")
        except Exception as exc:  # reported to the user, and the slot is released all the same
            traceback.print_exc()
            return dict(state=FAILED, error=f"{type(exc).__name__}: {exc}", message=f"training failed: {exc}")


def _device_label(device) -> str:
    import torch
    if device.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'s' if n > 1 else ''})"


def check_output_dir(runs_dir: Path, protected: tuple[Path, ...] = (SHIPPED_WEIGHTS,)) -> Path:
    """`runs_dir`, resolved (symlinks and ".." included); ValueError if it is, or lies inside, a
    protected folder, so that no run from the app can overwrite the shipped weights."""
    resolved = Path(runs_dir).resolve()
    for folder in protected:
        folder = Path(folder).resolve()
        if resolved == folder or folder in resolved.parents:
            raise ValueError(f"training output {runs_dir} resolves to {resolved}, inside the protected "
                             f"folder {folder}; choose another runs folder")
    return resolved


class TrainingJobs:
    """The single training slot shared by every user of one app process."""

    def __init__(self, runs_dir: Path, load_data: Callable[[], TrainingData],
                 protected: tuple[Path, ...] = (SHIPPED_WEIGHTS,)):
        self.runs_dir, self.load_data = check_output_dir(runs_dir, protected), load_data
        self._slot = threading.Lock()
        self._guard = threading.Lock()
        self.current: Job | None = None

    @property
    def busy(self) -> bool:
        return self._slot.locked()

    def start(self, request: TrainRequest) -> Job:
        request = request.validated()  # invalid settings: ValueError before taking the slot
        if not self._slot.acquire(blocking=False):
            raise Busy("A training run is already in progress (one at a time for all users of this "
                       "app). Wait for it to finish, or stop it in the Train tab.")
        try:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            job = Job(request, self.runs_dir / f"{stamp}-{request.preset}")
            with self._guard:
                self.current = job
            job.thread = threading.Thread(target=self._run, args=(job,), name="cifar_s9-train", daemon=True)
            job.thread.start()
        except BaseException:
            self._slot.release()
            raise
        return job

    def _run(self, job: Job) -> None:
        final = dict(state=FAILED, error="interrupted", message="training was interrupted")
        try:
            final = job.run(self.load_data)
        finally:  # free the slot first, so whoever sees the final state can start again at once
            self._slot.release()
            job._update(**final)

    def stop(self) -> bool:
        """Ask the running job to stop; False when nothing is running."""
        with self._guard:
            job = self.current
        if job is None or job.snapshot().finished:
            return False
        job.stop()
        return True
