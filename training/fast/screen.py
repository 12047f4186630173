"""Screen fast-recipe ideas on a validation split carved from the training images (never the test set).

    python training/fast/screen.py --data-dir /work/shared/data/cifar10-jpeg --name base --epochs 8 ...

Prints one row per epoch and a final JSON line (val accuracy plain and flip TTA, images/s).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cifar_s9.augment import AugmentConfig  # noqa: E402
from cifar_s9.data import ValidationSpec, carve_validation, load_split  # noqa: E402
from cifar_s9.evaluate import evaluate  # noqa: E402
from cifar_s9.model import get_config  # noqa: E402
from cifar_s9.train import EpochEvent, TrainConfig, Trainer  # noqa: E402

AUGS = {
    # the fast recipe before issue 19
    "old": AugmentConfig(affine_p=0.5, shift_limit=0.1, scale_limit=0.05, rotate_limit=5.0, dropout_p=0.2),
    # flip plus small translations (up to 2 px), no cutout
    "shift2": AugmentConfig(affine_p=1.0, shift_limit=2 / 32, scale_limit=0.0, rotate_limit=0.0, dropout_p=0.0),
    "shift3": AugmentConfig(affine_p=1.0, shift_limit=3 / 32, scale_limit=0.0, rotate_limit=0.0, dropout_p=0.0),
    "flip": AugmentConfig(affine_p=0.0, dropout_p=0.0),
}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--subset", type=int, default=None)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--bs", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.15)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--pct", type=float, default=0.25)
    p.add_argument("--ls", type=float, default=0.1)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--preset", default="default")
    p.add_argument("--whiten", action="store_true")
    p.add_argument("--aug", default="old", choices=sorted(AUGS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=1)
    a = p.parse_args()
    train, val = carve_validation(load_split("train", a.data_dir), ValidationSpec())  # 3,000 images
    cfg = TrainConfig(epochs=a.epochs, batch_size=a.bs, lr=a.lr, weight_decay=a.wd, pct_start=a.pct, momentum=a.momentum,
                      label_smoothing=a.ls, ema_decay=a.ema, subset=a.subset, threads=a.threads,
                      seed=a.seed, eval_every=a.eval_every, log_every=50, whiten_init=a.whiten,
                      device="cpu", workers=0)

    def show(e):
        if isinstance(e, EpochEvent):
            acc = "-" if e.test_acc is None else f"{e.test_acc:.4f}"
            print(f"{a.name} epoch {e.epoch}/{e.epochs} loss {e.train_loss:.3f} acc {e.train_acc:.3f} "
                  f"val {acc} {e.images_per_s:.0f} img/s {e.epoch_time_s:.0f}s", flush=True)

    start = time.perf_counter()
    trainer = Trainer(get_config(a.preset), cfg, AUGS[a.aug], train, val, callback=show)
    trainer.fit()
    wall = time.perf_counter() - start
    ev, tta = evaluate(trainer.eval_model, val), evaluate(trainer.eval_model, val, tta=True)
    raw = evaluate(trainer.model, val)  # the last weights themselves, beside their EMA
    ips = [h["images_per_s"] for h in trainer.history]
    print(json.dumps({"name": a.name, "args": vars(a), "n_train": len(trainer.train_split),
                      "val": round(ev.accuracy, 4), "val_tta": round(tta.accuracy, 4),
                      "val_raw": round(raw.accuracy, 4),
                      "val_by_epoch": [h["test_acc"] for h in trainer.history],
                      "images_per_s": round(float(np.median(ips)), 1), "wall_s": round(wall, 1),
                      "threads": torch.get_num_threads()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
