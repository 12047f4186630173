"""Fast recipe benchmark: train the `fast` recipe on this machine's CPU, then report test accuracy,
training wall time and throughput, next to the `seed` preset's throughput measured in the same run.

    python bench/fast_recipe.py --data-dir ../shared/data/cifar10-jpeg

Target: >= 85% test accuracy (JPEG copy) within 15 minutes of training on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from cifar_s9.checkpoint import save_weights  # noqa: E402
from cifar_s9.data import load_split  # noqa: E402
from cifar_s9.evaluate import evaluate  # noqa: E402
from cifar_s9.model import get_config  # noqa: E402
from cifar_s9.provenance import run_info  # noqa: E402
from cifar_s9.recipes import get_recipe  # noqa: E402
from cifar_s9.train import EpochEvent, Trainer  # noqa: E402


def seed_throughput(recipe, train_split, steps: int = 8) -> float:
    """Images/s of the seed preset under the fast recipe's batch size, data pipeline included."""
    from dataclasses import replace
    probe = Trainer(get_config("seed"), replace(recipe.train, time_budget_s=None, epochs=1),
                    recipe.aug, train_split.subset(recipe.train.batch_size * (steps + 2)))
    from cifar_s9.loader import batch_stream
    stream = iter(batch_stream(probe.batches, 0, 1, 0, False))
    x, y = next(stream)
    probe._step(probe.model, probe.optimizer, x, y, mixup=False)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        x, y = next(stream)
        probe._step(probe.model, probe.optimizer, x, y, mixup=False)
    return steps * recipe.train.batch_size / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", default="runs/fast/model.safetensors")
    args = parser.parse_args()
    recipe = get_recipe("fast")
    train_split, test_split = load_split("train", args.data_dir), load_split("test", args.data_dir)
    epochs: list[EpochEvent] = []

    def report(event) -> None:
        if isinstance(event, EpochEvent):
            epochs.append(event)
            print(f"epoch {event.epoch}/{event.epochs} loss {event.train_loss:.3f} "
                  f"acc {event.train_acc:.3f} {event.images_per_s:.0f} img/s {event.epoch_time_s:.0f}s",
                  flush=True)

    start = time.perf_counter()
    trainer = Trainer(get_config(recipe.preset), recipe.train, recipe.aug, train_split, test_split,
                      callback=report)
    trainer.fit()
    train_wall = time.perf_counter() - start  # calibration + training + the final in-loop eval
    ev = evaluate(trainer.eval_model, test_split, "cpu")
    ev_tta = evaluate(trainer.eval_model, test_split, "cpu", tta=True)  # after the clock stopped
    ev_raw = evaluate(trainer.model, test_split, "cpu")  # the live weights, when the recipe uses an EMA
    default_ips = sum(e.images_per_s for e in epochs) / len(epochs)
    seed_ips = seed_throughput(recipe, train_split)
    save_weights(trainer.eval_model, Path(args.out),
                 {"recipe": "fast", "epochs": trainer.epoch, "wall_time_s": round(train_wall, 1),
                  "accuracy": {"test": {"data": test_split.source, "n": ev.n, "plain": ev.accuracy}},
                  "history": trainer.history, **run_info(trainer.device)})
    result = {"recipe": "fast", "accuracy": round(ev.accuracy, 4),
              "accuracy_flip_tta": round(ev_tta.accuracy, 4),
              "accuracy_live_weights": round(ev_raw.accuracy, 4), "n": ev.n, "epochs": trainer.epoch,
              "train_wall_s": round(train_wall, 1), "default_images_per_s": round(default_ips, 1),
              "seed_images_per_s": round(seed_ips, 1), "speed_ratio": round(default_ips / seed_ips, 2),
              "threads": torch.get_num_threads(), "target_met": ev.accuracy >= 0.85 and train_wall <= 900,
              "target_met_with_tta": ev_tta.accuracy >= 0.85 and train_wall <= 900}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
