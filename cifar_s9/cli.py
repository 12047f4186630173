"""Command line: `python -m cifar_s9 summary | train | evaluate | finalize` (also the `cifar-s9` script)."""
from __future__ import annotations

import argparse
import json
import sys
import threading
from dataclasses import fields, replace
from pathlib import Path

from .records.checkpoint import CheckpointError, load_weights, save_weights
from .records.checkpoint import load_resume
from .errors import UserError
from .data.cifar import (DatasetUnavailable, ValidationSpec, carve_validation, indices_digest, load_split,
                   validation_indices)
from .records.finalize import JPEG_TRAIN_DATA
from .data.app_data import load_sample
from .model.net import ALL_PRESETS, build_model
from .paths import DEFAULT_WEIGHTS  # re-exported: scripts and tests import it from here
from .records.card import model_card
from .model.receptive_field import model_receptive_field
from .train.recipes import RECIPES, get_recipe
from .model.rules import check_rules, rules_summary
from .experiments.tracker import chain, final_metrics, track_trainer


# ---------------------------------------------------------------- summary
def cmd_summary(args) -> int:
    from torchinfo import summary

    model = build_model(args.preset)
    print(summary(model, input_size=(1, 3, 32, 32), depth=4, verbose=0,
                  col_names=("output_size", "num_params")))
    table, _ = model_receptive_field(model)
    print(f"\n{'layer':<10} {'k':>2} {'s':>2} {'d':>2} {'jump':>5} {'RF':>4} {'out':>4}")
    for r in table:
        print(f"{r.name:<10} {r.kernel:>2} {r.stride:>2} {r.dilation:>2} {r.jump:>5} "
              f"{r.receptive_field:>4} {r.output_size:>4}")
    print()
    for r in check_rules(model):
        print(f"[{'PASS' if r.passed else 'FAIL'}] {r.rule:<34} measured {r.measured}  (required {r.required})")
    result = rules_summary(model)
    if args.json:
        print(json.dumps({"preset": args.preset, **result}))
    return 0 if result["ok"] else 1


# ---------------------------------------------------------------- train
# Flags whose names predate the generated ones; every other TrainConfig field is --field-name.
FLAG_NAMES = {"ema_decay": "ema", "mixup_alpha": "mixup", "time_budget_s": "time-budget",
              "teachers": "teacher"}
FLAG_HELP = {"init_weights": "start from these weights (.safetensors), e.g. to fine-tune",
             "teachers": "distil from this network (.safetensors); repeat for an ensemble",
             "logit_bank": "distil from a bank of stored teacher logits (python -m cifar_s9 teacher-bank); "
                           "its views replace the recipe's augmentation",
             "precision": "auto: bf16 on CUDA (and on CPUs where it was measured to hold accuracy)"}


def add_train_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, typed from its annotation: a new setting needs no CLI code.
    Every flag defaults to None, meaning "the recipe's value"."""
    import typing
    from .train.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        flag = "--" + FLAG_NAMES.get(f.name, f.name.replace("_", "-"))
        hint, origin = hints[f.name], typing.get_origin(hints[f.name])
        kwargs = {"dest": f.name, "default": None, "help": FLAG_HELP.get(f.name)}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin is typing.Literal:
            kwargs["choices"] = typing.get_args(hint)
        elif origin is tuple:  # repeated: --teacher a --teacher b
            kwargs.update(action="append", metavar="WEIGHTS")
        else:  # int, float, str, or one of them | None
            kwargs["type"] = next(a for a in (*typing.get_args(hint), hint) if a is not type(None))
        parser.add_argument(flag, **kwargs)


def _train_config(args, recipe):
    from .train.config import TrainConfig

    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if getattr(args, f.name, None) is not None}
    if "teachers" in overrides:
        overrides["teachers"] = tuple(overrides["teachers"])
    if args.epochs is not None and args.time_budget_s is None:
        overrides["time_budget_s"] = None  # an explicit epoch count wins over the recipe's budget
    return replace(recipe.train, **overrides)


class ProgressPrinter:
    """tqdm bar over steps plus a fixed-width table row per epoch."""

    def __init__(self, total_steps: int, done_steps: int):
        from tqdm import tqdm
        self.bar = tqdm(total=total_steps, initial=done_steps, unit="step", dynamic_ncols=True,
                        file=sys.stderr)
        self.bar.write(f"{'epoch':>5} {'train_loss':>10} {'train_acc':>9} {'eval_loss':>9} "
                       f"{'eval_acc':>8} {'lr':>8} {'img/s':>7} {'time_s':>7}")

    def __call__(self, event) -> None:
        from .train.events import EpochEvent
        if isinstance(event, EpochEvent):
            fmt = lambda v, f: format(v, f) if v is not None else "-"  # noqa: E731
            self.bar.write(f"{event.epoch:>5} {event.train_loss:>10.4f} {event.train_acc:>9.4f} "
                           f"{fmt(event.eval_loss, '>9.4f'):>9} {fmt(event.eval_acc, '>8.4f'):>8} "
                           f"{event.lr:>8.4f} {event.images_per_s:>7.0f} {event.epoch_time_s:>7.1f}")
        else:
            if self.bar.total != event.total_steps:  # a time budget re-planned the run
                self.bar.total = event.total_steps
            self.bar.n = event.step
            self.bar.set_postfix(loss=f"{event.loss:.3f}", lr=f"{event.lr:.3g}",
                                 img_s=f"{event.images_per_s:.0f}", refresh=True)

    def close(self) -> None:
        self.bar.close()


# what a resumed run may change: how long it runs and where; everything else is the resume
# file's own config (a new lr or augmentation would be another run than the one it continues)
RESUME_OVERRIDES = ("epochs", "device", "workers", "threads")


def _resume_overrides(args) -> dict:
    """The flags given with --resume, refused by name when one would be silently ignored."""
    from .train.config import TrainConfig

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    ignored = [f"--{FLAG_NAMES.get(name, name.replace('_', '-'))}" for name in given if name not in RESUME_OVERRIDES]
    if args.preset is not None:
        ignored.insert(0, "--preset")
    if ignored:
        allowed = ", ".join(f"--{name}" for name in RESUME_OVERRIDES)
        raise UserError(f"{', '.join(ignored)} cannot change a resumed run (it keeps the resume file's "
                        f"settings); with --resume only {allowed} apply")
    return given


def cmd_train(args) -> int:
    from .analysis.evaluate import evaluate
    from .model.net import get_config
    from .train.config import TrainConfig
    from .train.trainer import Trainer

    recipe = get_recipe(args.recipe)
    out = Path(args.out or f"runs/{args.recipe}/model.safetensors")
    resume_path = Path(args.checkpoint or out.with_name("resume.pt"))
    train_split = load_split("train", args.data_dir)
    overrides = _resume_overrides(args) if args.resume else {}
    cfg = _train_config(args, recipe) if not args.resume else \
        TrainConfig.from_dict({**load_resume(Path(args.resume))["train_config"], **overrides})
    if cfg.val_per_class:  # choices are made on held-back training images; the test set stays unseen
        validation = ValidationSpec(cfg.val_per_class, cfg.val_seed)
        val_digest = indices_digest(validation_indices(train_split.labels, validation))
        train_split, test_split = carve_validation(train_split, validation)
        scored = "validation"
    else:
        validation = None
        test_split = None if args.no_test else load_split("test", args.data_dir)
        scored = "test"
    if args.resume:
        trainer = Trainer.resume(Path(args.resume), train_split, test_split, eval_split=scored, **overrides)
    else:
        trainer = Trainer(get_config(args.preset or recipe.preset), cfg, recipe.aug, train_split,
                          test_split, eval_split=scored)
    printer = ProgressPrinter(trainer.total_steps, trainer.epoch * trainer.batches.batches_per_epoch)
    logger = None if args.no_track else track_trainer(  # the run tracker (runs/tracker, trackio)
        trainer, f"cli-{args.recipe}", "cli", out, recipe=args.recipe, preset=args.preset or recipe.preset)
    trainer.callback = chain(printer, logger)
    print(f"training {trainer.model.num_params():,} parameters on {trainer.device}, "
          f"{len(trainer.train_split)} images, {trainer.epochs} epochs; resume file {resume_path}",
          file=sys.stderr)
    stop = threading.Event()
    try:
        trainer.fit(stop, checkpoint=resume_path)
    except KeyboardInterrupt:
        printer.close()
        if logger is not None:
            logger.finish(state="stopped")
        print(f"\nstopped; continue with --resume {resume_path}", file=sys.stderr)
        return 130
    printer.close()
    if trainer.epoch < trainer.epochs:
        if logger is not None:
            logger.finish(state="stopped")
        return 0
    accuracy = {}
    if test_split is not None:
        for tta in (False, True):
            accuracy["tta" if tta else "plain"] = evaluate(trainer.eval_model, test_split,
                                                           trainer.device, tta=tta).accuracy
    validation_card = ({**validation.to_dict(), "n": len(test_split), "indices_sha256": val_digest}
                       if validation is not None else None)
    card = model_card(trainer, train_split.source, args.preset or recipe.preset, recipe=args.recipe,
                      test=test_split, test_acc=accuracy, validation=validation_card)
    save_weights(trainer.eval_model, out, card)
    if logger is not None:
        logger.finish(final_metrics(card))
    print(json.dumps({"weights": str(out), "epochs": trainer.epoch, "wall_time_s": card["wall_time_s"],
                      "accuracy": card["accuracy"]}))
    return 0


# ---------------------------------------------------------------- evaluate
def cmd_evaluate(args) -> int:
    if args.ensemble:
        return _evaluate_ensemble(args)
    from .analysis.evaluate import evaluate

    model, card = load_weights(Path(args.weights))
    split = load_sample() if args.sample else load_split("test", args.data_dir)
    ev = evaluate(model, split, "cpu", tta=args.tta)
    print(f"{Path(args.weights).name}: accuracy {ev.accuracy:.4f} on {ev.n} images of {split.source}"
          f"{f' with {args.tta} TTA' if args.tta else ''}")
    for name, acc in ev.per_class_accuracy.items():
        print(f"  {name:<11} {acc:.4f}")
    if args.json:
        print(json.dumps({"accuracy": ev.accuracy, "n": ev.n, "params": model.num_params(),
                          "tta": args.tta, "loss": ev.loss, "data": split.source,
                          "per_class_accuracy": ev.per_class_accuracy}))
    return 0


def _evaluate_ensemble(args) -> int:
    """A distillation teacher's accuracy: each network alone, then their softmax average. An
    ensemble breaks the 200K rule, so it only teaches; this measures what it knows."""
    from .analysis.evaluate import evaluate_ensemble

    models = [load_weights(Path(w))[0] for w in args.ensemble]
    split = load_sample() if args.sample else load_split("test", args.data_dir)
    ev = evaluate_ensemble(models, split, "cpu", tta=args.tta)
    for path, acc in zip(args.ensemble, ev.members):
        print(f"{path}: {acc:.4f}")
    print(f"ensemble of {len(models)}: {ev.accuracy:.4f} on {ev.n} images of {split.source}"
          f"{f' with {args.tta} TTA' if args.tta else ''}")
    if args.json:
        print(json.dumps({"ensemble_accuracy": ev.accuracy, "n": ev.n, "tta": args.tta, "data": split.source,
                          "members": [{"weights": w, "accuracy": a} for w, a in zip(args.ensemble, ev.members)]}))
    return 0


# ---------------------------------------------------------------- finalize
def cmd_finalize(args) -> int:
    from .records.finalize import FinalizeRequest, finalize

    base_card = None
    if args.base_card:
        try:
            base_card = json.loads(Path(args.base_card).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the base card {args.base_card}: {exc}") from None
    card = finalize(FinalizeRequest(
        weights=Path(args.weights), data_dir=args.data_dir, clean_dir=args.clean_dir,
        hardware=args.hardware, out=Path(args.out), curves=Path(args.curves) if args.curves else None,
        base_card=base_card, stage_names=tuple(args.stage_names), train_acc_label=args.train_acc_label,
        train_data=args.train_data))
    summary = {k: {m: v[m] for m in ("plain", "tta", "n")} for k, v in card["accuracy"].items()}
    print(json.dumps({"weights": args.out, "curves": args.curves or None, "accuracy": summary}))
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cifar-s9", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("summary", help="architecture, receptive field and rule checklist")
    s.add_argument("--preset", default="default", choices=list(ALL_PRESETS))
    s.add_argument("--json", action="store_true", help="last line: a JSON object")
    s.set_defaults(func=cmd_summary)

    t = sub.add_parser("train", help="train a recipe, checkpointing every epoch")
    t.add_argument("--recipe", default="full", choices=sorted(RECIPES))
    t.add_argument("--preset", choices=list(ALL_PRESETS),
                   help="override the recipe's preset (wide: a 7.8M-parameter distillation teacher)")
    t.add_argument("--data-dir", help="image folder with train/ and test/ (default: torchvision download)")
    t.add_argument("--out", help="weights path (.safetensors); default runs/<recipe>/model.safetensors")
    t.add_argument("--checkpoint", help="resume file written every epoch; default beside --out")
    t.add_argument("--resume", help="continue from this resume file")
    t.add_argument("--no-test", action="store_true", help="skip test-set evaluation")
    t.add_argument("--no-track", action="store_true",
                   help="do not record this run in the run tracker (runs/tracker; see docs/experiments.md)")
    add_train_config_flags(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="test accuracy of a checkpoint, or of an ensemble (teacher)")
    which = e.add_mutually_exclusive_group()
    which.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    which.add_argument("--ensemble", nargs="+", metavar="WEIGHTS",
                       help="each checkpoint alone and their softmax average (a distillation teacher)")
    data = e.add_mutually_exclusive_group()
    data.add_argument("--data-dir", help="DIR/test if present, else DIR as class folders")
    data.add_argument("--sample", action="store_true",
                      help="the 500 CIFAR-10 test images bundled with the package (assets/test_sample.npz)")
    e.add_argument("--tta", action="store_const", const="flip", default=False,
                   help="average with the horizontally flipped image")
    e.add_argument("--tta-shift", dest="tta", action="store_const", const="flip-shift",
                   help="six views: flips of the image and of its one-pixel diagonal shifts")
    e.add_argument("--json", action="store_true", help="last line: a JSON object")
    e.set_defaults(func=cmd_evaluate)

    f = sub.add_parser("finalize", help="measure a finished run on the CPU, write its model card and curves")
    f.add_argument("weights", help="the finished run's .safetensors (its .json card beside it)")
    f.add_argument("--data-dir", required=True, help="test accuracy on DIR/test (or DIR as class folders)")
    f.add_argument("--clean-dir", help="a second test folder, recorded as clean_check")
    f.add_argument("--hardware", required=True, help="where the epochs ran, in words")
    f.add_argument("--out", default="weights/default.safetensors", help="where the checkpoint and card go")
    f.add_argument("--curves", default="assets/training_curves.png", help="PNG figure; '' draws none")
    f.add_argument("--train-data", default=JPEG_TRAIN_DATA, help="what the network was trained on, in words")
    f.add_argument("--train-acc-label", default="train (augmented)",
                   help="legend of the training accuracy, e.g. what it counts under mixup")
    f.add_argument("--base-card", help="card (.json) of the run these weights were fine-tuned from: "
                                       "its history and wall time become the first stage")
    f.add_argument("--stage-names", nargs=2, default=("full", "distill"), metavar=("BASE", "FINE_TUNE"),
                   help="stage names in the card; BASE is unused when the base card is chained already")
    f.set_defaults(func=cmd_finalize)

    from .teacher import cli as teacher_bank  # light: torch and numpy only
    b = sub.add_parser("teacher-bank", help="train airbench teachers (validation split held back) "
                                            "and write their logit bank for train --logit-bank")
    teacher_bank.add_arguments(b)
    b.set_defaults(func=teacher_bank.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DatasetUnavailable, CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
