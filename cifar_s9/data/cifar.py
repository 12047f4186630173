"""CIFAR-10 as uint8 arrays, from torchvision's download or an image folder, cached once decoded.

Arrays are (N, 32, 32, 3) uint8 images and (N,) int64 labels in CIFAR-10 label order. Decoding
56,000 small files takes tens of seconds, so the result is cached as one .npz keyed by the
folder's file listing; a cache that fails to load or does not match is rebuilt, never trusted.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_atomic
from ..errors import UserError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = (0.4914, 0.4822, 0.4465)  # CIFAR-10 training-set channel statistics
STD = (0.2470, 0.2435, 0.2616)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
DEFAULT_CACHE = Path(os.environ.get("CIFAR_S9_CACHE", ".cache/cifar_s9"))


class DatasetUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 32, 32, 3) uint8
    labels: np.ndarray  # (N,) int64
    source: str         # where it came from, for model cards

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None, seed: int = 0) -> "Split":
        if n is None or n >= len(self):
            return self
        idx = np.random.default_rng(seed).permutation(len(self))[:n]
        return Split(self.images[idx], self.labels[idx], f"{self.source} (subset {n})")


@dataclass(frozen=True)
class ValidationSpec:
    """A fixed validation set carved out of the training images: every choice between runs
    (architecture, recipe, which checkpoint to ship) is made on it, so the test set measures
    each shipped model once."""
    per_class: int = 300  # 3,000 images: a 93% accuracy is known to about +-0.5 points (1 s.d.)
    seed: int = 0

    def to_dict(self) -> dict:
        return {"per_class": self.per_class, "seed": self.seed}


def validation_indices(labels: np.ndarray, spec: ValidationSpec) -> np.ndarray:
    """Sorted indices of `spec.per_class` images of each class, drawn with `spec.seed`: the same
    images for the same labels whatever the machine (numpy's PCG64 is platform-independent)."""
    rng = np.random.default_rng(spec.seed)
    chosen = []
    for c in range(int(labels.max()) + 1 if len(labels) else 0):
        members = np.flatnonzero(labels == c)
        if len(members) <= spec.per_class:
            raise UserError(f"class {c} has {len(members)} training images; cannot hold back "
                             f"{spec.per_class} for validation")
        chosen.append(rng.choice(members, spec.per_class, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def carve_validation(train: Split, spec: ValidationSpec) -> tuple[Split, Split]:
    """(training images without the validation set, the validation set)."""
    val_idx = validation_indices(train.labels, spec)
    keep = np.ones(len(train), dtype=bool)
    keep[val_idx] = False
    tag = f"validation {spec.per_class}/class seed {spec.seed}"
    return (Split(train.images[keep], train.labels[keep], f"{train.source} minus {tag}"),
            Split(train.images[val_idx], train.labels[val_idx], f"{train.source}, {tag}"))


def indices_digest(indices: np.ndarray) -> str:
    """A short fingerprint of which images a split holds, for model cards."""
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


def find_split_dir(data_dir: Path, split: str) -> Path:
    """`DIR/<split>/<class>/*` when present, else `DIR/<class>/*` (a single evaluation folder)."""
    data_dir = Path(data_dir)
    if (data_dir / split).is_dir():
        return data_dir / split
    if any((data_dir / c).is_dir() for c in CLASSES):
        return data_dir
    raise DatasetUnavailable(
        f"{data_dir} has neither a '{split}/' folder nor class folders ({', '.join(CLASSES[:3])}, ...)")


def list_image_folder(root: Path) -> list[tuple[Path, int]]:
    files: list[tuple[Path, int]] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir():
            continue
        name = entry.name.lower()
        if name not in CLASSES:
            raise DatasetUnavailable(f"unknown class folder {entry.path!r}; expected {CLASSES}")
        label = CLASSES.index(name)
        for f in sorted(os.scandir(entry.path), key=lambda e: e.name):
            if Path(f.name).suffix.lower() in IMAGE_SUFFIXES:
                files.append((Path(f.path), label))
    if not files:
        raise DatasetUnavailable(f"no images found under {root}")
    return files


def decode_images(files: list[tuple[Path, int]]) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    images = np.empty((len(files), 32, 32, 3), dtype=np.uint8)
    for i, (path, _) in enumerate(files):
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (32, 32):
                im = im.resize((32, 32), Image.BILINEAR)
            images[i] = np.asarray(im)
    labels = np.array([label for _, label in files], dtype=np.int64)
    return images, labels


def _listing_key(root: Path, files: list[tuple[Path, int]]) -> str:
    h = hashlib.sha256(str(root.resolve()).encode())
    for path, label in files:
        h.update(f"{path.name}:{label}:{path.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
            np.savez(f, **arrays)

    write_atomic(path, write)


def _load_cached(path: Path, n_expected: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except Exception:  # missing, truncated or corrupt: rebuild
        return None
    if images.shape != (n_expected, 32, 32, 3) or labels.shape != (n_expected,):
        return None
    return images, labels


def load_image_folder(data_dir: Path, split: str = "test", cache_dir: Path = DEFAULT_CACHE) -> Split:
    root = find_split_dir(Path(data_dir), split)
    files = list_image_folder(root)
    cache = Path(cache_dir) / f"folder-{root.name}-{_listing_key(root, files)}.npz"
    cached = _load_cached(cache, len(files))
    if cached is None:
        cached = decode_images(files)
        save_npz_atomic(cache, images=cached[0], labels=cached[1])
    return Split(cached[0], cached[1], f"image folder {root}")


def load_torchvision(split: str, cache_dir: Path = DEFAULT_CACHE, download: bool = True) -> Split:
    from torchvision.datasets import CIFAR10

    root = Path(cache_dir) / "torchvision"
    try:
        ds = CIFAR10(str(root), train=(split == "train"), download=download)
    except Exception as exc:  # no network, or a broken download
        raise DatasetUnavailable(unavailable_message(exc)) from exc
    return Split(np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64),
                 f"torchvision CIFAR10 ({split})")


def unavailable_message(reason: object) -> str:
    return ("CIFAR-10 is not available: the torchvision download failed "
            f"({reason}). Either connect to the internet so torchvision can download it, or pass "
            "--data-dir DIR (env CIFAR_S9_DATA_DIR) pointing at an image folder laid out as "
            "DIR/train/<class>/*.png and DIR/test/<class>/*.png.")


def load_split(split: str, data_dir: str | Path | None = None, cache_dir: Path = DEFAULT_CACHE,
               download: bool = True) -> Split:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    data_dir = data_dir or os.environ.get("CIFAR_S9_DATA_DIR")
    if data_dir:
        if not Path(data_dir).is_dir():
            raise DatasetUnavailable(f"--data-dir {data_dir} is not a directory. " + unavailable_message("not tried"))
        return load_image_folder(Path(data_dir), split, cache_dir)
    return load_torchvision(split, cache_dir, download)
