"""Training in the app's slot, on Hugging Face ZeroGPU one GPU call at a time, elsewhere in one go.

Train-tab runs (app/jobs.py) and every arm of an experiment (runner.py) train through
`SlotTraining`. Off ZeroGPU (`SPACES_ZERO_GPU` unset; the real `spaces` package then returns a
decorated function unchanged) it is today's single in-process `Trainer.fit`: live progress, and
Stop takes effect after the current step.

On ZeroGPU a `@spaces.GPU` function runs in a forked GPU worker process: its arguments and its
result are pickled across, so no lock, event or callback can go with it, and each call may ask for
at most `MAX_CALL_S` (ZeroGPU refuses longer requests: "5 minutes is the maximum time that can be
requested at once"). So the slot's thread, in the app's process, where the slot's lock, the
watchdog, the heartbeat and the stop event live, trains the run in chunks of epochs:

- it keeps a copy of the run on the CPU (the trainer that the card and the saved weights come
  from) and sends its state (train/chunks.py: weights, EMA, optimizer, schedule, epoch, history,
  as bytes) to `train_chunk` on the GPU, which trains as many epochs as `plan_call` says fit in
  the seconds it asks for (epochs x a generous per-epoch estimate, `GpuEstimate`, plus start-up)
  and returns the new state and the chunk's step and epoch events;
- between calls it publishes those events (the curves and the progress line move a chunk at a
  time), and checks the stop event, which Stop, the owner-gone rule and the slot's hold limit set:
  a run stops at the end of the current call (ZeroGPU cannot interrupt one), and no call asks for
  more than the slot has left to give.

A minutes budget (experiments) is turned into epochs by timing steps in one short GPU call of its
own (`planned_epochs`). The calls are made from the slot's thread, outside the visitor's request,
so ZeroGPU sees no visitor token with them and counts them as the Space's own use.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import spaces
import torch

from ..errors import UserError
from ..records.provenance import device_name
from ..train import chunks
from ..train.chunks import Chunk, TrainSpec
from ..train.events import EpochEvent
from ..train.trainer import Trainer

MAX_CALL_S = 300   # ZeroGPU's most per call; requests of 900 s and 1200 s are refused
PLAN_CALL_S = 90   # timing a budget's first steps: start-up and about 25 steps
SLOWER_THAN_MEASURED = 1.5  # a later call allows each epoch this much more than the slowest seen


@dataclass(frozen=True)
class GpuEstimate:
    """How long a ZeroGPU call needs, on the generous side: a call that runs over what it asked
    for is cut off (and one that asks for much more waits longer in ZeroGPU's queue). The
    augmentation runs in the GPU worker's one process, so images per second are the CPU's."""
    overhead_s: float = 60.0             # the worker's start, moving the data, building the trainer
    train_images_per_s: float = 1500.0   # augmented, trained
    eval_images_per_s: float = 10_000.0  # scored
    step_s: float = 0.01                 # per optimizer step, however small the batch

    def epoch_s(self, images: int, batch_size: int, evaluated: int) -> float:
        """One epoch on `images` in batches of `batch_size`, then scoring `evaluated` images."""
        return (images / self.train_images_per_s + images // batch_size * self.step_s
                + evaluated / self.eval_images_per_s)

    def spec_epoch_s(self, spec: TrainSpec) -> float:
        """One epoch of the worker's `spec` (its subset taken)."""
        evaluated = len(spec.eval_data) if spec.eval_data is not None else 0
        return self.epoch_s(len(spec.train_split), spec.train_config.batch_size, evaluated)

    def fixed_s(self, spec: TrainSpec) -> float:
        """A call's start-up, and scoring `spec.score` image by image after the run's last epoch."""
        return self.overhead_s + (len(spec.score) / self.eval_images_per_s if spec.score is not None else 0.0)


ESTIMATE = GpuEstimate()


def on_zerogpu() -> bool:
    from spaces.config import Config

    return bool(Config.zero_gpu)


def check_fits(images: int, batch_size: int, evaluated: int, estimate: GpuEstimate | None = None) -> None:
    """Before a run starts on ZeroGPU: UserError when one epoch of it cannot fit in one call."""
    estimate = estimate or ESTIMATE
    _refuse_over_max(estimate.overhead_s + estimate.epoch_s(images, batch_size, evaluated))


def _refuse_over_max(one_epoch_call_s: float) -> None:
    if one_epoch_call_s > MAX_CALL_S:
        raise UserError(f"one epoch of this run needs about {one_epoch_call_s:.0f} s of GPU, more than the "
                        f"{MAX_CALL_S} s ZeroGPU lends at once; train on fewer images or with a larger batch")


def plan_call(spec: TrainSpec, epochs_left: int, slowest_epoch_s: float = 0.0,
              time_left_s: float | None = None, estimate: GpuEstimate | None = None) -> tuple[int, int]:
    """(epochs, seconds) for the next GPU call of the worker's `spec`: as many epochs as fit in
    `MAX_CALL_S` (and in the slot's `time_left_s`, if given; one at least) at the estimate, or at
    the slowest epoch measured so far with a margin. UserError when not even one epoch fits."""
    estimate = estimate or ESTIMATE
    per_epoch = max(estimate.spec_epoch_s(spec), SLOWER_THAN_MEASURED * slowest_epoch_s)
    fixed = estimate.fixed_s(spec)
    _refuse_over_max(fixed + per_epoch)
    budget = MAX_CALL_S if time_left_s is None else min(MAX_CALL_S, time_left_s)
    epochs = max(1, min(epochs_left, math.floor((budget - fixed) / per_epoch)))
    return epochs, min(MAX_CALL_S, math.ceil(fixed + epochs * per_epoch))


# ---------------------------------------------------------------- what runs on the GPU

def _asked(*args, seconds: int, **kwargs) -> int:
    """The duration ZeroGPU is asked for: the call's own `seconds`, never over the maximum."""
    return min(MAX_CALL_S, int(seconds))


def _train_chunk(spec: TrainSpec, state: bytes, epochs: int, *, seconds: int) -> Chunk:
    return chunks.train_chunk(spec, state, epochs, seconds)


def _planned_epochs(spec: TrainSpec, *, seconds: int) -> int:
    return chunks.planned_epochs(spec)


class GpuTasks:
    """The package's only `spaces.GPU` functions, decorated once, at import, as ZeroGPU requires.
    `gpu` is `spaces.GPU`; the tests pass a fake that forks and pickles like ZeroGPU."""

    def __init__(self, gpu=spaces.GPU):
        self.train_chunk = gpu(duration=_asked)(_train_chunk)
        self.planned_epochs = gpu(duration=_asked)(_planned_epochs)


ON_GPU = GpuTasks()


# ---------------------------------------------------------------- the slot's side

@dataclass(frozen=True)
class Fitted:
    device: str                        # where it trained, in words
    correct: np.ndarray | None = None  # right on each `spec.score` image (None without a score)
    calls: tuple[int, ...] = ()        # the seconds asked of ZeroGPU, call by call (none off it)


class SlotTraining:
    """One run in the slot: `trainer` is built at once (the job reads its plan and attaches its
    logger as `trainer.callback`); `fit` trains it in this process, or in ZeroGPU calls."""

    def __init__(self, spec: TrainSpec, callback=None, owns_process: bool = False):
        self.spec, self.remote = spec, on_zerogpu()
        if self.remote and spec.train_config.time_budget_s:
            raise ValueError("a time budget is planned per call on ZeroGPU: plan its epochs first "
                             "(planned_epochs) and train those")
        # on ZeroGPU the app's process has no GPU of its own (torch there only pretends to)
        self.trainer: Trainer = spec.build(callback, torch.device("cpu") if self.remote else None,
                                           owns_process)
        self.device = "ZeroGPU" if self.remote else device_name(self.trainer.device)

    def fit(self, stop: threading.Event, time_left: Callable[[], float | None] | None = None,
            note: Callable[[str], None] | None = None) -> Fitted:
        """Train to the planned end or until `stop`. `time_left()`: the seconds the slot still
        lends (None: no limit); `note(text)`: what is happening, before each GPU call."""
        if not self.remote:
            self.trainer.fit(stop)
            return Fitted(self.device, self._score())
        return self._fit_in_calls(stop, time_left or (lambda: None), note or (lambda text: None))

    def _fit_in_calls(self, stop, time_left, note) -> Fitted:
        trainer, spec = self.trainer, self.spec.for_worker()
        state = chunks.state_bytes(trainer)  # epoch 0 too: the run's initial weights are this copy's
        asked, slowest, correct = [], 0.0, None
        while trainer.epoch < trainer.epochs and not stop.is_set():
            epochs, seconds = plan_call(spec, trainer.epochs - trainer.epoch, slowest, time_left())
            first, last = trainer.epoch + 1, trainer.epoch + epochs
            note(f"training epoch{'s' if epochs > 1 else ''} {first}{f'-{last}' if last > first else ''} "
                 f"of {trainer.epochs} on a ZeroGPU GPU (call {len(asked) + 1}, up to {seconds} s)")
            asked.append(seconds)
            chunk = ON_GPU.train_chunk(spec, state, epochs, seconds=seconds)
            state, self.device, correct = chunk.state, chunk.device, chunk.correct
            chunks.apply_state(trainer, chunks.load_state(state))
            slowest = max([slowest, *(e.epoch_time_s for e in chunk.events if isinstance(e, EpochEvent))])
            for event in chunk.events:
                trainer.callback(event)
        if correct is None:  # stopped before the end: score this process's copy on the CPU
            correct = self._score()
        return Fitted(self.device, correct, tuple(asked))

    def _score(self) -> np.ndarray | None:
        if self.spec.score is None:
            return None
        return chunks.correctness(self.trainer.eval_model, self.spec.score, self.trainer.device)


def planned_epochs(spec: TrainSpec, owns_process: bool = False) -> int:
    """The epochs a time-budgeted `spec` fits in its budget, timed where it will train: here,
    or in a short ZeroGPU call."""
    if on_zerogpu():
        return ON_GPU.planned_epochs(spec.for_worker(), seconds=PLAN_CALL_S)
    return chunks.planned_epochs(spec, owns_process)
