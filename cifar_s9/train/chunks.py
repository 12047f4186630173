"""Training in chunks of epochs, each from and to a picklable state: how a run crosses into a
process that lends a GPU for a few minutes at a time (ZeroGPU: experiments/zerogpu.py) and back.

`train_chunk(spec, state, epochs, seconds)` is a pure function of its arguments: it builds the
trainer from `spec`, puts it where `state` left off (the resume file's contents, `resume.state_of`,
as bytes), trains up to `epochs` more epochs and returns the new state with the chunk's events.
Nothing in or out is a lock, an event or a callback, so both cross a process boundary by pickling.
The batch order, augmentation, dropout and mixup draws depend only on (seed, epoch, batch), so a
run trained in chunks is the run trained in one go (tests/test_zerogpu.py checks the weights).
"""
from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..analysis.evaluate import predict_logits
from ..data.augment import AugmentConfig
from ..data.cifar import Split
from ..model.net import ModelConfig
from ..records.provenance import device_name
from .config import TrainConfig
from .events import Callback, EpochEvent, EvalSplit, StepEvent
from .resume import apply_state, state_of
from .trainer import Trainer

# What a chunk keeps back from the seconds it was lent: the GPU worker's start before the chunk
# runs, and the state's way back after it; a chunk stops early rather than be cut off
RESERVE_S = 30.0


@dataclass(frozen=True)
class TrainSpec:
    """Everything a `Trainer` is built from, picklable: the same spec builds the run in the
    app's process and, call after call, in a GPU worker."""
    model_config: ModelConfig
    train_config: TrainConfig
    aug_config: AugmentConfig
    train_split: Split
    eval_data: Split | None = None   # scored after every epoch (the curves)
    eval_split: EvalSplit = "test"
    score: Split | None = None       # scored once, image by image, when the run ends (experiments)

    def build(self, callback: Callback | None = None, device: torch.device | None = None,
              owns_process: bool = False) -> Trainer:
        return Trainer(self.model_config, self.train_config, self.aug_config, self.train_split,
                       self.eval_data, callback, owns_process=owns_process, eval_split=self.eval_split,
                       device=device)

    def for_worker(self) -> "TrainSpec":
        """What crosses into a GPU worker: the run's own training images only (the subset taken
        here, with the same seed, so the trainer there trains on exactly these), and no
        DataLoader processes: ZeroGPU's worker is a daemon process, which may not start children."""
        cfg = self.train_config
        return replace(self, train_split=self.train_split.subset(cfg.subset, cfg.seed),
                       train_config=replace(cfg, subset=None, workers=0))


@dataclass(frozen=True)
class Chunk:
    """What a chunk returns: the state to continue from, and what happened on the way."""
    state: bytes
    events: tuple[StepEvent | EpochEvent, ...]
    device: str                       # where it trained, in words
    correct: np.ndarray | None = None  # right on each `spec.score` image, once the run has ended


def state_bytes(trainer: Trainer) -> bytes:
    """The trainer's resume state as bytes (tensors saved as CPU tensors wherever they live)."""
    buffer = io.BytesIO()
    torch.save(state_of(trainer), buffer)
    return buffer.getvalue()


def load_state(data: bytes) -> dict:
    """Bytes from `state_bytes`, as tensors on the CPU; weights only: loading runs no code."""
    buffer = io.BytesIO(data)
    return torch.load(buffer, map_location="cpu", weights_only=True)


def correctness(model, split: Split, device) -> np.ndarray:
    """(n,) bool: whether `model` gets each image of `split` right."""
    logits = predict_logits(model, split.images, device)
    return logits.argmax(1).numpy() == split.labels


def train_chunk(spec: TrainSpec, state: bytes, epochs: int, seconds: float | None = None) -> Chunk:
    """Up to `epochs` more epochs of the run `spec` from `state`. With `seconds` (what the GPU
    was lent for), it stops after an epoch when another as slow as the slowest so far would not
    fit before `RESERVE_S` of them are left: the caller's estimate was too short, and the next
    call goes on from here instead of being cut off."""
    start = time.monotonic()
    events: list[StepEvent | EpochEvent] = []
    trainer = spec.build()
    apply_state(trainer, load_state(state))
    last = min(trainer.epochs, trainer.epoch + epochs)
    enough = threading.Event()  # made here: no event crosses the process boundary
    slowest = 0.0

    def collect(event) -> None:
        nonlocal slowest
        events.append(event)
        if isinstance(event, EpochEvent):
            slowest = max(slowest, event.epoch_time_s)
            out_of_time = seconds is not None and time.monotonic() - start + slowest > seconds - RESERVE_S
            if event.epoch >= last or out_of_time:
                enough.set()  # the trainer stops at its next step

    trainer.callback = collect
    trainer.fit(enough)
    correct = None
    if spec.score is not None and trainer.epoch >= trainer.epochs:
        correct = correctness(trainer.eval_model, spec.score, trainer.device)
    return Chunk(state_bytes(trainer), tuple(events), device_name(trainer.device), correct)


def planned_epochs(spec: TrainSpec, owns_process: bool = False) -> int:
    """The epochs a time-budgeted `spec` plans after timing its first steps where this runs
    (the trainer's calibration: about 25 steps, nothing is trained)."""
    return spec.build(owns_process=owns_process).epochs
