"""A/B experiments: two or more arms (a preset and an augmentation each) trained one after
another with one shared budget, every arm scored on the same evaluation images.

The runner reuses `Trainer` unchanged (through `zerogpu.SlotTraining`, so that on ZeroGPU each
arm trains in GPU calls of a few epochs). Arms differ only in what the experiment is about: the
same training images (per seed), the same recipe, the same epoch count. A minutes budget is
turned into an epoch count once, by timing the first arm (`Trainer`'s own calibration), and every
arm then trains that many epochs: on a shared machine a per-arm time budget would hand the arm that
ran while the machine was busy fewer epochs, and the comparison would measure the load.

`ExperimentResult` carries each arm's per-epoch curves and per-image correctness; the numbers
shown (intervals, paired difference, McNemar) come from `cifar_s9.experiments.stats`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from . import stats
from ..data.augment import AugmentConfig, validate
from ..data.cifar import Split, ValidationSpec, carve_validation
from ..model.net import get_config
from ..train.recipes import LAB_TRAIN, get_recipe
from ..train.chunks import TrainSpec
from ..train.config import TrainConfig, validate_train_config
from ..errors import UserError
from .zerogpu import SlotTraining, planned_epochs

MAX_ARMS, MAX_REPEATS = 4, 5
SHORT_EPOCHS = 15   # below this many epochs, say that short runs favour weak augmentation
SAMPLE_WARNING = ("Only the bundled 500-image sample is available, so these runs train on 400 images "
                  "and score on 100: all the numbers of this result demonstrate the tool and mean nothing. Start "
                  "the app with --data-dir (or let torchvision download CIFAR-10) for a real comparison.")
SHORT_WARNING = ("Short runs favour weak augmentation: with few epochs the network has not yet "
                 "overfit, so regularising augmentation (Coarse Dropout, strong Affine) mostly "
                 "slows learning. A 'no difference' or 'worse' here may turn around at a longer budget.")


@dataclass(frozen=True)
class Arm:
    name: str
    aug: AugmentConfig = AugmentConfig()
    preset: str = "default"


@dataclass(frozen=True)
class ExperimentConfig:
    arms: tuple[Arm, ...]
    train: TrainConfig = LAB_TRAIN       # the shared recipe (optimiser, lr, batch); see recipes.py
    subset: int | None = LAB_TRAIN.subset  # training images per run (the same images in every arm)
    epochs: int | None = None            # a fixed epoch count, or ...
    minutes: float | None = 3.0          # ... a time budget per arm, turned into epochs once
    seed: int = 0                        # repeat r uses seed + r in every arm
    repeats: int = 1                     # k seeds per arm; k > 1 adds bands and a seed-level test
    curve_images: int = 500              # evaluation images scored after every epoch, for the curves
    # (the final score uses all of them: on a CPU, scoring 3,000 images each epoch costs as much as
    # training on 1,000)

    def validated(self) -> "ExperimentConfig":
        problems = []
        if not 2 <= len(self.arms) <= MAX_ARMS:
            problems.append(f"an experiment needs 2 to {MAX_ARMS} arms, got {len(self.arms)}")
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names) or any(not n or len(n) > 40 for n in names):
            problems.append(f"arm names must be distinct, 1-40 characters: {names}")
        if (self.epochs is None) == (self.minutes is None):
            problems.append("give either epochs or minutes, not both or neither")
        if self.epochs is not None and not 1 <= self.epochs <= 200:
            problems.append(f"epochs must be in [1, 200], got {self.epochs}")
        if self.minutes is not None and not 0.1 <= self.minutes <= 120:
            problems.append(f"minutes must be in [0.1, 120], got {self.minutes}")
        if not 1 <= self.curve_images <= 10_000:
            problems.append(f"curve_images must be in [1, 10000], got {self.curve_images}")
        if not 1 <= self.repeats <= MAX_REPEATS:
            problems.append(f"repeats must be in [1, {MAX_REPEATS}], got {self.repeats}")
        if problems:
            raise UserError("; ".join(problems))
        for arm in self.arms:
            get_config(arm.preset)
            validate(arm.aug)
        validate_train_config(self.run_config(self.seed, self.epochs or 1))
        return self

    def run_config(self, seed: int, epochs: int, time_budget_s: float | None = None) -> TrainConfig:
        return replace(self.train, subset=self.subset, seed=seed, epochs=epochs,
                       time_budget_s=time_budget_s, eval_every=1)

    def to_dict(self) -> dict:
        return {"arms": [{"name": a.name, "preset": a.preset, "aug": a.aug.to_dict()} for a in self.arms],
                "train": self.train.to_dict(), "subset": self.subset, "epochs": self.epochs,
                "minutes": self.minutes, "seed": self.seed, "repeats": self.repeats,
                "curve_images": self.curve_images}


# ---------------------------------------------------------------- data

@dataclass(frozen=True)
class ExperimentData:
    train: Split
    evaluation: Split    # held-back training images (the validation split), never the test set
    note: str
    demo_only: bool      # the bundled sample only: results mean nothing


def experiment_data(data_dir=None, validation: ValidationSpec = ValidationSpec(),
                    allow_download: bool = False) -> ExperimentData:
    """CIFAR-10's training images minus the fixed validation split (scored by every arm), or,
    without the dataset, the bundled sample split 400/100 and marked as meaningless."""
    from ..data.app_data import load_training_data

    data = load_training_data(data_dir, allow_download=allow_download)
    if data.demo_only:
        return ExperimentData(data.train, data.test, data.note, True)
    train, val = carve_validation(data.train, validation)
    return ExperimentData(train, val, f"Training on {train.source}; every arm scored on the same "
                          f"{len(val):,} validation images ({val.source}).", False)


# ---------------------------------------------------------------- the common questions

def no_dropout_question(current: AugmentConfig, **budget) -> ExperimentConfig:
    """"Does my Coarse Dropout help?": the current settings against the same without it."""
    return ExperimentConfig((Arm("no Coarse Dropout", replace(current, dropout_p=0.0)),
                             Arm("current settings", current)), **budget)


def recipe_default_question(current: AugmentConfig, recipe: str = "full", **budget) -> ExperimentConfig:
    """"Are my settings better than the recipe's?": the recipe's augmentation against the current."""
    return ExperimentConfig((Arm(f"{recipe} recipe default", get_recipe(recipe).aug),
                             Arm("current settings", current)), **budget)


QUESTIONS = {"no-dropout": no_dropout_question, "recipe-default": recipe_default_question}


# ---------------------------------------------------------------- results

@dataclass
class ArmRun:
    arm: str
    seed: int
    epochs: int
    history: list[dict]                  # the trainer's EpochEvent dicts
    correct: np.ndarray                  # (n_eval,) bool: right on each evaluation image
    wall_time_s: float
    images_per_s: float                  # training throughput, median over epochs
    state: str = "done"                  # "done" or "stopped"
    run_name: str | None = None          # in the tracker
    checkpoint: str | None = None
    device: str = ""

    @property
    def accuracy(self) -> stats.Proportion:
        return stats.accuracy(self.correct)


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    eval_source: str
    data_note: str
    meaningless: bool                    # only the bundled sample: the numbers mean nothing
    device: str = ""
    runs: list[ArmRun] = field(default_factory=list)
    planned_epochs: int | None = None

    def runs_of(self, arm: str) -> list[ArmRun]:
        return [r for r in self.runs if r.arm == arm and r.state == "done"]

    @property
    def complete(self) -> bool:
        return all(len(self.runs_of(a.name)) == self.config.repeats for a in self.config.arms)

    def warnings(self) -> list[str]:
        notes = [SAMPLE_WARNING] if self.meaningless else []
        if self.planned_epochs is not None and self.planned_epochs < SHORT_EPOCHS:
            notes.append(f"{self.planned_epochs} epochs per arm. " + SHORT_WARNING)
        return notes

    def table(self) -> list[dict]:
        """One row per arm: mean accuracy over seeds with the 95% interval (Wilson for one seed,
        a t-interval over seeds for several), epochs, time and throughput."""
        rows = []
        for arm in self.config.arms:
            runs = self.runs_of(arm.name)
            if not runs:
                continue
            if len(runs) == 1:
                acc = runs[0].accuracy
                mean, lo, hi = acc.value, acc.lo, acc.hi
            else:
                band = stats.seed_band([r.accuracy.value for r in runs])
                mean, lo, hi = band.mean, band.lo, band.hi
            rows.append({"arm": arm.name, "seeds": len(runs), "epochs": runs[0].epochs,
                         "accuracy": mean, "ci_low": lo, "ci_high": hi, "images": int(runs[0].correct.size),
                         "wall_time_s": float(np.mean([r.wall_time_s for r in runs])),
                         "images_per_s": float(np.mean([r.images_per_s for r in runs]))})
        return rows

    def paired(self, a: str, b: str, seed_index: int = 0) -> stats.PairedDifference:
        return stats.paired_difference(self.runs_of(a)[seed_index].correct, self.runs_of(b)[seed_index].correct)

    def verdicts(self) -> list[str]:
        """Each later arm against the first, in words."""
        base = self.config.arms[0].name
        lines = []
        for arm in self.config.arms[1:]:
            ra, rb = self.runs_of(base), self.runs_of(arm.name)
            n = min(len(ra), len(rb))
            if n == 0:
                continue
            lines.append(stats.verdict(self.paired(base, arm.name), base, arm.name)
                         + (f" (seed {ra[0].seed})" if n > 1 else ""))
            if n > 1:
                band = stats.paired_seed_difference([r.accuracy.value for r in ra[:n]],
                                                    [r.accuracy.value for r in rb[:n]])
                lines.append(f"Over {n} seeds: {arm.name} - {base} = {stats.points(band.mean)} points "
                             f"(95% CI {stats.points(band.lo)} to {stats.points(band.hi)}, t-interval "
                             "over seeds, which includes run-to-run variation).")
        return lines


# ---------------------------------------------------------------- running

@dataclass(frozen=True)
class ArmStarted:
    """The progress event sent as each arm's run begins."""
    arm: str
    seed: int
    index: int      # 0-based position in the run order
    total: int


# (message, the run that just finished or None, an ArmStarted or a trainer event or None)
Progress = Callable[[str, "ArmRun | None", object], None]


def plan_epochs(config: ExperimentConfig, train: Split, evaluation: Split, owns_process: bool = True) -> int:
    """The epoch count for every arm: fixed, or what the trainer's calibration of the first arm
    fits in the minutes budget (about 25 timed steps where the arms will train; nothing is trained)."""
    if config.epochs is not None:
        return config.epochs
    arm = config.arms[0]
    return planned_epochs(TrainSpec(get_config(arm.preset), config.run_config(config.seed, 1, config.minutes * 60),
                                    arm.aug, train, evaluation.subset(config.curve_images, seed=0)),
                          owns_process)


def run_experiment(config: ExperimentConfig, train: Split, evaluation: Split, *,
                   data_note: str = "", meaningless: bool = False, device: str | None = None,
                   stop: threading.Event | None = None, progress: Progress | None = None,
                   track: bool = True, owner: str | None = None, owns_process: bool = True,
                   time_left: Callable[[], float | None] | None = None) -> ExperimentResult:
    """Train every arm (seed-major: A1 B1 A2 B2 ..., so slow drift of the machine hits each arm
    alike) and score each on `evaluation`. Stops early, keeping what finished, when `stop` is set.
    Each arm trains through `zerogpu.SlotTraining`: in this process, or on ZeroGPU in calls of a
    few epochs each (`time_left()`: the seconds the app's slot still lends)."""
    config = config.validated()
    stop = stop or threading.Event()
    progress = progress or (lambda message, run, event: None)
    if device is not None:
        config = replace(config, train=replace(config.train, device=device))
    result = ExperimentResult(config, evaluation.source, data_note, meaningless)
    progress("timing the first arm to plan the budget" if config.minutes else "starting", None, None)
    result.planned_epochs = plan_epochs(config, train, evaluation, owns_process)
    group = _tracker_name(f"ab-{'-vs-'.join(a.name for a in config.arms)}") if track else None
    for r in range(config.repeats):
        for i, arm in enumerate(config.arms):
            if stop.is_set():
                return result
            seed = config.seed + r
            index, total = i + r * len(config.arms), len(config.arms) * config.repeats
            progress(f"arm {arm.name} (seed {seed}): {index + 1} of {total}", None,
                     ArmStarted(arm.name, seed, index, total))
            run = _train_arm(config, arm, seed, result.planned_epochs, train, evaluation, group, stop,
                             lambda event, arm=arm: progress(arm.name, None, event), meaningless, owner,
                             owns_process, time_left,
                             lambda text, arm=arm, seed=seed: progress(f"{arm.name} (seed {seed}): {text}",
                                                                       None, None))
            result.runs.append(run)
            result.device = run.device
            progress(f"arm {arm.name} (seed {seed}) {run.state}: {100 * run.accuracy.value:.1f}%", run, None)
    return result


def _train_arm(config: ExperimentConfig, arm: Arm, seed: int, epochs: int, train: Split,
               evaluation: Split, group: str | None, stop: threading.Event, on_event,
               meaningless: bool, owner: str | None, owns_process: bool,
               time_left: Callable[[], float | None] | None = None,
               note: Callable[[str], None] | None = None) -> ArmRun:
    from ..records.checkpoint import save_weights
    from .tracker import RunLogger, chain, checkpoint_path

    cfg = config.run_config(seed, epochs)
    curve = evaluation.subset(config.curve_images, seed=0)  # the same images for every arm
    # owns_process=False inside the app: the server's threads and RNG stay the server's
    # the bundled sample (no CIFAR-10 here) scores on its test images; real data on the validation split
    training = SlotTraining(TrainSpec(get_config(arm.preset), cfg, arm.aug, train, curve,
                                      "test" if meaningless else "validation", score=evaluation),
                            owns_process=owns_process)
    trainer = training.trainer
    logger = name = weights = None
    if group is not None:
        name = _tracker_name(f"{arm.name}-s{seed}")
        weights = checkpoint_path(name)
        logger = RunLogger(name, {"source": "experiment", "arm": arm.name, "preset": arm.preset,
                                  "aug": arm.aug.to_dict(), "train": cfg.to_dict(),
                                  "eval_data": evaluation.source, "n_eval": len(evaluation),
                                  "demo_only": meaningless, "owner": owner}, group=group,
                           checkpoint=weights)
    trainer.callback = chain(on_event, logger)
    start = time.perf_counter()
    try:
        fitted = training.fit(stop, time_left, note)
    except BaseException:
        if logger is not None:
            logger.finish(state="failed")
        raise
    state = "done" if trainer.epoch >= trainer.epochs else "stopped"
    wall = time.perf_counter() - start
    correct = fitted.correct
    speed = float(np.median([h["images_per_s"] for h in trainer.history])) if trainer.history else 0.0
    run = ArmRun(arm.name, seed, trainer.epoch, list(trainer.history), correct, wall, speed, state,
                 name, str(weights) if weights else None, fitted.device)
    if logger is not None:
        save_weights(trainer.eval_model, weights, {"source": "cifar_s9 experiment", "arm": arm.name,
                                                   "preset": arm.preset, "train_config": cfg.to_dict(),
                                                   "aug_config": arm.aug.to_dict(),
                                                   "history": trainer.history})
        logger.finish({"accuracy": run.accuracy.value, "epochs": trainer.epoch, "wall_time_s": wall,
                       "images_per_s": speed}, state=state)
    return run


def _tracker_name(label: str) -> str:
    from .tracker import run_name

    return run_name(label)
