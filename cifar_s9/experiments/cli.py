"""`python -m cifar_s9.experiments.cli`: run one A/B experiment from the command line and write
its result (table, verdicts, curves, per-image correctness) as JSON.

    python -m cifar_s9.experiments.cli --question no-dropout --minutes 3 \\
        --data-dir ../shared/data/cifar10-jpeg --threads 1 --out training/experiments/dropout_3min.json
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.augment import NO_AUGMENT, AugmentConfig
from ..records.checkpoint import write_json_atomic
from ..data.cifar import DatasetUnavailable
from .runner import QUESTIONS, Arm, ExperimentConfig, experiment_data, run_experiment
from ..records.provenance import run_info
from ..train.recipes import LAB_TRAIN, get_recipe


def build_config(args) -> ExperimentConfig:
    train = replace(LAB_TRAIN, threads=args.threads, device=args.device)
    budget = dict(train=train, subset=args.subset, seed=args.seed, repeats=args.repeats,
                  epochs=args.epochs, minutes=None if args.epochs else args.minutes)
    current = get_recipe(args.current).aug if args.current else AugmentConfig()
    if args.question == "strong-vs-none":  # the lab recipe's own check: does it separate these?
        return ExperimentConfig((Arm("no augmentation", NO_AUGMENT), Arm("current settings", current)), **budget)
    return QUESTIONS[args.question](current, **budget)


def result_json(result, command: list[str]) -> dict:
    return {"command": " ".join(command), "config": result.config.to_dict(),
            "eval_data": result.eval_source, "data_note": result.data_note,
            "meaningless": result.meaningless, "device": result.device,
            "planned_epochs": result.planned_epochs, "table": result.table(),
            "verdicts": result.verdicts(), "warnings": result.warnings(),
            "runs": [{"arm": r.arm, "seed": r.seed, "epochs": r.epochs, "state": r.state,
                      "accuracy": r.accuracy.value, "ci": [r.accuracy.lo, r.accuracy.hi],
                      "wall_time_s": round(r.wall_time_s, 1), "images_per_s": round(r.images_per_s, 1),
                      "tracker_run": r.run_name, "checkpoint": r.checkpoint, "history": r.history,
                      # per-image correctness, bit-packed, so the paired test can be recomputed
                      "correct_packbits_hex": np.packbits(r.correct).tobytes().hex()}
                     for r in result.runs],
            **run_info(_torch_device(result.device))}


def _torch_device(label: str):
    import torch

    return torch.device("cpu" if label.startswith("CPU") or not label else "cuda")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cifar_s9.experiments.cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--question", choices=[*QUESTIONS, "strong-vs-none"], default="no-dropout")
    p.add_argument("--current", help="recipe whose augmentation is 'current settings' (default: AugmentConfig())")
    p.add_argument("--minutes", type=float, default=3.0, help="budget per arm (turned into epochs once)")
    p.add_argument("--epochs", type=int, help="a fixed epoch count instead of --minutes")
    p.add_argument("--subset", type=int, default=LAB_TRAIN.subset, help="training images per run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1, help="seeds per arm")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--data-dir", help="image folder with train/ (default: torchvision's download)")
    p.add_argument("--no-track", action="store_true", help="do not record the runs in the tracker")
    p.add_argument("--out", type=Path, help="write the result here as JSON")
    args = p.parse_args(argv)
    try:
        data = experiment_data(args.data_dir)
        config = build_config(args)
        result = run_experiment(config, data.train, data.evaluation, data_note=data.note,
                                meaningless=data.demo_only, track=not args.no_track,
                                progress=_print_progress)
    except (DatasetUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for row in result.table():
        print(f"{row['arm']:<22} {100 * row['accuracy']:5.1f}%  (95% CI {100 * row['ci_low']:.1f} to "
              f"{100 * row['ci_high']:.1f})  {row['epochs']} epochs  {row['wall_time_s']:.0f} s  "
              f"{row['images_per_s']:.0f} img/s")
    for line in result.verdicts() + result.warnings():
        print(line)
    if args.out:
        write_json_atomic(args.out, result_json(result, ["python -m cifar_s9.experiments.cli", *(argv or sys.argv[1:])]))
    return 0


def _print_progress(message, run, event) -> None:
    from ..train.events import EpochEvent, StepEvent

    if isinstance(event, EpochEvent):
        acc = f"{100 * event.eval_acc:.1f}%" if event.eval_acc is not None else "-"
        print(f"  {message}: epoch {event.epoch}/{event.epochs} loss {event.train_loss:.3f} val {acc} "
              f"{event.images_per_s:.0f} img/s {event.epoch_time_s:.1f} s", flush=True)
    elif not isinstance(event, StepEvent):
        print(message, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
