"""Batches of augmented training images, reproducible from (seed, epoch, batch index) alone.

Each item of `AugmentedBatches` is a whole batch, so worker processes amortise their overhead
and the stream is identical whatever the number of workers, and after a resume.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.augment import AugmentConfig, build_pipeline
from ..data.cifar import Split


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


class AugmentedBatches(Dataset):
    """Index i is batch (i // batches_per_epoch) of epoch (i % batches_per_epoch)."""

    def __init__(self, split: Split, aug: AugmentConfig, batch_size: int, seed: int):
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.pipeline = build_pipeline(aug, normalize=True, seed=seed)
        self.batches_per_epoch = len(split) // batch_size  # drop the ragged last batch
        if self.batches_per_epoch == 0:
            raise ValueError(f"batch size {batch_size} exceeds the {len(split)} training images")
        self._perm_epoch, self._perm = -1, None

    def __len__(self) -> int:
        return 10**9  # indexed by the sampler over (epoch, batch)

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm_epoch, self._perm = epoch, epoch_permutation(len(self.split), self.seed, epoch)
        return self._perm

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, b = divmod(index, self.batches_per_epoch)
        idx = self._permutation(epoch)[b * self.batch_size:(b + 1) * self.batch_size]
        self.pipeline.set_random_seed(self.seed * 1_000_003 + index)
        images = np.stack([self.pipeline(image=img)["image"] for img in self.split.images[idx]])
        x = torch.from_numpy(images).permute(0, 3, 1, 2)  # (B, 3, 32, 32), channels-last memory
        return x, torch.from_numpy(self.split.labels[idx])


class BankBatches(Dataset):
    """Like `AugmentedBatches`, but each image shows one of the views stored in a logit bank, and
    each batch carries the teachers' logits for exactly those pixels: (x, y, teacher_logits)."""

    def __init__(self, split: Split, bank, batch_size: int, seed: int):
        from ..teacher.bank import view_params

        self.split, self.bank, self.batch_size, self.seed = split, bank, batch_size, seed
        self.batches_per_epoch = len(split) // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(f"batch size {batch_size} exceeds the {len(split)} training images")
        params = [view_params(bank.spec, k, len(split)) for k in range(bank.spec.views)]
        self._flip = np.stack([p.flip for p in params])            # (K, N)
        self._dy = np.stack([p.dy for p in params]).astype(np.int8)
        self._dx = np.stack([p.dx for p in params]).astype(np.int8)
        self._epoch, self._perm, self._views = -1, None, None

    def __len__(self) -> int:
        return 10**9

    def _for_epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        from ..teacher.bank import epoch_views

        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = epoch_permutation(len(self.split), self.seed, epoch)
            self._views = epoch_views(len(self.split), self.bank.spec, self.seed, epoch)
        return self._perm, self._views

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from ..data.transforms import normalize_uint8
        from ..teacher.bank import Views, apply_views

        epoch, b = divmod(index, self.batches_per_epoch)
        perm, views = self._for_epoch(epoch)
        idx = perm[b * self.batch_size:(b + 1) * self.batch_size]
        k = views[idx]
        shown = apply_views(self.split.images[idx],
                            Views(self._flip[k, idx], self._dy[k, idx], self._dx[k, idx]),
                            self.bank.spec.translate)
        x = torch.from_numpy(normalize_uint8(shown))
        return x, torch.from_numpy(self.split.labels[idx]), self.bank.for_batch(idx, k)


def batch_stream(batches: AugmentedBatches, first_epoch: int, last_epoch: int,
                 workers: int, pin_memory: bool) -> DataLoader:
    """Batches for epochs [first_epoch, last_epoch), in order."""
    nb = batches.batches_per_epoch
    sampler = range(first_epoch * nb, last_epoch * nb)
    return DataLoader(batches, batch_size=None, sampler=sampler, num_workers=workers,
                      pin_memory=pin_memory, prefetch_factor=4 if workers else None,
                      worker_init_fn=_single_threaded_worker if workers else None)


def _single_threaded_worker(_: int) -> None:
    import cv2  # each worker handles whole batches; OpenCV's own threads would oversubscribe the cores

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
