"""The trainer: OneCycle with SGD-Nesterov or AdamW, label smoothing, mixup, EMA, distillation
from teacher networks or a logit bank, fine-tuning from saved weights, resume.

Read top to bottom: set-up (data, model, optimizer, the plan and its schedule), one step, the
epoch loop, the end of an epoch (re-plan, evaluate, checkpoint, report), resume. The settings
are `config.TrainConfig` and are never changed by the run; how long the run is lives in
`self.plan` (budget.py: fixed epochs, or what fits in a time budget, re-planned after every
epoch). Progress goes out as `events.StepEvent`s and `events.EpochEvent`s to one callback.
`stop` (a threading.Event) ends a run cleanly after the current step. `Trainer.resume`
continues bit-for-bit on CPU: the batch order, augmentation and dropout draws depend only on
(seed, epoch, batch).
"""
from __future__ import annotations

import contextlib
import copy
import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..analysis.evaluate import predict_logits
from ..data.augment import AugmentConfig, validate
from ..data.cifar import Split
from ..model.net import ModelConfig, Net
from ..records.checkpoint import load_weights, save_resume
from ..teacher.bank import LogitBank
from .budget import BudgetPlanner, Plan
from .config import LIMITS, TrainConfig, validate_train_config
from .distill import Teacher
from .ema import make_ema
from . import resume as resume_file
from .events import EVAL_SPLITS, Callback, EpochEvent, EvalSplit, StepEvent
from .loader import AugmentedBatches, BankBatches, batch_stream
from .losses import distillation_loss, soft_cross_entropy
from .mixup import mix_batch, mixup_lambda
from .precision import resolve_device, use_bf16
from .schedule import ReplannableOneCycle, one_cycle_lr
from .whiten import first_conv, whiten_conv

# Where these names lived before the split; app/jobs.py and app/experiment_jobs.py import them
# from here (docs/usage.md documents Trainer and TrainConfig).
__all__ = ["Trainer", "TrainConfig", "EpochEvent", "StepEvent", "resolve_device", "validate_train_config"]

WHITEN_IMAGES = 2000  # images whose patches set the whitening init: ~1.8M patches, a second of CPU
CALIBRATION = (3, 20)  # a budget's first plan: warm-up steps (plus 2 per worker), then timed ones


class Trainer:
    def __init__(self, model_config: ModelConfig, train_config: TrainConfig, aug_config: AugmentConfig,
                 train_split: Split, eval_data: Split | None = None, callback: Callback | None = None,
                 owns_process: bool = True, clock: Callable[[], float] = time.perf_counter,
                 eval_split: EvalSplit = "test", device: torch.device | None = None):
        """`eval_data` is scored after every `eval_every`-th epoch and the last; `eval_split` says
        what it is ("validation" or "test"), for the events, the log and the checkpoint.
        `owns_process=False` (a trainer inside a server, e.g. the app's training thread): leave
        the process-wide torch state to the caller: no `set_num_threads`, and the seeding for
        init and dropout happens on a forked RNG that is restored afterwards. `clock` times the
        budget (tests pass a fake one). `device`: where this trainer computes, if not where the
        config says (the copy of a ZeroGPU run in the app's process stays on the CPU while the
        config, and the GPU calls, say "auto")."""
        if eval_split not in EVAL_SPLITS:
            raise ValueError(f"eval_split must be one of {EVAL_SPLITS}, got {eval_split!r}")
        self.model_config, self.aug_config = model_config, validate(aug_config)
        self.cfg = validate_train_config(train_config)
        self.device = device if device is not None else resolve_device(self.cfg.device)
        self.bf16 = use_bf16(self.device, self.cfg.precision)
        self.owns_process = owns_process
        if self.device.type == "cpu" and owns_process:
            torch.set_num_threads(self.cfg.threads)
        self.train_split = train_split.subset(self.cfg.subset, self.cfg.seed)
        self.eval_data = eval_data
        self.eval_split = eval_split if eval_data is not None else None
        self.callback = callback or (lambda event: None)
        self.clock = clock
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
        self.optimizer = self._make_optimizer()
        nb = self.batches.batches_per_epoch
        self.planner = None
        if self.cfg.time_budget_s:  # the budget counts from here: calibration spends it too
            self.planner = BudgetPlanner(self.cfg.time_budget_s, self.clock(), nb, self.cfg.eval_every,
                                         LIMITS["epochs"][1] * nb)
            self.plan = self.planner.first(*self._calibrate())
            self.scheduler = self._replannable(self.plan.total_steps)
        else:
            self.plan = Plan.fixed(self.cfg.epochs, nb)
            self.scheduler = self._make_scheduler(steps_done=0)
        self.ema = make_ema(self.model, self.cfg.ema_decay)
        self.epoch, self.history, self.wall_time_s = 0, [], 0.0

    # ------------------------------------------------------------------ set-up
    @property
    def workers(self) -> int:
        if self.cfg.workers is not None:
            return self.cfg.workers
        return 0 if self.device.type == "cpu" else max(0, min(12, (os.cpu_count() or 2) - 2))

    @property
    def total_steps(self) -> int:
        return self.plan.total_steps

    @property
    def epochs(self) -> int:
        """The planned epoch count (a budgeted run's last one may be partial)."""
        return self.plan.epochs

    @property
    def steps_done(self) -> int:
        return self.scheduler.last_epoch

    @property
    def eval_model(self) -> Net:
        return self.ema.module if self.ema is not None else self.model

    def _make_optimizer(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for p in self.model.parameters():  # no weight decay on BatchNorm and biases
            (no_decay if p.ndim <= 1 else decay).append(p)
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if self.cfg.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=self.cfg.lr, betas=(self.cfg.momentum, 0.999))
        return torch.optim.SGD(groups, lr=self.cfg.lr, momentum=self.cfg.momentum, nesterov=True)

    def _make_scheduler(self, steps_done: int) -> torch.optim.lr_scheduler.OneCycleLR:
        return one_cycle_lr(self.optimizer, self.cfg.lr, self.total_steps, self.cfg.pct_start,
                            self.cfg.final_div_factor, self.cfg.cycle_momentum, steps_done)

    def _replannable(self, steps: int) -> ReplannableOneCycle:
        return ReplannableOneCycle(self.optimizer, self.cfg.lr, steps, self.cfg.pct_start,
                                   final_div_factor=self.cfg.final_div_factor,
                                   cycle_momentum=self.cfg.cycle_momentum)

    def _calibrate(self) -> tuple[float, list[float], float]:
        """(now, seconds of each timed step, seconds of one evaluation), measured on a throwaway
        copy of the model: what a budget's first plan is made from."""
        probe = copy.deepcopy(self.model)
        opt = torch.optim.SGD(probe.parameters(), lr=1e-3)
        warmup, timed = CALIBRATION[0] + 2 * self.workers, CALIBRATION[1]
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
        eval_s = self._time_eval(probe)
        return self.clock(), step_times, eval_s

    def _time_eval(self, model: Net) -> float:
        if self.eval_data is None:
            return 0.0
        n = min(1000, len(self.eval_data))
        predict_logits(model, self.eval_data.images[:n], self.device)  # first call pays set-up costs
        self._sync()
        start = self.clock()
        predict_logits(model, self.eval_data.images[:n], self.device)
        return (self.clock() - start) * len(self.eval_data) / n

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def _seeding_scope(self):
        """Where the trainer may reseed torch: the process itself, or a forked copy of its RNG."""
        if self.owns_process:
            return contextlib.nullcontext()
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    # ------------------------------------------------------------------ one step
    def _step(self, model, optimizer, x, y, mixup: bool,
              bank_logits: list[torch.Tensor] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        stored_probs = (F.softmax(bank_logits[0].to(self.device) / cfg.distill_temperature, dim=1)
                        if bank_logits else None)
        y = y.to(self.device, non_blocking=True)
        num_classes = self.model_config.num_classes
        targets = F.one_hot(y, num_classes).float()
        if cfg.label_smoothing:
            targets = targets * (1 - cfg.label_smoothing) + cfg.label_smoothing / num_classes
        labels = y
        lam = mixup_lambda(cfg, self.epoch) if mixup else None
        if lam is not None:
            perm = torch.randperm(x.shape[0], device=self.device)
            if stored_probs is not None:
                stored_probs = lam * stored_probs + (1 - lam) * stored_probs[perm]
            x, targets, labels = mix_batch(x, targets, y, lam, perm)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = model(x)
            teacher_probs = (self.teacher.soft_targets(x, cfg.distill_temperature)
                             if self.teacher is not None else stored_probs)
        if teacher_probs is None:
            loss = soft_cross_entropy(logits.float(), targets)
        else:
            loss = distillation_loss(logits.float(), targets, teacher_probs, cfg.distill_alpha,
                                     cfg.distill_temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach(), (logits.argmax(1) == labels).sum()

    # ------------------------------------------------------------------ the epoch loop
    def fit(self, stop: threading.Event | None = None, checkpoint: Path | None = None) -> list[dict]:
        """Train from the current epoch to the planned last one; returns the per-epoch history."""
        stop = stop or threading.Event()
        self.model.train()
        with self._seeding_scope():
            while self.epoch < self.plan.epochs and not stop.is_set():
                self._train_stream(stop, checkpoint)  # returns early when a re-plan moves the end
        return self.history

    def _train_stream(self, stop: threading.Event, checkpoint: Path | None) -> None:
        nb = self.batches.batches_per_epoch
        planned_steps = self.total_steps
        stream = batch_stream(self.batches, self.epoch, self.plan.epochs, self.workers,
                              self.device.type == "cuda")
        run_start = epoch_start = self.clock()
        steps_done_at_start = self.epoch * nb
        loss_sum, correct_sum, seen, epoch_steps = torch.zeros((), device=self.device), 0, 0, 0
        window_loss, window_steps = torch.zeros((), device=self.device), 0
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
                per_step = (self.clock() - run_start) / (i + 1)
                self.callback(StepEvent(self.epoch + 1, step, self.total_steps, window_loss.item() / window_steps,
                                        self.scheduler.get_last_lr()[0],
                                        self.cfg.batch_size / per_step if per_step > 0 else 0.0,
                                        per_step * (self.total_steps - step)))
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

    # ------------------------------------------------------------------ the end of an epoch
    def _end_epoch(self, train_loss: float, train_acc: float, epoch_start: float, seen: int,
                   checkpoint: Path | None, epoch_steps: int) -> None:
        train_time = self.clock() - epoch_start
        self.epoch += 1
        if self.planner is not None and self.steps_done < self.total_steps:  # fit the rest to the budget
            evaluates_next = self.eval_data is not None and self.epoch % self.cfg.eval_every == 0
            self.plan = self.planner.after_epoch(self.clock(), epoch_steps, self.steps_done, evaluates_next)
            self.scheduler.replan(self.plan.total_steps)
        eval_loss = eval_acc = None
        if self.eval_data is not None and (self.epoch % self.cfg.eval_every == 0
                                           or self.epoch == self.plan.epochs):
            eval_start = self.clock()
            logits = predict_logits(self.eval_model, self.eval_data.images, self.device)
            labels = torch.from_numpy(self.eval_data.labels)
            eval_loss = F.cross_entropy(logits, labels).item()
            eval_acc = (logits.argmax(1) == labels).float().mean().item()
            if self.planner is not None:
                self.planner.evaluated(self.clock() - eval_start)
        total_time = self.clock() - epoch_start  # training plus evaluation
        self.wall_time_s += total_time
        event = EpochEvent(self.epoch, self.plan.epochs, train_loss, train_acc, eval_loss, eval_acc,
                           self.scheduler.get_last_lr()[0], seen / train_time if train_time > 0 else 0.0,
                           total_time, total_time * (self.plan.epochs - self.epoch), self.eval_split)
        self.history.append(event.to_dict())
        if checkpoint is not None:
            save_resume(checkpoint, self.resume_state())
        self.callback(event)

    # ------------------------------------------------------------------ resume (resume.py)
    def resume_state(self) -> dict:
        return resume_file.state_of(self)

    @classmethod
    def resume(cls, path: Path, train_split: Split, eval_data: Split | None = None,
               callback: Callback | None = None, eval_split: EvalSplit | None = None,
               **overrides) -> "Trainer":
        """Rebuild a trainer from a checkpoint written by `fit(checkpoint=...)` and continue it
        (resume.py says how; `overrides` are TrainConfig fields)."""
        return resume_file.resume(cls, path, train_split, eval_data, callback, eval_split, **overrides)
