"""What the app serves: the active model (swappable, lock-guarded), predictions, the test data
and a per-model evaluation cache.

Nothing here knows about Gradio; every function is tested as a plain function.
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from .augment import AugmentConfig, InvalidAugmentConfig, preview
from .checkpoint import APP_LIMITS, CheckpointError, load_weights
from .data import CLASSES, DEFAULT_CACHE, DatasetUnavailable, Split, load_split
from .evaluate import Evaluation, evaluate, predict_logits
from .gradcam import model_lock
from .images import upscale
from .model import Net, build_model

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_TEST = ROOT / "assets" / "test_sample.npz"
EXAMPLES_DIR = ROOT / "assets" / "examples"


# ---------------------------------------------------------------- the active model

@dataclass(frozen=True)
class ActiveModel:
    model: Net
    card: dict
    source: str             # the weights file, or "untrained <preset>"
    version: int            # bumps on every swap; keys the evaluation cache
    warning: str | None = None

    @property
    def trained(self) -> bool:
        return self.warning is None


class ModelStore:
    """Holds the model every request uses; `activate` swaps it atomically for new weights."""

    def __init__(self, weights: str | Path | None, fallback_preset: str = "default"):
        self._lock = threading.Lock()
        self._version = 0
        self._current = self._load(weights, fallback_preset)

    def _load(self, weights, fallback_preset: str) -> ActiveModel:
        self._version += 1
        if weights is not None:
            try:
                model, card = load_servable(weights)
                return ActiveModel(_serving(model), card, str(weights), self._version)
            except CheckpointError as exc:
                reason = str(exc)
        else:
            reason = "no weights file was given"
        model = _serving(build_model(fallback_preset))
        warning = (f"Untrained model: {reason}. Predictions are random until you train a model "
                   "(Train tab) or start the app with --weights PATH.")
        return ActiveModel(model, {"preset": fallback_preset}, f"untrained {fallback_preset}",
                           self._version, warning)

    @property
    def current(self) -> ActiveModel:
        with self._lock:
            return self._current

    def activate(self, weights: str | Path) -> ActiveModel:
        """Load `weights` and make them active; raises CheckpointError and keeps the old model."""
        model, card = load_servable(weights)
        with self._lock:
            self._version += 1
            self._current = ActiveModel(_serving(model), card, str(weights), self._version)
            return self._current


def load_servable(weights: str | Path) -> tuple[Net, dict]:
    """`load_weights`, plus the checks that the app can serve it: 3-channel input, the 10 CIFAR-10
    classes, and a 32x32 forward pass that works. Anything else is a CheckpointError."""
    path = Path(weights)
    model, card = load_weights(path, limits=APP_LIMITS)  # declared architecture checked first
    cfg = model.config
    if cfg.in_channels != 3 or cfg.num_classes != len(CLASSES):
        raise CheckpointError(f"{path.name} is a network for {cfg.in_channels}-channel images and "
                              f"{cfg.num_classes} classes; this app serves 3-channel CIFAR-10 (10 classes)")
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(1, 3, 32, 32))
    except RuntimeError as exc:
        raise CheckpointError(f"{path.name} cannot classify a 32x32 image: {exc}") from exc
    if tuple(out.shape) != (1, len(CLASSES)):
        raise CheckpointError(f"{path.name} gives outputs of shape {tuple(out.shape)}, not (1, 10)")
    return model, card


def _serving(model: Net) -> Net:
    model = model.to("cpu").eval()
    for p in model.parameters():  # Grad-CAM needs gradients w.r.t. activations, so keep grad on
        p.requires_grad_(True)
    return model


# ---------------------------------------------------------------- predictions

def probabilities(model: Net, image: np.ndarray) -> np.ndarray:
    """Softmax probabilities (10,) for one (32, 32, 3) uint8 image."""
    with model_lock(model):  # a CAM's hooks on this model must not see our forward pass
        logits = predict_logits(model, image[None], "cpu")
    return logits.softmax(1)[0].numpy()


def top_k(probs: np.ndarray, k: int = 3) -> dict[str, float]:
    """{class name: probability} for the k most likely classes, most likely first."""
    k = int(max(1, min(len(CLASSES), k)))
    order = np.argsort(-probs, kind="stable")[:k]
    return {CLASSES[i]: float(probs[i]) for i in order}


def class_index(name: str | int | None) -> int | None:
    """A class name or index -> index; None, "" and "predicted" -> None (explain the prediction)."""
    if name is None or name == "" or name == "predicted":
        return None
    if isinstance(name, (int, np.integer)):
        index = int(name)
    elif str(name).lower() in CLASSES:
        index = CLASSES.index(str(name).lower())
    else:
        raise ValueError(f"unknown class {name!r}; choose one of {', '.join(CLASSES)}")
    if not 0 <= index < len(CLASSES):
        raise ValueError(f"class index must be in [0, {len(CLASSES)}), got {index}")
    return index


# ---------------------------------------------------------------- numbers from the UI

def number(value, name: str) -> float:
    """A UI value (slider float, numeric string) -> a finite float, or ValueError naming the field."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return x


def whole_number(value, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """A UI value -> int within [lo, hi]; NaN, infinity, fractions and text give a ValueError that
    names the field and the allowed range (never `int()`'s own OverflowError or message)."""
    span = f" in [{lo}, {hi}]" if lo is not None and hi is not None else ""
    x = number(value, name)
    if not x.is_integer():
        raise ValueError(f"{name} must be a whole number{span}, got {value!r}")
    n = int(x)
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise ValueError(f"{name} must be{span or ' in range'}, got {n}")
    return n


# ---------------------------------------------------------------- augmentation lab

_INT_FIELDS = {f.name for f in fields(AugmentConfig) if f.type in ("int", int)}
_FLOAT_FIELDS = {f.name for f in fields(AugmentConfig) if f.type in ("float", float)}


def coerce_augment(values: dict) -> AugmentConfig:
    """UI values (sliders send floats, JSON may send strings) -> AugmentConfig; unknown keys ignored.

    Only types are fixed here; `augment.validate` judges the ranges.
    """
    clean = {}
    for name, value in values.items():
        if value is None:
            continue
        try:
            if name in _INT_FIELDS:
                number = float(value)
                if not number.is_integer():
                    raise InvalidAugmentConfig(f"{name} must be a whole number, got {value}")
                clean[name] = int(number)
            elif name in _FLOAT_FIELDS:
                clean[name] = float(value)
            else:
                clean[name] = value
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidAugmentConfig):
                raise
            raise InvalidAugmentConfig(f"{name} must be a number, got {value!r}") from None
    return AugmentConfig.from_dict(clean)


MAX_VIEWS = 64          # augmented versions in one preview
MAX_SEED = 2**32 - 1    # numpy's seed range


def augment_grid(image: np.ndarray, cfg: AugmentConfig, n: int, seed: int,
                 display: int = 128) -> tuple[list[tuple[np.ndarray, str]], dict]:
    """(original + n augmented views as (enlarged image, caption)), {view: sampled parameters}."""
    n = whole_number(n, "augmented versions", 1, MAX_VIEWS)
    seed = whole_number(seed, "seed", 0, MAX_SEED)
    samples = preview(image, cfg, n=n, seed=seed)
    grid = [(upscale(image, display), "original")]
    grid += [(upscale(s.image, display), f"#{i}") for i, s in enumerate(samples, start=1)]
    return grid, {f"#{i}": s.applied for i, s in enumerate(samples, start=1)}


def example_paths() -> list[Path]:
    return [EXAMPLES_DIR / f"{c}.jpg" for c in CLASSES if (EXAMPLES_DIR / f"{c}.jpg").exists()]


# ---------------------------------------------------------------- data

@dataclass(frozen=True)
class EvalData:
    split: Split
    full: bool   # the whole CIFAR-10 test set, or only the bundled sample
    note: str    # says which, for the UI


def load_sample(path: Path = SAMPLE_TEST) -> Split:
    with np.load(path, allow_pickle=False) as z:
        return Split(z["images"], z["labels"].astype(np.int64),
                     f"bundled sample ({len(z['labels'])} CIFAR-10 test images, {path.name})")


def data_dir_from_env(data_dir: str | Path | None = None) -> str | None:
    return str(data_dir) if data_dir else (os.environ.get("CIFAR_S9_DATA_DIR") or None)


def load_test_data(data_dir: str | Path | None = None, sample: Path = SAMPLE_TEST,
                   cache_dir: Path = DEFAULT_CACHE) -> EvalData:
    """The configured test set (image folder, or torchvision's cached copy), else the sample."""
    data_dir = data_dir_from_env(data_dir)
    problem = None
    try:
        if data_dir:
            split = load_split("test", data_dir, cache_dir)
        else:
            split = load_split("test", None, cache_dir, download=False)  # only if already downloaded
        return EvalData(split, True, f"Full test set: {len(split):,} images from {split.source}.")
    except DatasetUnavailable as exc:
        problem = str(exc) if data_dir else None
    split = load_sample(sample)
    note = (f"Only the {split.source}; start the app with --data-dir DIR (or set CIFAR_S9_DATA_DIR) "
            "for the full 10,000-image test set.")
    if problem:
        note = f"Could not load {data_dir}: {problem} " + note
    return EvalData(split, False, note)


@dataclass(frozen=True)
class TrainingData:
    train: Split
    test: Split
    note: str
    demo_only: bool  # True when the loop runs on the tiny bundled sample


def load_training_data(data_dir: str | Path | None = None, allow_download: bool = True,
                       sample: Path = SAMPLE_TEST, sample_train: int = 400) -> TrainingData:
    """Image folder if configured, else torchvision (download if allowed), else the sample split."""
    data_dir = data_dir_from_env(data_dir)
    reasons = []
    try:
        train = load_split("train", data_dir, download=allow_download)
        test = load_split("test", data_dir, download=allow_download)
        return TrainingData(train, test, f"Training on {train.source}; testing on {test.source}.", False)
    except DatasetUnavailable as exc:
        reasons.append(str(exc))
    s = load_sample(sample)
    idx = np.random.default_rng(0).permutation(len(s))
    tr, te = idx[:sample_train], idx[sample_train:]
    note = (f"CIFAR-10 is not available here, so this run uses the {len(tr)}/{len(te)} train/test "
            f"split of the bundled {len(s)}-image sample: it only demonstrates the training loop, "
            f"its accuracy means nothing. ({reasons[0]})")
    return TrainingData(Split(s.images[tr], s.labels[tr], "bundled sample (train part)"),
                        Split(s.images[te], s.labels[te], "bundled sample (test part)"), note, True)


# ---------------------------------------------------------------- evaluation cache

@dataclass
class EvaluationCache:
    """One Evaluation per (model version, test set); concurrent first requests evaluate once."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _key: tuple | None = None
    _value: Evaluation | None = None

    def get(self, active: ActiveModel, split: Split) -> Evaluation:
        key = (active.version, split.source, len(split))
        with self._lock:
            if self._key != key:
                with model_lock(active.model):
                    self._value = evaluate(active.model, split, "cpu")
                self._key = key
            return self._value


def test_image(split: Split, index: int) -> np.ndarray:
    if not 0 <= index < len(split):
        raise IndexError(f"test image {index} is outside the {len(split)} images")
    return split.images[index]
