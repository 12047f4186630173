"""The data the app shows and trains on, with fallbacks: the configured CIFAR-10 folder, else
torchvision's copy if already downloaded, else the bundled 1,000-image sample (which always
works: tests, CI and a Space without the dataset). Messages name what was used, never a path."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .cifar import CLASSES, DEFAULT_CACHE, DatasetUnavailable, Split, load_split
from ..paths import EXAMPLES_DIR, SAMPLE_TEST


def example_paths() -> list[Path]:
    """One bundled test image per class, in class order (the Classify tab's examples)."""
    return [EXAMPLES_DIR / f"{c}.jpg" for c in CLASSES if (EXAMPLES_DIR / f"{c}.jpg").exists()]


def _named(split: Split, name: str) -> Split:
    """The split under a name a visitor may read (its own `source` can hold a server path)."""
    return replace(split, source=name)


@dataclass(frozen=True)
class EvalData:
    split: Split
    full: bool   # the whole CIFAR-10 test set, or only the bundled sample
    note: str    # says which, for the UI


def load_sample(path: Path = SAMPLE_TEST) -> Split:
    with np.load(path, allow_pickle=False) as z:
        return Split(z["images"], z["labels"].astype(np.int64),
                     f"bundled sample ({len(z['labels'])} CIFAR-10 test images)")


def data_dir_from_env(data_dir: str | Path | None = None) -> str | None:
    return str(data_dir) if data_dir else (os.environ.get("CIFAR_S9_DATA_DIR") or None)


def load_test_data(data_dir: str | Path | None = None, sample: Path = SAMPLE_TEST,
                   cache_dir: Path = DEFAULT_CACHE) -> EvalData:
    """The configured test set (image folder, or torchvision's cached copy), else the sample."""
    data_dir = data_dir_from_env(data_dir)
    failed = False
    try:
        if data_dir:
            split = load_split("test", data_dir, cache_dir)
        else:
            split = load_split("test", None, cache_dir, download=False)  # only if already downloaded
        split = _named(split, "CIFAR-10 test")
        return EvalData(split, True, f"Full test set: {len(split):,} CIFAR-10 test images.")
    except DatasetUnavailable:
        failed = bool(data_dir)
    split = load_sample(sample)
    note = (f"Only the {split.source}; start the app with --data-dir DIR (or set CIFAR_S9_DATA_DIR) "
            "for the full 10,000-image test set.")
    if failed:  # the operator's folder is unusable: say so without showing where it is
        note = "The configured CIFAR-10 folder could not be read. " + note
    return EvalData(split, False, note)


@dataclass(frozen=True)
class TrainingData:
    train: Split
    test: Split
    note: str
    demo_only: bool  # True when the loop runs on the tiny bundled sample


def load_training_data(data_dir: str | Path | None = None, allow_download: bool = False,
                       sample: Path = SAMPLE_TEST, sample_train: int = 400) -> TrainingData:
    """Image folder if configured, else torchvision's copy (downloaded only if `allow_download`),
    else the sample split. The app never downloads: a public server must not fetch 170 MB
    because a visitor pressed Start."""
    data_dir = data_dir_from_env(data_dir)
    try:
        train = _named(load_split("train", data_dir, download=allow_download), "CIFAR-10 train")
        test = _named(load_split("test", data_dir, download=allow_download), "CIFAR-10 test")
        return TrainingData(train, test, f"Training on {len(train):,} CIFAR-10 training images.", False)
    except DatasetUnavailable:
        pass
    s = load_sample(sample)
    idx = np.random.default_rng(0).permutation(len(s))
    tr, te = idx[:sample_train], idx[sample_train:]
    note = (f"CIFAR-10 is not available on this server, so this run uses a {len(tr)}/{len(te)} "
            f"train/test split of the bundled {len(s)}-image sample: it only demonstrates the "
            "training loop, and its accuracy means little.")
    return TrainingData(Split(s.images[tr], s.labels[tr], "bundled sample (train part)"),
                        Split(s.images[te], s.labels[te], "bundled sample (test part)"), note, True)
