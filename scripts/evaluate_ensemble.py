"""Accuracy of a distillation teacher: several checkpoints, each alone and their softmax average.

    python scripts/evaluate_ensemble.py runs/a/model.safetensors runs/b/model.safetensors \
        --data-dir ../shared/data/cifar10-jpeg

An ensemble breaks the 200K-parameter rule, so it is never shipped; this measures what a
teacher built from it knows (the same average `--teacher` distils from, at temperature 1).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from cifar_s9.checkpoint import load_weights  # noqa: E402
from cifar_s9.data import load_split  # noqa: E402
from cifar_s9.losses import ensemble_soft_targets  # noqa: E402
from cifar_s9.evaluate import predict_logits  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("weights", nargs="+")
    p.add_argument("--data-dir")
    p.add_argument("--tta", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(2)
    split = load_split("test", args.data_dir)
    labels = torch.from_numpy(split.labels)
    logits = []
    for path in args.weights:
        model, _ = load_weights(Path(path))
        logits.append(predict_logits(model, split.images, tta=args.tta))
        print(f"{path}: {(logits[-1].argmax(1) == labels).float().mean().item():.4f}")
    accuracy = (ensemble_soft_targets(logits, 1.0).argmax(1) == labels).float().mean().item()
    print(f"ensemble of {len(logits)}: {accuracy:.4f} on {len(labels)} images of {split.source}")
    print(json.dumps({"ensemble_accuracy": accuracy, "members": args.weights, "tta": args.tta,
                      "n": len(labels), "data": split.source}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
