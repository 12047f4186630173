"""The trainer: OneCycleLR with SGD-Nesterov or AdamW, label smoothing, mixup, EMA, distillation
from teacher networks, fine-tuning from saved weights, resume.

Progress goes out as `StepEvent`s and `EpochEvent`s to one callback, so the CLI can draw a
tqdm bar and the app can stream curves. `stop` (a threading.Event) ends a run cleanly after the
current step. Every epoch can be checkpointed; `Trainer.resume` continues bit-for-bit on CPU
because the batch order, augmentation and dropout draws depend only on (seed, epoch, batch).

A time budget plans the run in steps and re-plans after every epoch from the measured times
(`clock`, injectable for tests), on a one-cycle schedule whose length can change without a
jump in the learning rate (schedule.py); the last epoch of a budgeted run may be partial.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from ..data.augment import AugmentConfig, validate
from ..records.checkpoint import load_resume, load_weights, save_resume
from ..data.cifar import Split
from .distill import Teacher
from ..analysis.evaluate import predict_logits
from ..teacher.bank import LogitBank
from .loader import AugmentedBatches, BankBatches, batch_stream
from .losses import distillation_loss, soft_cross_entropy
from ..model.net import ModelConfig, Net
from .precision import use_bf16
from .schedule import ReplannableOneCycle
from .whiten import first_conv, whiten_conv

WHITEN_IMAGES = 2000  # images whose patches set the whitening init: ~1.8M patches, a second of CPU


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 256
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.2                  # OneCycle peak learning rate
    weight_decay: float = 5e-4
    momentum: float = 0.9            # SGD momentum (Nesterov); AdamW's beta1
    pct_start: float = 0.25          # fraction of steps spent warming up
    final_div_factor: float = 100.0  # the last lr is lr / 10 / final_div_factor (OneCycleLR's name)
    cycle_momentum: bool = True      # OneCycle's momentum (SGD) or beta1 (AdamW) cycle; off: fixed
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.0         # 0 disables mixup
    # ramped mixup (airbench-style long runs; replaces mixup_alpha when > 0): the partner image's
    # weight is drawn from U(0, m), m rising linearly from 0 to mixup_max over mixup_ramp_epochs
    mixup_max: float = 0.0
    mixup_ramp_epochs: int = 0
    ema_decay: float = 0.0           # 0 disables the weight average used for evaluation/export
    seed: int = 0
    subset: int | None = None        # train on this many images (quick runs)
    val_per_class: int = 0           # hold back this many training images per class to validate on (0: none)
    val_seed: int = 0                # which ones (data.ValidationSpec)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 2                 # CPU threads; the lab machines have 2 cores
    workers: int | None = None       # augmentation processes; None: 0 on CPU, up to 12 on CUDA
    eval_every: int = 1              # epochs between test evaluations
    log_every: int = 10              # steps between StepEvents
    time_budget_s: float | None = None  # if set, pick the epoch count that fits this budget
    init_weights: str | None = None  # start from these weights (.safetensors) instead of random
    teachers: tuple[str, ...] = ()   # distil from these networks' averaged predictions
    logit_bank: str | None = None    # ...or from their stored answers for seeded views (cifar_s9.teacher.bank)
    distill_alpha: float = 0.9       # weight of the teacher term when there are teachers
    distill_temperature: float = 4.0
    whiten_init: bool = False        # first conv starts as patch-whitening filters (whiten.py)
    # "auto": bf16 autocast on CUDA, and on a CPU with native bf16 (avx512_bf16 or AMX) where
    # CPU_BF16_BY_DEFAULT says it was measured to hold accuracy; "fp32"/"bf16" force one
    precision: Literal["auto", "fp32", "bf16"] = "auto"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        if "teachers" in kwargs:  # JSON and older checkpoints give a list
            kwargs["teachers"] = tuple(kwargs["teachers"] or ())
        return cls(**kwargs)


LIMITS = {"epochs": (1, 1000), "batch_size": (1, 4096), "lr": (1e-6, 10.0),
          "weight_decay": (0.0, 1.0), "pct_start": (0.01, 0.99), "label_smoothing": (0.0, 0.5),
          "mixup_alpha": (0.0, 10.0), "mixup_max": (0.0, 0.5), "mixup_ramp_epochs": (0, 1000),
          "final_div_factor": (0.01, 1e6), "ema_decay": (0.0, 0.99999), "momentum": (0.0, 0.999),
          "threads": (1, 256), "val_per_class": (0, 10_000), "distill_alpha": (0.0, 1.0), "distill_temperature": (0.1, 100.0)}


class InvalidTrainConfig(ValueError):
    pass


def validate_train_config(cfg: TrainConfig) -> TrainConfig:
    problems = []
    for name, (lo, hi) in LIMITS.items():
        value = getattr(cfg, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not lo <= value <= hi:
            problems.append(f"{name} must be in [{lo}, {hi}], got {value}")
    if cfg.precision not in ("auto", "fp32", "bf16"):
        problems.append(f"precision must be 'auto', 'fp32' or 'bf16', got {cfg.precision!r}")
    if cfg.optimizer not in ("sgd", "adamw"):
        problems.append(f"optimizer must be 'sgd' or 'adamw', got {cfg.optimizer!r}")
    if cfg.subset is not None and cfg.subset < 1:
        problems.append(f"subset must be a positive number of images, got {cfg.subset}")
    elif cfg.subset is not None and isinstance(cfg.batch_size, int) and cfg.batch_size > cfg.subset:
        problems.append(f"batch_size must be at most the {cfg.subset} training images, got {cfg.batch_size}")
    for path in (*cfg.teachers, *([cfg.init_weights] if cfg.init_weights else [])):
        if not Path(path).is_file():
            problems.append(f"no weights file at {path}")
    if cfg.logit_bank is not None and not (Path(cfg.logit_bank) / "bank.json").is_file():
        problems.append(f"no logit bank (bank.json) in {cfg.logit_bank}")
    if cfg.logit_bank is not None and cfg.teachers:
        problems.append("distil from teachers or from a logit bank, not both")
    if problems:
        raise InvalidTrainConfig("; ".join(problems))
    return cfg


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
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    test_loss: float | None
    test_acc: float | None
    lr: float
    images_per_s: float
    epoch_time_s: float
    eta_s: float

    def to_dict(self) -> dict:
        return asdict(self)


Callback = Callable[[StepEvent | EpochEvent], None]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but no CUDA GPU is available")
    return torch.device(name)


def ema_with_warmup(decay: float):
    """EMA whose decay ramps up as (1 + n) / (10 + n): early averages forget the random init."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        n = float(num_averaged)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], weight)
        for a, c in zip(averaged, current):
            if not a.is_floating_point():
                a.copy_(c)  # BatchNorm's num_batches_tracked

    return update


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


RECENT_EPOCHS = 3  # the step time is the median over this many latest epochs


def mix_batch(x: torch.Tensor, targets: torch.Tensor, y: torch.Tensor, lam: float,
              perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixup of a batch with its permutation: images, soft targets (labels, or a teacher's stored
    probabilities: the same lambda), and the label that dominates each mixed image (training
    accuracy counts that one, else a lam < 0.5 draw scores ~0)."""
    mixed_x = lam * x + (1 - lam) * x[perm]
    mixed_targets = lam * targets + (1 - lam) * targets[perm]
    return mixed_x, mixed_targets, (y if lam >= 0.5 else y[perm])


class Trainer:
    def __init__(self, model_config: ModelConfig, train_config: TrainConfig, aug_config: AugmentConfig,
                 train_split: Split, test_split: Split | None = None, callback: Callback | None = None,
                 owns_process: bool = True, clock: Callable[[], float] = time.perf_counter):
        """`owns_process=False` (a trainer inside a server, e.g. the app's training thread): leave
        the process-wide torch state to the caller: no `set_num_threads`, and the seeding for
        init and dropout happens on a forked RNG that is restored afterwards. `clock` times the
        budget (tests pass a fake one)."""
        self.model_config, self.aug_config = model_config, validate(aug_config)
        self.cfg = validate_train_config(train_config)
        self.device = resolve_device(self.cfg.device)
        self.bf16 = use_bf16(self.device, self.cfg.precision)
        self.owns_process = owns_process
        if self.device.type == "cpu" and owns_process:
            torch.set_num_threads(self.cfg.threads)
        self.train_split = train_split.subset(self.cfg.subset, self.cfg.seed)
        self.test_split = test_split
        self.callback = callback or (lambda event: None)
        self.clock = clock  # every duration the trainer measures or plans with; tests pass a fake
        if self.cfg.logit_bank:  # the stored views are the augmentation: the teacher saw those pixels
            bank = LogitBank.load(Path(self.cfg.logit_bank), expected_images=self.train_split.images)
            self.batches = BankBatches(self.train_split, bank, self.cfg.batch_size, self.cfg.seed)
        else:
            self.batches = AugmentedBatches(self.train_split, self.aug_config, self.cfg.batch_size,
                                            self.cfg.seed)
        with self._seeding_scope():
            torch.manual_seed(self.cfg.seed)
            self.model = Net(model_config).to(self.device, memory_format=torch.channels_last)
        if self.cfg.init_weights:
            start, _ = load_weights(Path(self.cfg.init_weights), expected=model_config)
            self.model.load_state_dict(start.state_dict())
        elif self.cfg.whiten_init:
            sample = np.random.default_rng(self.cfg.seed).permutation(len(self.train_split))[:WHITEN_IMAGES]
            whiten_conv(first_conv(self.model), self.train_split.images[np.sort(sample)])
        self.teacher = Teacher(self.cfg.teachers, self.device) if self.cfg.teachers else None
        # the budget counts from here: calibration and set-up spend it too
        self._budget_start = self.clock() if self.cfg.time_budget_s else None
        self._eval_s, self._step_s = 0.0, []  # planning estimates: final eval, s/step per epoch
        self._plan_made_at, self._evals_since_plan = 0.0, 0.0
        self.optimizer = self._make_optimizer()
        if self.cfg.time_budget_s:
            self.scheduler = self._plan_budget()
        else:
            self.scheduler = self._make_scheduler(steps_done=0)
        self.ema = (AveragedModel(self.model, multi_avg_fn=ema_with_warmup(self.cfg.ema_decay),
                                  use_buffers=True) if self.cfg.ema_decay else None)
        self.epoch, self.history, self.wall_time_s = 0, [], 0.0

    # ------------------------------------------------------------------ set-up helpers
    @property
    def workers(self) -> int:
        if self.cfg.workers is not None:
            return self.cfg.workers
        return 0 if self.device.type == "cpu" else max(0, min(12, (os.cpu_count() or 2) - 2))

    @property
    def total_steps(self) -> int:
        if isinstance(getattr(self, "scheduler", None), ReplannableOneCycle):
            return self.scheduler.total_steps  # a budgeted run plans steps; its last epoch may be partial
        return self.cfg.epochs * self.batches.batches_per_epoch

    @property
    def steps_done(self) -> int:
        return self.scheduler.last_epoch

    def _make_optimizer(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():  # no weight decay on BatchNorm and biases
            (no_decay if p.ndim <= 1 else decay).append(p)
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if self.cfg.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=self.cfg.lr, betas=(self.cfg.momentum, 0.999))
        return torch.optim.SGD(groups, lr=self.cfg.lr, momentum=self.cfg.momentum, nesterov=True)

    def _make_scheduler(self, steps_done: int) -> torch.optim.lr_scheduler.OneCycleLR:
        """The one-cycle schedule for cfg.epochs, moved on to `steps_done` (a resume with new epochs)."""
        pct_start = self.cfg.pct_start
        if pct_start * self.total_steps == 1.0:  # OneCycleLR divides by zero on a 1-step warm-up
            pct_start = 1.5 / self.total_steps
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=self.cfg.lr, total_steps=self.total_steps,
            pct_start=pct_start, div_factor=10.0, final_div_factor=self.cfg.final_div_factor,
            cycle_momentum=self.cfg.cycle_momentum)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()"
            for _ in range(steps_done):
                scheduler.step()
        return scheduler

    @property
    def eval_model(self) -> Net:
        return self.ema.module if self.ema is not None else self.model

    def _plan_budget(self) -> ReplannableOneCycle:
        """Time a few real steps on a throwaway copy and plan the steps that fit in the budget:
        a first guess, which `_replan` corrects after every epoch from the epochs' own times."""
        probe = copy.deepcopy(self.model)
        opt = torch.optim.SGD(probe.parameters(), lr=1e-3)
        warmup, timed = 3 + 2 * self.workers, 20
        epochs_needed = 1 + (warmup + timed) // self.batches.batches_per_epoch
        stream = iter(batch_stream(self.batches, 0, epochs_needed, self.workers, self.device.type == "cuda"))
        step_times = []
        for i in range(warmup + timed):
            self._sync()
            start = self.clock()
            x, y, *bank_logits = next(stream)
            self._step(probe, opt, x, y, mixup=False, bank_logits=bank_logits)
            self._sync()
            if i >= warmup:
                step_times.append(self.clock() - start)
        self._eval_s = self._time_eval(probe)
        # the median ignores one-off stalls (page faults, a background process)
        steps = self._steps_for_budget(float(np.median(step_times)), steps_done=0)
        self._plan_made_at, self._evals_since_plan = self.clock(), 0.0
        return self._replannable(steps)

    def _replannable(self, steps: int) -> ReplannableOneCycle:
        return ReplannableOneCycle(self.optimizer, self.cfg.lr, steps, self.cfg.pct_start,
                                   final_div_factor=self.cfg.final_div_factor,
                                   cycle_momentum=self.cfg.cycle_momentum)

    def _steps_for_budget(self, step_s: float, steps_done: int, pending_s: float = 0.0) -> int:
        nb = self.batches.batches_per_epoch
        spent = self.clock() - self._budget_start + pending_s
        steps = steps_within_budget(self.cfg.time_budget_s, spent,
                                    steps_done, step_s, self._eval_s, nb, self.cfg.eval_every,
                                    LIMITS["epochs"][1] * nb)
        self.cfg = replace(self.cfg, epochs=math.ceil(steps / nb))
        return steps

    def _replan(self, steps_this_epoch: int) -> None:
        """After every epoch, fit the rest of the run to what is left of the budget.

        The step time is the median over the latest epochs of their whole wall time (data,
        EMA, checkpoint and callbacks included, evaluations excluded) per step: the first
        epoch is often slower (allocator, caches, another process), and a median over recent
        epochs follows the machine as it is now. The schedule changes pace, not shape
        (schedule.py), so re-planning late in the annealing is safe."""
        now = self.clock()
        self._step_s.append((now - self._plan_made_at - self._evals_since_plan) / steps_this_epoch)
        step_s = float(np.median(self._step_s[-RECENT_EPOCHS:]))
        # this epoch's test evaluation, if it has one, comes right after the plan: count it as spent
        pending = self._eval_s if self.test_split is not None and self.epoch % self.cfg.eval_every == 0 else 0.0
        self.scheduler.replan(self._steps_for_budget(step_s, self.steps_done, pending))
        self._plan_made_at, self._evals_since_plan = now, 0.0

    def _time_eval(self, model: Net) -> float:
        if self.test_split is None:
            return 0.0
        n = min(1000, len(self.test_split))
        predict_logits(model, self.test_split.images[:n], self.device)  # first call pays set-up costs
        self._sync()
        start = self.clock()
        predict_logits(model, self.test_split.images[:n], self.device)
        return (self.clock() - start) * len(self.test_split) / n

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    # ------------------------------------------------------------------ training
    def _step(self, model, optimizer, x, y, mixup: bool,
              bank_logits: list[torch.Tensor] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        stored_probs = (F.softmax(bank_logits[0].to(self.device) / self.cfg.distill_temperature, dim=1)
                        if bank_logits else None)
        y = y.to(self.device, non_blocking=True)
        num_classes = self.model_config.num_classes
        targets = F.one_hot(y, num_classes).float()
        if self.cfg.label_smoothing:
            targets = targets * (1 - self.cfg.label_smoothing) + self.cfg.label_smoothing / num_classes
        labels = y
        lam = self._mixup_lambda() if mixup else None
        if lam is not None:
            perm = torch.randperm(x.shape[0], device=self.device)
            if stored_probs is not None:
                stored_probs = lam * stored_probs + (1 - lam) * stored_probs[perm]
            x, targets, labels = mix_batch(x, targets, y, lam, perm)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = model(x)
            teacher_probs = (self.teacher.soft_targets(x, self.cfg.distill_temperature)
                             if self.teacher is not None else stored_probs)
        if teacher_probs is None:
            loss = soft_cross_entropy(logits.float(), targets)
        else:
            loss = distillation_loss(logits.float(), targets, teacher_probs,
                                     self.cfg.distill_alpha, self.cfg.distill_temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        correct = (logits.argmax(1) == labels).sum()
        return loss.detach(), correct

    def _mixup_lambda(self) -> float | None:
        """The weight of each image against its partner for this batch, or None for no mixup."""
        # the generator is seeded from torch's only when mixup is on: runs without it keep the
        # torch random stream (dropout draws, permutations) they always had
        draw = lambda: np.random.default_rng(int(torch.randint(0, 2**31, ())))  # noqa: E731
        if self.cfg.mixup_max > 0:
            ramp = self.cfg.mixup_ramp_epochs
            m = self.cfg.mixup_max * (min(1.0, self.epoch / ramp) if ramp else 1.0)
            return 1.0 - float(draw().uniform(0.0, m)) if m > 0 else None
        if self.cfg.mixup_alpha > 0:
            return float(draw().beta(self.cfg.mixup_alpha, self.cfg.mixup_alpha))
        return None

    def fit(self, stop: threading.Event | None = None, checkpoint: Path | None = None) -> list[dict]:
        """Train from the current epoch to cfg.epochs; returns the per-epoch history."""
        stop = stop or threading.Event()
        self.model.train()
        with self._seeding_scope():
            while self.epoch < self.cfg.epochs and not stop.is_set():
                self._train_stream(stop, checkpoint)  # returns early when a budget re-plan moves the end
        return self.history

    def _seeding_scope(self):
        """Where the trainer may reseed torch: the process itself, or a forked copy of its RNG."""
        if self.owns_process:
            return contextlib.nullcontext()
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    def _train_stream(self, stop: threading.Event, checkpoint: Path | None) -> None:
        nb = self.batches.batches_per_epoch
        planned_steps = self.total_steps
        stream = batch_stream(self.batches, self.epoch, self.cfg.epochs, self.workers,
                              self.device.type == "cuda")
        run_start = self.clock()
        steps_done_at_start = self.epoch * nb
        loss_sum, correct_sum, seen, epoch_steps = torch.zeros((), device=self.device), 0, 0, 0
        window_loss, window_steps = torch.zeros((), device=self.device), 0
        epoch_start = self.clock()
        for i, (x, y, *bank_logits) in enumerate(stream):
            if stop.is_set():
                break
            if i % nb == 0:
                torch.manual_seed(self.cfg.seed * 7919 + self.epoch)  # dropout/mixup draws per epoch
            loss, correct = self._step(self.model, self.optimizer, x, y, mixup=True,
                                       bank_logits=bank_logits)
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            loss_sum += loss
            window_loss += loss
            correct_sum += correct
            seen += len(y)
            window_steps += 1
            epoch_steps += 1
            step = steps_done_at_start + i + 1
            if step % self.cfg.log_every == 0:
                self._emit_step(step, window_loss.item() / window_steps, run_start, i + 1)
                window_loss.zero_()
                window_steps = 0
            if (i + 1) % nb == 0 or step == planned_steps:  # a budget's last epoch may be partial
                self._end_epoch(loss_sum.item() / epoch_steps, int(correct_sum) / seen, epoch_start,
                                seen, checkpoint, epoch_steps)
                loss_sum.zero_()
                correct_sum, seen, epoch_steps = 0, 0, 0
                epoch_start = self.clock()
                if self.total_steps != planned_steps or step == planned_steps:
                    return

    def _emit_step(self, step: int, loss: float, run_start: float, steps_this_run: int) -> None:
        elapsed = self.clock() - run_start
        per_step = elapsed / steps_this_run
        self.callback(StepEvent(self.epoch + 1, step, self.total_steps, loss,
                                self.scheduler.get_last_lr()[0],
                                self.cfg.batch_size / per_step if per_step > 0 else 0.0,
                                per_step * (self.total_steps - step)))

    def _end_epoch(self, train_loss: float, train_acc: float, epoch_start: float, seen: int,
                   checkpoint: Path | None, epoch_steps: int) -> None:
        train_time = self.clock() - epoch_start
        self.epoch += 1
        if self._budget_start is not None and self.steps_done < self.total_steps:
            self._replan(epoch_steps)  # the run goes on: fit what is left to the budget
        test_loss = test_acc = None
        if self.test_split is not None and (self.epoch % self.cfg.eval_every == 0
                                            or self.epoch == self.cfg.epochs):
            eval_start = self.clock()
            logits = predict_logits(self.eval_model, self.test_split.images, self.device)
            labels = torch.from_numpy(self.test_split.labels)
            test_loss = F.cross_entropy(logits, labels).item()
            test_acc = (logits.argmax(1) == labels).float().mean().item()
            self._eval_s = self.clock() - eval_start  # a measured eval beats the calibration's
            self._evals_since_plan += self._eval_s
        total_time = self.clock() - epoch_start  # training plus evaluation
        self.wall_time_s += total_time
        event = EpochEvent(self.epoch, self.cfg.epochs, train_loss, train_acc, test_loss, test_acc,
                           self.scheduler.get_last_lr()[0], seen / train_time if train_time > 0 else 0.0,
                           total_time, total_time * (self.cfg.epochs - self.epoch))
        self.history.append(event.to_dict())
        if checkpoint is not None:
            save_resume(checkpoint, self.resume_state())
        self.callback(event)

    # ------------------------------------------------------------------ resume
    def resume_state(self) -> dict:
        return {"model": self.model.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "epoch": self.epoch, "history": self.history, "wall_time_s": self.wall_time_s,
                "model_config": self.model_config.to_dict(), "train_config": self.cfg.to_dict(),
                "aug_config": self.aug_config.to_dict()}

    @classmethod
    def resume(cls, path: Path, train_split: Split, test_split: Split | None = None,
               callback: Callback | None = None, **overrides) -> "Trainer":
        """Rebuild a trainer from a checkpoint written by `fit(checkpoint=...)` and continue it."""
        state = load_resume(path)
        train_cfg = TrainConfig.from_dict({**state["train_config"], "time_budget_s": None, **overrides})
        trainer = cls(ModelConfig.from_dict(state["model_config"]), train_cfg,
                      AugmentConfig.from_dict(state["aug_config"]), train_split, test_split, callback)
        trainer.model.load_state_dict(state["model"])
        if trainer.ema is not None and state["ema"] is not None:
            trainer.ema.load_state_dict(state["ema"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        nb = trainer.batches.batches_per_epoch
        steps_done = state["epoch"] * nb
        if ReplannableOneCycle.owns(state["scheduler"]):  # a time-budgeted run: its plan, in steps
            trainer.scheduler = trainer._replannable(1)
            trainer.scheduler.load_state_dict(state["scheduler"])
            if overrides.get("epochs") is not None:  # a new length: the same curve at a new pace
                if trainer.steps_done > trainer.cfg.epochs * nb:
                    raise ValueError(f"{path} has already trained {state['epoch']} epochs; "
                                     f"cannot resume with epochs={trainer.cfg.epochs}")
                trainer.scheduler.replan(trainer.cfg.epochs * nb)
            trainer.cfg = replace(trainer.cfg, epochs=math.ceil(trainer.total_steps / nb))
        elif state["scheduler"]["total_steps"] == trainer.total_steps:
            trainer.scheduler.load_state_dict(state["scheduler"])
        elif steps_done > trainer.total_steps:
            raise ValueError(f"{path} has already trained {state['epoch']} epochs; "
                             f"cannot resume with epochs={trainer.cfg.epochs}")
        else:  # a new --epochs: the one-cycle schedule for the new length, at the steps already done
            trainer.scheduler = trainer._make_scheduler(steps_done)
        trainer.epoch, trainer.history = state["epoch"], list(state["history"])
        trainer.wall_time_s = state["wall_time_s"]
        return trainer
