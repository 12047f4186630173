"""Turn a finished training run into the shipped checkpoint: measure it, write its model card,
draw its training curves.

    python scripts/finalize_weights.py runs/lr04/model.safetensors \
        --data-dir ../shared/data/cifar10-jpeg --clean-dir ../shared/data/cifar10-clean-check \
        --hardware "..." --out weights/default.safetensors --curves assets/training_curves.png

Every accuracy in the card is measured here, on this machine's CPU, by the same `evaluate`
function the CLI uses.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cifar_s9.checkpoint import load_weights, save_weights  # noqa: E402
from cifar_s9.data import load_split  # noqa: E402
from cifar_s9.evaluate import evaluate  # noqa: E402
from cifar_s9.provenance import chain_cards, git_commit, stage_starts  # noqa: E402
from cifar_s9.receptive_field import model_receptive_field  # noqa: E402
from cifar_s9.rules import rules_summary  # noqa: E402


def measure(model, split) -> dict:
    plain, tta = evaluate(model, split, "cpu"), evaluate(model, split, "cpu", tta=True)
    return {"data": split.source, "n": plain.n, "plain": round(plain.accuracy, 4),
            "tta": round(tta.accuracy, 4), "per_class_plain": plain.per_class_accuracy}


def plot_curves(history: list[dict], path: Path, title: str,
                train_acc_label: str = "train (augmented)") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    starts = stage_starts(history)

    def series(key: str) -> tuple[list[float], list[float]]:  # test values exist every eval_every epochs
        points = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
        points += [(start - 0.5, float("nan")) for start in starts]  # no line across stages
        points.sort()
        return [e for e, _ in points], [v for _, v in points]

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(*series("train_loss"), label="train (augmented, smoothed)")
    ax_loss.plot(*series("test_loss"), label="test")
    ax_acc.plot(*series("train_acc"), label=train_acc_label)
    ax_acc.plot(*series("test_acc"), label="test (EMA weights)")
    for epoch in starts:  # a fine-tune's loss is another loss (distillation): mark where it starts
        for ax in (ax_loss, ax_acc):
            ax.axvline(epoch - 0.5, color="grey", linestyle=":", linewidth=1)
        ax_acc.annotate(f"{history[epoch - 1].get('stage', '')} ", (epoch - 1, ax_acc.get_ylim()[0]),
                        rotation=90, ha="right", va="bottom", fontsize=8, color="grey")
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("weights")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--clean-dir", required=True)
    p.add_argument("--hardware", required=True, help="where the epochs ran, in words")
    p.add_argument("--out", default="weights/default.safetensors")
    p.add_argument("--curves", default="assets/training_curves.png")
    p.add_argument("--train-acc-label", default="train (augmented)",
                   help="legend of the training accuracy, e.g. what it counts under mixup")
    p.add_argument("--base-card", help="card (.json) of the run these weights were fine-tuned from: "
                                       "its history and wall time become the first stage")
    p.add_argument("--stage-names", nargs=2, default=("full", "distill"), metavar=("BASE", "FINE_TUNE"),
                   help="stage names in the card; BASE is unused when the base card is chained already")
    args = p.parse_args()

    model, card = load_weights(Path(args.weights))
    if args.base_card:
        card = chain_cards(json.loads(Path(args.base_card).read_text()), card, *args.stage_names)
    accuracy = {"test": measure(model, load_split("test", args.data_dir)),
                "clean_check": measure(model, load_split("test", args.clean_dir))}
    rules = rules_summary(model)
    card = {**card, "accuracy": accuracy, "hardware": args.hardware, "measured_on": "CPU, fp32",
            "receptive_field": model_receptive_field(model)[1], "rules_ok": rules["ok"],
            "code_commit_at_export": git_commit(),
            "train_data": {"source": "offline JPEG copy of CIFAR-10 (quality 75), 46,000 training "
                                     "images (4,000 held back)", "n": 46000}}
    save_weights(model, Path(args.out), card)
    plot_curves(card["history"], Path(args.curves),
                f"{card.get('preset', 'default')} preset, recipe {card.get('recipe')}: "
                f"{accuracy['test']['plain']:.2%} test", args.train_acc_label)
    print({k: {m: v[m] for m in ("plain", "tta", "n")} for k, v in accuracy.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
