"""Train-tab runs in the app's one training slot (`slot.TrainingSlot`), observed through snapshots.

`TrainingJobs` is the slot, plus what a training run needs: `start` validates the settings
before anything starts and refuses a second job with `Busy` (across all visitors, experiments
included); the Trainer runs in the slot's thread, which frees the slot in a `finally` (on ZeroGPU
that thread trains it in GPU calls of a few epochs each: experiments/zerogpu.py). Observers
call `job.wait(version)` to block until something new happened, then read `job.snapshot()`.

Every run has an owner (the app passes the visitor's `session_hash`, and a reloaded page joins
the owners with the run's token): only an owner can stop it (`stop(owner)`) or ask for its
weights (`trained_weights(run_id, owner)`) or its bundle to take home (`bundle(run_id, owner)`:
the zip of `records.bundle`, built once in the run's folder), and a run that
ended before its first epoch saves nothing and can never be activated. Run folders are pruned
by age and total size (`cleanup.RUN_CAPS`) when a run starts; the shipped weights folder is
never a runs folder (`check_output_dir`).
"""
from __future__ import annotations

import datetime as dt
import re
import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..data.app_data import TrainingData
from ..data.augment import AugmentConfig, validate
from ..train.recipes import APP_TRAIN
from ..records.bundle import build_bundle
from ..records.card import model_card
from ..records.checkpoint import read_card, save_weights
from . import redact, texts
from .cleanup import RUN_CAPS, prune_folder
from ..model.net import get_config
from ..paths import WEIGHTS_DIR
from ..experiments.tracker import chain, final_metrics, owner_tag, track_trainer
from ..experiments import zerogpu
from ..train.chunks import TrainSpec
from ..train.trainer import EpochEvent, StepEvent, TrainConfig, validate_train_config
from ..errors import UserError
from .slot import (DONE, FAILED, LOCAL_SLOT, PUBLIC_SLOT, RUNNING, STOPPED, Busy, Job, JobSnapshot,  # noqa: F401
                   NotOwner, SlotPolicy, TrainingSlot)

SHIPPED_WEIGHTS = WEIGHTS_DIR  # the released checkpoints: no app run may write here
# The app's one training slot is shared by every user, so a run from the app is capped tighter than
# the trainer's own LIMITS (the CLI may train for 1000 epochs; a public app must not hold the slot for days).
APP_LIMITS = {"epochs": (1, 50), "batch_size": (1, 1024), "subset": (1, 50_000)}


TEST_IMAGES = 10_000  # CIFAR-10's test set: no run scores more than these after an epoch
RUN_NAME = re.compile(r"\d{8}-\d{6}-\d{6}-[a-z0-9_]+")  # <date>-<time>-<microseconds>-<preset>


@dataclass(frozen=True)
class TrainRequest:
    preset: str = "default"
    train: TrainConfig = APP_TRAIN
    aug: AugmentConfig = AugmentConfig()
    eval_images: int = 1000  # test images evaluated after each epoch (the full set is slow on CPU)

    def validated(self) -> "TrainRequest":
        get_config(self.preset)
        validate_train_config(self.train)
        for name, (lo, hi) in APP_LIMITS.items():
            value = getattr(self.train, name)
            if value is not None and not lo <= value <= hi:
                raise UserError(f"{name} must be in [{lo}, {hi}] in the app, got {value}")
        validate(self.aug)
        if self.eval_images < 1:
            raise UserError(f"eval_images must be positive, got {self.eval_images}")
        return self


@dataclass
class Snapshot(JobSnapshot):
    """A training run's snapshot: progress, curves, and its checkpoint once finished."""
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
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


class TrainJob(Job):
    kind, noun = "run", "training run"

    def __init__(self, request: TrainRequest, out_dir: Path, owner: str):
        super().__init__(owner, Snapshot())
        self.request, self.out_dir = request, out_dir

    @property
    def run_id(self) -> str:
        """The run's folder name: what the app shows and keeps in session state (never a path)."""
        return self.out_dir.name

    # -------------------------------------------------------------- running
    def on_event(self, event: StepEvent | EpochEvent) -> None:
        self.apply(lambda s: self._record(s, event))

    @staticmethod
    def _record(s: Snapshot, event: StepEvent | EpochEvent) -> None:
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

    def run(self, load_data: Callable[[], TrainingData],
            time_left: Callable[[], float | None] | None = None) -> dict:
        """Train and save; returns the final snapshot changes (applied by the caller). On ZeroGPU
        the trainer here is the CPU copy that GPU calls of a few epochs each bring up to date
        (experiments/zerogpu.py); `time_left()`: the seconds the slot still lends."""
        req = self.request
        try:
            self._update(message="loading data")
            data = load_data()
            test = data.test.subset(req.eval_images, seed=0)
            self._update(data_note=data.note, message="building the model")
            # owns_process=False: the app's threads and RNG are the app's
            training = zerogpu.SlotTraining(TrainSpec(get_config(req.preset), req.train, req.aug, data.train, test),
                                            self.on_event, owns_process=False)
            trainer = training.trainer
            weights = self.out_dir / "model.safetensors"
            logger = track_trainer(trainer, f"app-{req.preset}", "app", weights, preset=req.preset,
                                   demo_only=data.demo_only, owner=owner_tag(self.owner))  # runs/tracker
            trainer.callback = chain(self.on_event, logger)
            steps_per_epoch = trainer.batches.batches_per_epoch
            self._update(total_steps=trainer.total_steps, message="training", device=training.device,
                         data_note=texts.training_note(len(data.train), len(trainer.train_split),
                                                       req.train.subset, len(test), len(data.test),
                                                       data.demo_only))  # the images used, not those there
            fitted = training.fit(self.stop_event, time_left,
                                  note=lambda text: self._update(message=text, device=training.device))
            stopped = trainer.epoch < trainer.cfg.epochs
            if trainer.epoch == 0:  # nothing learned: no checkpoint to keep or to activate
                logger.finish(state="stopped")
                shutil.rmtree(self.out_dir, ignore_errors=True)
                return dict(state=STOPPED, weights=None, eta_s=0.0,
                            message="stopped before the first epoch ended; nothing was saved")
            last = trainer.history[-1] if trainer.history else {}
            acc = {"plain": last["eval_acc"]} if last.get("eval_acc") is not None else None
            card = model_card(trainer, data.train.source, req.preset, test=test, test_acc=acc,
                              source="cifar_s9 app", demo_only=data.demo_only, stopped_early=stopped,
                              steps_per_epoch=steps_per_epoch, device=fitted.device)
            save_weights(trainer.eval_model, weights, card)
            logger.finish(final_metrics(card), state=STOPPED if stopped else DONE)
            return dict(state=STOPPED if stopped else DONE, weights=str(weights), eta_s=0.0, device=fitted.device,
                        message=(f"{self.stop_reason or 'stopped'} after {trainer.epoch} of {trainer.cfg.epochs} epochs"
                                 if stopped else f"finished {trainer.epoch} epochs") + f"; saved as run {self.run_id}")
        except Exception as exc:  # reported to the user, and the slot is released all the same
            traceback.print_exc()
            return dict(state=FAILED, error=f"{type(exc).__name__}: {exc}", message=f"training failed: {exc}")


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


class TrainingJobs(TrainingSlot):
    """The app's one training slot (shared with the Experiments tab), and the Train tab's runs."""

    def __init__(self, runs_dir: Path, load_data: Callable[[], TrainingData],
                 protected: tuple[Path, ...] = (SHIPPED_WEIGHTS,), caps: dict = RUN_CAPS,
                 policy: SlotPolicy = PUBLIC_SLOT, clock: Callable[[], float] = time.monotonic):
        super().__init__(policy, clock)
        self.runs_dir, self.load_data = check_output_dir(runs_dir, protected), load_data
        self.caps = caps
        self._runs: dict[str, TrainJob] = {}  # run_id -> job, for the runs of this process
        self._runs_lock = threading.Lock()
        self._bundle_lock = threading.Lock()  # one bundle built at a time (a second waits, then reuses it)

    def start(self, request: TrainRequest, owner: str) -> TrainJob:
        """Start `request` for `owner` (the app passes `gr.Request.session_hash`)."""
        if not isinstance(owner, str) or not owner:
            raise UserError("a training run needs an owner (the visitor's session)")
        request = request.validated()  # invalid settings: ValueError before taking the slot
        if zerogpu.on_zerogpu():  # an epoch must fit in one GPU call: refused now, not after loading data
            zerogpu.check_fits(request.train.subset or APP_LIMITS["subset"][1], request.train.batch_size,
                               min(request.eval_images, TEST_IMAGES))
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        job = TrainJob(request, self.runs_dir / f"{stamp}-{request.preset}", owner)

        def register():  # once the slot is held: a refused start touches no folder
            self.prune()
            with self._runs_lock:
                self._runs[job.run_id] = job
        return self.run(job, lambda: job.run(self.load_data, self.hold_left_s), before=register)

    def trained_weights(self, run_id: str, owner: str) -> Path:
        """The checkpoint of run `run_id`, for its owner to activate in their own session: the run
        finished with at least one trained epoch and its weights and card are in place. ValueError
        (NotOwner for another session's run) otherwise; messages hold no path."""
        with self._runs_lock:
            job = self._runs.get(run_id) if isinstance(run_id, str) else None
        if job is None:
            raise UserError("no such training run in this app; train a model first")
        if not job.owned_by(owner):
            raise NotOwner("that training run belongs to another visitor")
        snap = job.snapshot()
        if not snap.finished:
            raise UserError("the run is still training; activate it when it has finished")
        weights = Path(snap.weights) if snap.weights else None
        if weights is None or not weights.is_file():
            raise UserError("that run saved no trained weights (it ended before its first epoch, "
                             "failed, or was cleaned up)")
        if not read_card(weights).get("epochs", 0) >= 1:
            raise UserError("that run trained for 0 epochs; there is nothing to activate")
        return weights

    def bundle(self, run_id: str, owner: str) -> Path:
        """The zip of run `run_id` to take home (weights, card, augmentation pipeline, config,
        evaluate.py), for its owner only: the same checks as `trained_weights` (a run of this
        process, owned by `owner`, finished with a trained epoch), so a name sent by a client
        (`../../etc/passwd`) is never a path. Built once, in the run's folder, server paths
        scrubbed; UserError (NotOwner) otherwise, with no path in the message."""
        weights = self.trained_weights(run_id, owner)
        folder = weights.parent.resolve()
        if folder.parent != self.runs_dir or not RUN_NAME.fullmatch(folder.name):
            raise UserError("that training run is not in this app's runs folder")
        out = folder / f"cifar_s9-run-{folder.name}.zip"
        with self._bundle_lock:
            if not out.is_file():
                build_bundle(weights, out, scrub=lambda text: redact.scrub(text, [self.runs_dir]),
                             name=folder.name)
        return out

    def prune(self) -> list[Path]:
        """Delete old run folders (age, then total size; `caps`), sparing the run in progress;
        only folders named like runs are touched."""
        holder = self.holder()
        keep = [holder.out_dir] if isinstance(holder, TrainJob) else []
        removed = prune_folder(self.runs_dir, self.caps["max_age_s"], self.caps["max_total_bytes"], keep,
                               match=lambda entry: entry.is_dir() and RUN_NAME.fullmatch(entry.name) is not None)
        with self._runs_lock:  # forget finished runs whose folder is gone
            for run_id in [r for r, job in self._runs.items() if job.snapshot().finished
                           and not job.out_dir.exists()]:
                del self._runs[run_id]
        return removed
