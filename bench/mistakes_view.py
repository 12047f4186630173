"""Where the Mistakes tab's time goes on the full test set, and what the caches save.

    CIFAR_S9_DATA_DIR=/work/shared/data/cifar10-jpeg python bench/mistakes_view.py [--threads 2]

Prints: loading the 10,000 test images (decoded-array cache), inference on 2,000 of them with
the served model and with its BatchNorm-folded copy, the cold evaluation (all 10,000),
the same view again (memory cache), a fresh cache object reading the logits from disk (what a
restarted app or another session choosing the same weights pays), and building the gallery and plots.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    from cifar_s9.data import app_data
    from cifar_s9.app import serving
    from cifar_s9.paths import DEFAULT_WEIGHTS
    from cifar_s9.app.session import Session
    from cifar_s9.ui.common import AppContext
    from cifar_s9.ui.mistakes import MistakesHandlers

    t = time.perf_counter()
    data = app_data.load_test_data()
    print(f"test data: {len(data.split):,} images in {time.perf_counter() - t:.2f} s ({data.note})")
    from cifar_s9.analysis.evaluate import predict_logits
    sample = data.split.images[:2000]
    plain = serving.ModelCache(DEFAULT_WEIGHTS).shipped.model
    for name, net in (("as served", plain), ("BatchNorm folded", serving.inference_copy(plain))):
        t = time.perf_counter()
        predict_logits(net, sample, "cpu")
        print(f"inference on 2,000 images, {name}: {time.perf_counter() - t:.2f} s")
    with tempfile.TemporaryDirectory() as disk:
        models = serving.ModelCache(DEFAULT_WEIGHTS)
        ctx = AppContext(models, serving.EvaluationCache(disk_dir=Path(disk)), jobs=None)
        ctx._test = data
        h = MistakesHandlers(ctx)
        steps = []
        t = time.perf_counter()
        h.view("", "", "most confident first", Session(), progress=lambda f, desc="": steps.append(f))
        print(f"first view (inference on {len(data.split):,} images): {time.perf_counter() - t:.2f} s, "
              f"{len(steps)} progress updates")
        t = time.perf_counter()
        h.view("cat", "dog", "least confident first", Session(), progress=lambda f, desc="": None)
        print(f"same model again, filtered (memory cache): {time.perf_counter() - t:.2f} s")
        ctx.evals = serving.EvaluationCache(disk_dir=Path(disk))
        t = time.perf_counter()
        h.view("", "", "most confident first", Session(), progress=lambda f, desc="": None)
        print(f"fresh cache, logits from disk: {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
