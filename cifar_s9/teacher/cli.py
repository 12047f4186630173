"""`python -m cifar_s9 teacher-bank`: train airbench teachers on the training images minus the
validation split, then write their logit bank for the student (`train --logit-bank`). One
command does both, sized for one call on a lent GPU (inputs and outputs each well under 64 MiB):

    python -m cifar_s9 teacher-bank --data-dir DIR --teachers 3 --views 32 --out runs/bank [--device cuda]

Each teacher is measured on the validation split only; the test set is never read. The bank is
the mean logits of the teachers for K seeded views (flip + shift) of every training image.
`--epochs`/`--widths` change the teacher (airbench94: 9.9 epochs, widths 64 256 256).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from .bank import BankSpec, compute_bank
from ..data.cifar import ValidationSpec, carve_validation, load_split
from .airbench import (TeacherConfig, accuracy, load_teacher, save_teacher, teacher_logits,
                      to_normalized, train_teacher)


def train_one(cfg: TeacherConfig, train, val, spec: ValidationSpec, out: Path, device: str):
    resume_file = out.with_suffix(".resume.pt")  # written every epoch; a later call continues it
    model, history = train_teacher(cfg, train, val, device=device, checkpoint=resume_file,
                                   resume=resume_file if resume_file.is_file() else None,
                                   log=lambda row: print(json.dumps({"teacher": out.stem, **row}), flush=True))
    wall = sum(h["epoch_s"] for h in history)  # training time over every sitting
    val_x = to_normalized(val.images)
    card = {"validation": {**spec.to_dict(), "n": len(val),
                           "plain": accuracy(model, val_x, val.labels, tta=False),
                           "tta": accuracy(model, val_x, val.labels, tta=True)},
            "train_data": {"source": train.source, "n": len(train)}, "history": history,
            "wall_time_s": round(wall, 1), "device": device,
            "params": sum(p.numel() for p in model.parameters())}
    save_teacher(model, cfg, out, card)
    print(json.dumps({"teacher": str(out), "validation": card["validation"], "wall_time_s": card["wall_time_s"]}),
          flush=True)
    return model, card


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True, help="folder: teachers t<i>.safetensors and the bank")
    p.add_argument("--teachers", type=int, default=1, help="how many to train (seeds 0..n-1)")
    p.add_argument("--reuse", action="store_true", help="keep teachers already in --out "
                   "(an unfinished one always continues from its t<i>.resume.pt)")
    p.add_argument("--views", type=int, default=BankSpec().views)
    p.add_argument("--no-bank", action="store_true")
    p.add_argument("--epochs", type=float)
    p.add_argument("--widths", type=int, nargs=3)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--val-per-class", type=int, default=ValidationSpec().per_class)


def run(args) -> int:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    spec = ValidationSpec(args.val_per_class, 0)
    train, val = carve_validation(load_split("train", args.data_dir), spec)
    base = replace(TeacherConfig(), **({"epochs": args.epochs} if args.epochs else {}),
                   **({"widths": tuple(args.widths)} if args.widths else {}),
                   **({"batch_size": args.batch_size} if args.batch_size else {}))
    teachers, cards = [], []
    for seed in range(args.teachers):
        path = out / f"t{seed}.safetensors"
        if args.reuse and path.is_file():
            model, _, card = load_teacher(path)
        else:
            model, card = train_one(replace(base, seed=seed), train, val, spec, path, args.device)
        teachers.append(model.to(args.device))
        cards.append({"file": path.name, "validation": card["validation"]})
    if args.no_bank:
        return 0

    def answer(model):
        return lambda views: teacher_logits(model, to_normalized(views).to(args.device), tta=False).cpu()

    start = time.perf_counter()
    bank = compute_bank([answer(m) for m in teachers], train.images, BankSpec(views=args.views),
                        meta={"teachers": cards, "validation": spec.to_dict(), "train_n": len(train)},
                        progress=lambda v: print(json.dumps({"bank_view": v + 1}), flush=True))
    bank.meta["wall_time_s"] = round(time.perf_counter() - start, 1)
    bank.save(out / "bank")
    ensemble = sum(torch.softmax(teacher_logits(m, to_normalized(val.images).to(args.device), tta=True), 1)
                   for m in teachers).argmax(1).cpu().numpy()
    print(json.dumps({"bank": str(out / "bank"), "views": args.views, "teachers": cards,
                      "ensemble_val_tta": float((ensemble == val.labels).mean()),
                      "bank_wall_time_s": bank.meta["wall_time_s"]}))
    return 0
