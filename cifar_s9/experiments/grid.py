"""The measured answer to "does Coarse Dropout help?" at a budget no visitor can run in the app:
a grid of Coarse Dropout settings (holes x hole size, plus off), each trained once with the lab's
recipe on the training images minus the validation split, and all scored on the same validation
images, so every cell is compared with "off" image by image (paired interval and McNemar).

    python -m cifar_s9.experiments.grid run --data-dir ../shared/data/cifar10-jpeg --out training/cutout_grid
    python -m cifar_s9.experiments.grid summary --out training/cutout_grid

A cell is one training run that checkpoints every epoch (`<out>/resume/<cell>.pt`), so the grid
spreads over sittings: `run` again continues the unfinished cell, skips the finished ones, and
writes each finished cell as `<out>/cells/<cell>.json` (per-image correctness, bit-packed; no
weights). Two `run`s at once (one thread each, twice the images a second on two cores: the lab's
batches of 64 keep a second torch thread idle) share the cells: each skips a cell the other holds.
`summary` writes `<out>/grid.json`, which the Experiments tab shows as a heatmap.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import stats
from ..data.augment import AugmentConfig
from ..data.cifar import Split, ValidationSpec, carve_validation
from ..records.checkpoint import write_json_atomic
from ..train.recipes import LAB_TRAIN
from ..train.trainer import TrainConfig

OFF = "off"


@dataclass(frozen=True)
class Cell:
    holes: int      # 0: Coarse Dropout off
    size: int       # hole side in pixels

    @property
    def name(self) -> str:
        return OFF if self.holes == 0 else f"{self.holes}x{self.size}px"

    def aug(self, base: AugmentConfig) -> AugmentConfig:
        if self.holes == 0:
            return replace(base, dropout_p=0.0)
        return replace(base, dropout_p=max(base.dropout_p, 0.5), holes_min=self.holes, holes_max=self.holes,
                       hole_height_min=self.size, hole_height_max=self.size,
                       hole_width_min=self.size, hole_width_max=self.size)


@dataclass(frozen=True)
class DropoutGrid:
    holes: tuple[int, ...] = (1, 2)
    sizes: tuple[int, ...] = (8, 16)
    epochs: int = 40                    # what a visitor's 3-minute arm (about 11 epochs of 1,000) never reaches
    subset: int | None = None           # None: every training image outside the validation split
    seed: int = 0                       # the same seed, so the same batches, in every cell
    train: TrainConfig = LAB_TRAIN      # the Experiments tab's recipe, at a long budget
    base_aug: AugmentConfig = AugmentConfig()  # the app's default settings; only Coarse Dropout varies
    validation: ValidationSpec = ValidationSpec()

    def cells(self) -> list[Cell]:
        return [Cell(0, 0)] + [Cell(h, s) for h in self.holes for s in self.sizes]

    def run_config(self, threads: int) -> TrainConfig:
        return replace(self.train, epochs=self.epochs, subset=self.subset, seed=self.seed,
                       threads=threads, eval_every=5, val_per_class=0)

    def to_dict(self) -> dict:
        return {"holes": list(self.holes), "sizes": list(self.sizes), "epochs": self.epochs,
                "subset": self.subset, "seed": self.seed, "train": self.train.to_dict(),
                "base_aug": self.base_aug.to_dict(), "validation": asdict(self.validation)}


# ---------------------------------------------------------------- running

def run_cell(grid: DropoutGrid, cell: Cell, train: Split, evaluation: Split, out: Path,
             threads: int = 2, stop: threading.Event | None = None, callback=None) -> dict | None:
    """Train one cell (continuing its resume file if there is one) and write its result; None
    when stopped before the end (the resume file then holds the last finished epoch)."""
    from ..analysis.evaluate import predict_logits
    from ..model.net import get_config
    from ..train.trainer import Trainer

    resume = out / "resume" / f"{cell.name}.pt"
    resume.parent.mkdir(parents=True, exist_ok=True)
    curve = evaluation.subset(500, seed=0)
    if resume.is_file():
        trainer = Trainer.resume(resume, train, curve, eval_split="validation")
    else:
        trainer = Trainer(get_config("default"), grid.run_config(threads), cell.aug(grid.base_aug),
                          train, curve, eval_split="validation")
    if callback is not None:
        trainer.callback = callback
    start = time.perf_counter()
    trainer.fit(stop or threading.Event(), checkpoint=resume)
    if trainer.epoch < trainer.epochs:
        return None
    correct = predict_logits(trainer.eval_model, evaluation.images, trainer.device).argmax(1).numpy() \
        == evaluation.labels
    acc = stats.accuracy(correct)
    result = {"cell": cell.name, "holes": cell.holes, "size": cell.size, "epochs": trainer.epoch,
              "train_images": len(train), "eval_images": len(evaluation), "eval_data": evaluation.source,
              "accuracy": acc.value, "ci": [acc.lo, acc.hi], "aug": cell.aug(grid.base_aug).to_dict(),
              "train_config": trainer.cfg.to_dict(), "wall_time_s_this_sitting": round(time.perf_counter() - start, 1),
              "history": trainer.history, "correct_packbits_hex": np.packbits(correct).tobytes().hex()}
    write_json_atomic(out / "cells" / f"{cell.name}.json", result)
    resume.unlink(missing_ok=True)  # the result is written: the weights are not kept
    return result


def run_grid(grid: DropoutGrid, train: Split, out: Path, threads: int = 2,
             stop: threading.Event | None = None, callback=None) -> list[str]:
    """Run the unfinished cells in order; returns the names of the cells finished so far."""
    train, evaluation = carve_validation(train, grid.validation)
    write_json_atomic(out / "grid_config.json", grid.to_dict())
    for cell in grid.cells():
        with cell_lock(out, cell) as mine:
            # a cell another `run` holds is skipped: two runs of one thread each share the grid
            if not mine or (out / "cells" / f"{cell.name}.json").is_file():
                continue
            if run_cell(grid, cell, train, evaluation, out, threads, stop, callback) is None:
                break
    return sorted(p.stem for p in (out / "cells").glob("*.json"))


@contextmanager
def cell_lock(out: Path, cell: Cell):
    """Yields True while this process holds the cell (an advisory lock the system drops when the
    process ends, however it ends), False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: one `run` at a time
        yield True
        return
    path = out / "resume" / f"{cell.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------- the summary

def correct_of(cell: dict) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(cell["correct_packbits_hex"]), np.uint8))
    return bits[: cell["eval_images"]].astype(bool)


def summarize(cells: list[dict]) -> dict:
    """Each finished cell against "off" on the same validation images: accuracy with its Wilson
    interval, and the paired difference in points with its interval and McNemar p-value."""
    by_name = {c["cell"]: c for c in cells}
    off = by_name.get(OFF)
    rows = []
    for c in sorted(cells, key=lambda c: (c["holes"], c["size"])):
        row = {"cell": c["cell"], "holes": c["holes"], "size": c["size"], "epochs": c["epochs"],
               "train_images": c["train_images"], "eval_images": c["eval_images"],
               "accuracy": c["accuracy"], "ci": c["ci"]}
        if off is not None and c is not off:
            d = stats.paired_difference(correct_of(off), correct_of(c))
            row.update(diff_points=round(100 * d.diff, 2), diff_ci_points=[round(100 * d.lo, 2), round(100 * d.hi, 2)],
                       p_value=d.p_value, detected=d.detected)
        rows.append(row)
    return {"rows": rows, "complete_against_off": off is not None}


def sentence(row: dict) -> str:
    """One finished cell in words, e.g. for the Experiments tab beside the visitor's own runs."""
    if "diff_points" not in row:
        return f"Coarse Dropout off: {100 * row['accuracy']:.1f}% on {row['eval_images']:,} validation images."
    lo, hi = row["diff_ci_points"]
    return (f"At {row['epochs']} epochs on {row['train_images']:,} images, {setting_name(row)} gave "
            f"{row['diff_points']:+.1f} points against off (95% CI {lo:+.1f} to {hi:+.1f}; McNemar "
            f"{stats.format_p(row['p_value'])}), scored on {row['eval_images']:,} validation images.")


def verdict(rows: list[dict]) -> str:
    """The grid's answer in one sentence, by `stats.detects`: a setting differs from off when its
    paired 95% interval excludes 0 and McNemar's p < 0.05."""
    settings = [r for r in rows if "diff_points" in r]
    found = [r for r in settings if stats.detects(*r["diff_ci_points"], r["p_value"])]
    if not found:
        contain_zero = all(lo <= 0 <= hi for lo, hi in (r["diff_ci_points"] for r in settings))
        why = ("every interval contains 0" if contain_zero else
               "no interval that excludes 0 has McNemar p < 0.05 as well")
        return f"No Coarse Dropout setting of the {len(settings)} measured differs detectably from off at this budget: {why}."
    named = ", ".join(f"{setting_name(r)} ({r['diff_points']:+.1f} points)"
                      for r in sorted(found, key=lambda r: -r["diff_points"]))
    return f"{len(found)} of the {len(settings)} settings measured differ detectably from off: {named}."


def setting_name(row: dict) -> str:
    return f"{row['holes']} hole{'s' if row['holes'] > 1 else ''} of {row['size']} px"


def load_cells(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((Path(out) / "cells").glob("*.json"))]


# ---------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cifar_s9.experiments.grid", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("run", "summary"))
    p.add_argument("--out", type=Path, default=Path("training/cutout_grid"))
    p.add_argument("--data-dir", help="image folder with train/ (default: torchvision's download)")
    p.add_argument("--epochs", type=int, default=DropoutGrid.epochs)
    p.add_argument("--subset", type=int, help="training images per cell (default: all)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.command == "run":
        from ..data.cifar import load_split

        grid = DropoutGrid(epochs=args.epochs, subset=args.subset)
        try:
            done = run_grid(grid, load_split("train", args.data_dir), args.out, args.threads,
                            callback=_print_epoch)
        except KeyboardInterrupt:
            print("\nstopped; run again to continue the unfinished cell", file=sys.stderr)
            return 130
        print(f"finished cells: {', '.join(done) or 'none'}")
    summary = summarize(load_cells(args.out))
    write_json_atomic(args.out / "grid.json", summary)
    for row in summary["rows"]:
        print(sentence(row))
    return 0


def _print_epoch(event) -> None:
    from ..train.events import EpochEvent

    if isinstance(event, EpochEvent):
        print(json.dumps({k: v for k, v in asdict(event).items() if not isinstance(v, (list, dict))}),
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
