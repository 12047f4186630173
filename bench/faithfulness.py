"""Rank every map the Inside tab's "Which map to trust?" view scores, on the bundled test sample,
for the shipped weights (and any others), and write the ranking the app shows beside its
per-image table.

    OMP_NUM_THREADS=1 nice -n 10 python bench/faithfulness.py \
        --weights weights/default.safetensors --weights weights/seed.safetensors [--per-class 15]

For each weights file: the first `--per-class` images of each class of assets/test_sample.npz,
each scored as the app scores one (`cifar_s9.analysis.faithfulness`: every CAM method at C1..C4,
occlusion, integrated gradients and a random map, ROADCombined at 20/40/60/80% removed, for the
predicted class), then per map the mean, standard deviation, a 95% bootstrap interval of the
mean and the mean rank. CPU only, one thread: about 4 s an image on a busy 2-core machine.

The result goes to weights/faithfulness.json under the network's content key (the key the app's
model cache gives it, `app.serving.content_key`), so a file's entry is replaced and the others
are kept. torch's RNG is seeded (the imputer's noise): a rerun gives the same numbers.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def sample(per_class: int) -> tuple[np.ndarray, np.ndarray, str]:
    from cifar_s9.data.app_data import load_sample

    split = load_sample()
    chosen = np.concatenate([np.flatnonzero(split.labels == k)[:per_class] for k in range(10)])
    chosen.sort()
    return split.images[chosen], split.labels[chosen], (
        f"bundled test sample, the first {per_class} images of each class ({len(chosen)} of "
        f"{len(split.labels)})")


def rank_one(weights: Path, images, labels, data: str) -> tuple[str, dict]:
    import torch

    from cifar_s9.analysis import faithfulness
    from cifar_s9.analysis.evaluate import predict_logits
    from cifar_s9.app.serving import content_key, load_servable
    from cifar_s9.records.checkpoint import file_sha256

    torch.manual_seed(0)
    model, card = load_servable(weights)
    model.eval()
    for p in model.parameters():  # as the app serves it: CAMs need gradients to flow
        p.requires_grad_(True)
    started = time.perf_counter()

    def progress(i, n, seconds):
        if i % 10 == 0 or i == n:
            print(f"  {weights.name}: {i}/{n} images, {seconds:.0f} s", file=sys.stderr, flush=True)

    result = faithfulness.sample_ranking(model, images, progress=progress)
    accuracy = float((predict_logits(model, images, "cpu").argmax(1).numpy() == labels).mean())
    entry = {"weights": weights.name, "weights_sha256": file_sha256(weights), "data": data,
             "accuracy_on_these": round(accuracy, 4), **result,
             "seconds": round(time.perf_counter() - started, 1)}
    return content_key(model, card), entry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", action="append", required=True, help="a checkpoint (repeatable)")
    parser.add_argument("--per-class", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "weights" / "faithfulness.json"))
    args = parser.parse_args()
    import torch

    from cifar_s9.analysis import faithfulness
    from cifar_s9.atomic import write_json_atomic

    torch.set_num_threads(args.threads)
    images, labels, data = sample(args.per_class)
    out = Path(args.out)
    try:
        kept = json.loads(out.read_text()).get("models", {})
    except (OSError, ValueError):
        kept = {}
    for weights in map(Path, args.weights):
        key, entry = rank_one(weights, images, labels, data)
        kept = {k: v for k, v in kept.items() if v.get("weights") != weights.name}  # a retrained file
        kept[key] = entry
        top = entry["ranking"][:3]
        print(f"{weights.name}: " + "; ".join(f"{r['map']} {r['mean']:+.3f}" for r in top), flush=True)
    result = {"measure": "pytorch-grad-cam ROADCombined (LeRF - MoRF) / 2 of the predicted class's "
                         "softmax probability, maps replaced by their pixel ranks",
              "removed_percent": list(faithfulness.REMOVED),
              "command": "python bench/faithfulness.py " + " ".join(sys.argv[1:]),
              "models": kept}
    write_json_atomic(out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
