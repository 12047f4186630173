"""The training settings: `TrainConfig`, each field's default with its reason, and the limits
`validate_train_config` holds every run to (the CLI's, the app's and the experiments')."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

from ..errors import UserError


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
    eval_every: int = 1              # epochs between evaluations (and after the last)
    log_every: int = 10              # steps between StepEvents
    time_budget_s: float | None = None  # if set, budget.py plans the steps that fit (epochs is ignored)
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


class InvalidTrainConfig(UserError):
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
