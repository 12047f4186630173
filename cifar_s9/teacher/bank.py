"""A bank of teacher logits: the teachers' answers for K seeded augmented views of every training
image, computed once, so a student distils from a strong teacher without running it.

A view is a horizontal flip bit and an integer translation (dy, dx) in [-t, t] with a mirrored
border, drawn from (seed, view index) alone: the student regenerates exactly the pixels the
teacher saw. At 43,000 images x 32 views x 10 logits in float16 the bank is 27.5 MB, stored as
one `.npz` per group of views (shards small enough for git and for a 64 MiB GPU carry) and
read without pickle.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..atomic import write_json_atomic
from ..data.cifar import save_npz_atomic
from ..data.transforms import shifted_crops
from ..errors import UserError


@dataclass(frozen=True)
class BankSpec:
    views: int = 32        # K views per image
    translate: int = 2     # shifts up to this many pixels each way
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Views:
    flip: np.ndarray  # (N,) bool
    dy: np.ndarray    # (N,) int in [-t, t]
    dx: np.ndarray


def view_params(spec: BankSpec, view: int, n: int) -> Views:
    """The flip and shift of view `view` for each of `n` images; independent of everything else."""
    if not 0 <= view < spec.views:
        raise ValueError(f"view must be in [0, {spec.views}), got {view}")
    rng = np.random.default_rng([spec.seed, view])
    t = spec.translate
    return Views(rng.integers(0, 2, n).astype(bool), rng.integers(-t, t + 1, n), rng.integers(-t, t + 1, n))


def apply_views(images: np.ndarray, views: Views, translate: int) -> np.ndarray:
    """(N, 32, 32, 3) uint8 -> the same images shifted by (-dy, -dx) with a mirrored border, then
    flipped where `views.flip`: output[i, y, x] = padded[i, y + t + dy, x + t + dx]."""
    t = translate
    padded = np.pad(images, ((0, 0), (t, t), (t, t), (0, 0)), mode="reflect")
    crops = shifted_crops(torch.from_numpy(padded).permute(0, 3, 1, 2), torch.from_numpy(views.dy),
                          torch.from_numpy(views.dx), t)
    out = np.ascontiguousarray(crops.permute(0, 2, 3, 1).numpy())
    out[views.flip] = out[views.flip, :, ::-1]
    return out


def images_digest(images: np.ndarray) -> str:
    """Fingerprint of the training images a bank belongs to (order matters)."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]


@dataclass
class LogitBank:
    logits: np.ndarray  # (N, K, 10) float16: the teachers' mean logits for each view
    spec: BankSpec
    meta: dict          # teachers, their validation accuracy, the images' digest

    def for_batch(self, indices: np.ndarray, view: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.logits[indices, view].astype(np.float32))

    def save(self, folder: Path, views_per_shard: int = 8) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for first in range(0, self.spec.views, views_per_shard):
            part = self.logits[:, first:first + views_per_shard]
            save_npz_atomic(folder / f"views{first:03d}.npz", logits=part)
        write_json_atomic(folder / "bank.json",  # last: a bank.json means every shard is in place
                          {"spec": self.spec.to_dict(), "n": len(self.logits),
                           "views_per_shard": views_per_shard, **self.meta})

    @classmethod
    def load(cls, folder: Path, expected_images: np.ndarray | None = None) -> "LogitBank":
        folder = Path(folder)
        try:
            info = json.loads((folder / "bank.json").read_text())
            spec = BankSpec(**info["spec"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{folder.name}: not a logit bank ({exc.__class__.__name__})") from None
        parts = []
        for first in range(0, spec.views, info["views_per_shard"]):
            with np.load(folder / f"views{first:03d}.npz", allow_pickle=False) as z:
                parts.append(z["logits"])
        logits = np.concatenate(parts, axis=1)
        if logits.shape != (info["n"], spec.views, 10):
            raise UserError(f"{folder.name}: logits of shape {logits.shape}, expected "
                             f"({info['n']}, {spec.views}, 10)")
        if expected_images is not None and info.get("images_sha256") != images_digest(expected_images):
            raise UserError(f"{folder.name} was computed for other training images (another "
                             "validation split or data folder): recompute it for these")
        meta = {k: v for k, v in info.items() if k not in ("spec", "n", "views_per_shard")}
        return cls(logits, spec, meta)


@torch.no_grad()
def compute_bank(teachers: list[Callable[[np.ndarray], torch.Tensor]], images: np.ndarray,
                 spec: BankSpec, batch_size: int = 1000, meta: dict | None = None,
                 progress: Callable[[int], None] = lambda view: None) -> LogitBank:
    """Each teacher maps uint8 views (B, 32, 32, 3) to logits (B, 10); the bank keeps their mean."""
    logits = np.empty((len(images), spec.views, 10), dtype=np.float16)
    for view in range(spec.views):
        shown = apply_views(images, view_params(spec, view, len(images)), spec.translate)
        for start in range(0, len(images), batch_size):
            chunk = shown[start:start + batch_size]
            mean = torch.stack([t(chunk).float() for t in teachers]).mean(0)
            logits[start:start + batch_size, view] = mean.numpy().astype(np.float16)
        progress(view)
    return LogitBank(logits, spec, {**(meta or {}), "images_sha256": images_digest(images)})


def epoch_views(n: int, spec: BankSpec, seed: int, epoch: int) -> np.ndarray:
    """Which stored view each image shows in a training epoch: every view once per K epochs, in an
    order of the image's own (so the views of one batch are mixed)."""
    offsets = np.random.default_rng([seed, 7]).integers(0, spec.views, n)
    cycle = np.random.default_rng([seed, 11, epoch // spec.views]).permutation(spec.views)
    return (offsets + cycle[epoch % spec.views]) % spec.views
