"""Turn a finished training run into a shippable checkpoint: measure it, write its model card,
draw its training curves (`python -m cifar_s9 finalize`).

Every accuracy in the card is measured here, on this machine's CPU in fp32, by the same
`evaluate` function the `evaluate` command uses, so `evaluate --json` reproduces the card.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import load_weights, save_weights
from ..data.cifar import Split, load_split
from ..analysis.evaluate import evaluate
from . import provenance
from .provenance import chain_cards, stage_starts
from ..model.receptive_field import model_receptive_field
from ..model.rules import rules_summary
from ..train.events import upgrade_history

# What the shipped networks were trained on; a card from `train` only knows the folder's path.
JPEG_TRAIN_DATA = "offline JPEG copy of CIFAR-10 (quality 75), 46,000 training images (4,000 held back)"


@dataclass(frozen=True)
class FinalizeRequest:
    weights: Path                    # the finished run's .safetensors (its card beside it)
    data_dir: str                    # its test/ split is the card's "test" accuracy
    hardware: str                    # where the epochs ran, in words
    out: Path = Path("weights/default.safetensors")
    curves: Path | None = Path("assets/training_curves.png")  # None: draw no figure
    clean_dir: str | None = None     # a second test folder, reported as "clean_check"
    base_card: dict | None = None    # card of the run these weights were fine-tuned from
    stage_names: tuple[str, str] = ("full", "distill")  # (base, fine-tune) names in the card
    train_data: str = JPEG_TRAIN_DATA
    train_acc_label: str = "train (augmented)"  # legend of the training accuracy (e.g. under mixup)


def measure(model: torch.nn.Module, split: Split) -> dict:
    """Plain and flip-TTA accuracy on `split`, rounded as the card records them."""
    plain, tta = evaluate(model, split, "cpu"), evaluate(model, split, "cpu", tta=True)
    return {"data": split.source, "n": plain.n, "plain": round(plain.accuracy, 4),
            "tta": round(tta.accuracy, 4), "per_class_plain": plain.per_class_accuracy}


def finalize(req: FinalizeRequest) -> dict:
    """Measure `req.weights`, write them with the finished card to `req.out` (and the curves to
    `req.curves`); returns the card."""
    model, card = load_weights(req.weights)
    if req.base_card is not None:
        card = chain_cards(req.base_card, card, *req.stage_names)
    accuracy = {"test": measure(model, load_split("test", req.data_dir))}
    if req.clean_dir:
        accuracy["clean_check"] = measure(model, load_split("test", req.clean_dir))
    card = {**card, "accuracy": accuracy, "hardware": req.hardware, "measured_on": "CPU, fp32",
            "receptive_field": model_receptive_field(model)[1], "rules_ok": rules_summary(model)["ok"],
            "code_commit_at_export": provenance.git_commit(),
            "train_data": {"source": req.train_data, "n": card.get("train_data", {}).get("n")}}
    save_weights(model, req.out, card)
    if req.curves is not None and card.get("history"):
        plot_curves(card["history"], req.curves,
                    f"{card.get('preset', 'default')} preset, recipe {card.get('recipe')}: "
                    f"{accuracy['test']['plain']:.2%} test", req.train_acc_label)
    return card


def plot_curves(history: list[dict], path: Path, title: str,
                train_acc_label: str = "train (augmented)") -> None:
    """The README's static figure: loss and accuracy per epoch, a dotted line where a stage begins."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = upgrade_history(history, None)
    split = next((h["eval_split"] for h in history if h["eval_split"]), "test")
    starts = stage_starts(history)

    def series(key: str) -> tuple[list[float], list[float]]:  # scored values exist every eval_every epochs
        points = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
        points += [(start - 0.5, float("nan")) for start in starts]  # no line across stages
        points.sort()
        return [e for e, _ in points], [v for _, v in points]

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(*series("train_loss"), label="train (augmented, smoothed)")
    ax_loss.plot(*series("eval_loss"), label=split)
    ax_acc.plot(*series("train_acc"), label=train_acc_label)
    ax_acc.plot(*series("eval_acc"), label=f"{split} (EMA weights)")
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
    plt.close(fig)
