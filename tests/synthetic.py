"""Synthetic CIFAR-shaped data for the tests: the class is encoded in the image's colour.

Plain helpers (importable from any test module); the fixtures built on them live in conftest.py.
"""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np

from cifar_s9.data.cifar import CLASSES, Split
from cifar_s9.model.net import BlockSpec, ConvSpec, ModelConfig

# One distinct RGB colour per class, so a tiny network can learn the labels in a few steps.
PALETTE = np.array([
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (128, 128, 0), (0, 0, 128),
], dtype=np.uint8)


def colour_images(labels: np.ndarray, seed: int = 0, noise: int = 20) -> np.ndarray:
    """(N, 32, 32, 3) uint8 images: the class colour plus uniform noise of +-noise."""
    rng = np.random.default_rng(seed)
    base = PALETTE[labels].astype(np.int16)[:, None, None, :]
    jitter = rng.integers(-noise, noise + 1, size=(len(labels), 32, 32, 3))
    return np.clip(base + jitter, 0, 255).astype(np.uint8)


def make_split(n: int = 64, seed: int = 0, source: str = "synthetic") -> Split:
    labels = np.arange(n, dtype=np.int64) % 10
    return Split(colour_images(labels, seed), labels, source)


def write_class_folders(root: Path, per_class: int = 2, classes=CLASSES, seed: int = 0,
                        size: int = 32) -> dict[str, list[Path]]:
    """`root/<class>/<i>.png` for each class; returns the files written per class."""
    from PIL import Image

    written: dict[str, list[Path]] = {}
    for k, name in enumerate(classes):
        label = CLASSES.index(name.lower())
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        images = colour_images(np.full(per_class, label), seed=seed + k)
        written[name] = []
        for i, img in enumerate(images):
            path = folder / f"{i:03d}.png"
            im = Image.fromarray(img)
            if size != 32:
                im = im.resize((size, size), Image.NEAREST)
            im.save(path)
            written[name].append(path)
    return written


def make_dataset_dir(root: Path, train_per_class: int = 4, test_per_class: int = 2) -> Path:
    """`root/train/<class>/*.png` and `root/test/<class>/*.png` for all ten classes."""
    write_class_folders(Path(root) / "train", train_per_class, seed=0)
    write_class_folders(Path(root) / "test", test_per_class, seed=100)
    return Path(root)


def tiny_config(dropout: float = 0.0, residual: bool = False) -> ModelConfig:
    """A few-thousand-parameter network with the Net structure (12 convs, one dilated, separable)."""
    sep = lambda c, s=1, d=1: ConvSpec(c, "separable", s, d)  # noqa: E731
    std = lambda c, s=1, d=1: ConvSpec(c, "standard", s, d)  # noqa: E731
    return ModelConfig(blocks=(
        BlockSpec((std(8), std(8), std(8)), residual=residual),
        BlockSpec((std(12, 2), sep(12), sep(12, 1, 2)), residual=residual),
        BlockSpec((sep(16, 2), sep(16), sep(16)), residual=residual),
        BlockSpec((sep(16, 2), sep(16), sep(16)), residual=residual),
    ), dropout=dropout)


def free_port() -> int:
    """A port that is free on 127.0.0.1 right now, for tests that launch the app."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Marker:
    """Unpickling this creates a file: proof that something executed pickled code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class Recorder:
    """A trainer callback that keeps every event."""

    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


class FakeClock:
    """A clock the test moves (`clock.now += 60`): minutes pass without waiting for them."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def random_config(rng: np.random.Generator):
    """A valid AugmentConfig with every field drawn on its slider's grid (or from its choices)."""
    from dataclasses import fields

    from cifar_s9.data.augment import AugmentConfig, min_max_pairs, validate

    values = {}
    for f in fields(AugmentConfig):
        meta = f.metadata
        if "choices" in meta:
            values[f.name] = str(rng.choice(sorted(meta["choices"])))
            continue
        lo, hi = meta["range"]
        steps = int(round((hi - lo) / meta["step"]))
        value = lo + int(rng.integers(0, steps + 1)) * meta["step"]
        values[f.name] = int(round(value)) if f.type in ("int", int) else float(value)
    for lo, hi in min_max_pairs():
        values[lo], values[hi] = sorted((values[lo], values[hi]))
    return validate(AugmentConfig(**values))
