"""Calibrate the Classify tab's out-of-distribution flag for the shipped weights.

    python bench/ood_calibration.py --data-dir ../shared/data/cifar10-jpeg \
        --held-back ../shared/data/cifar10-clean-check [--threads 2]

Scores (the top-class probability of `cifar_s9.analysis.ood`) the held-back images with the
shipped model, picks the threshold that flags 5% of them, then measures the rate it flags on
the 10,000 test images (the false-alarm rate the app states) and on pure noise (32x32 uniform
noise, and 8x8 noise enlarged to 32x32 as an upload would be), and writes weights/ood.json.

Held-back images: the shipped model was trained on all 46,000 images of the JPEG folder's
train/ (its card: "46,000 training images"), so cifar_s9's validation split of that folder
(`data.cifar.carve_validation`, 300 per class) is not held back from *this* model. The
2,000 cifar10-clean-check images are training images of CIFAR-10 that the JPEG folder left out;
the script reports the validation split's numbers too, for comparison.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 image folder with train/ and test/")
    parser.add_argument("--held-back", required=True, help="class folders of images the model never saw")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="weights/ood.json")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    from cifar_s9.analysis import ood
    from cifar_s9.analysis.evaluate import predict_logits
    from cifar_s9.data.cifar import ValidationSpec, carve_validation, decode_images, list_image_folder, load_split
    from cifar_s9.paths import DEFAULT_WEIGHTS
    from cifar_s9.records.checkpoint import load_weights

    started = time.perf_counter()
    model = load_weights(DEFAULT_WEIGHTS)[0].eval()
    sha = hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()

    def scores(images: np.ndarray) -> np.ndarray:
        return ood.max_softmax(predict_logits(model, images, "cpu").numpy())

    held_images, _ = decode_images(list_image_folder(Path(args.held_back)))
    held = scores(held_images)
    threshold = ood.pick_threshold(held)
    test = load_split("test", args.data_dir)
    test_scores = scores(test.images)
    spec = ValidationSpec()
    _, val = carve_validation(load_split("train", args.data_dir), spec)
    val_scores = scores(val.images)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (1000, 32, 32, 3), dtype=np.uint8)
    small = np.repeat(np.repeat(rng.integers(0, 256, (1000, 8, 8, 3), dtype=np.uint8), 4, 1), 4, 2)
    result = {
        "score": ood.SCORE,
        "threshold": round(threshold, 4),
        "target_false_alarm": ood.TARGET_FALSE_ALARM,
        "weights": DEFAULT_WEIGHTS.name, "weights_sha256": sha,
        "calibration": {"data": f"{Path(args.held_back).name}: {len(held):,} CIFAR-10 training images "
                                "the shipped model never saw", "n": len(held),
                        "false_alarm": round(ood.flag_rate(held, threshold), 4)},
        "test": {"data": f"{test.source}", "n": len(test), "false_alarm": round(ood.flag_rate(test_scores, threshold), 4),
                 "false_alarm_of_misclassified": None},
        "validation_split_seen_in_training": {
            "data": f"carve_validation {spec.per_class}/class seed {spec.seed} of train/", "n": len(val),
            "flagged": round(ood.flag_rate(val_scores, threshold), 4),
            "threshold_if_picked_there": round(ood.pick_threshold(val_scores), 4)},
        "noise": {"uniform_32x32": round(ood.flag_rate(scores(noise), threshold), 4),
                  "uniform_8x8_enlarged": round(ood.flag_rate(scores(small), threshold), 4), "n": 1000},
        "command": "python bench/ood_calibration.py " + " ".join(sys.argv[1:]),
        "seconds": None,
    }
    wrong = predict_logits(model, test.images, "cpu").argmax(1).numpy() != test.labels
    result["test"]["false_alarm_of_misclassified"] = round(ood.flag_rate(test_scores[wrong], threshold), 4)
    result["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
