"""Where the project's files are: the one place that knows the layout.

A source checkout keeps `weights/` and `assets/` beside the package; an installed wheel puts
them under `<prefix>/share/cifar_s9/` (see `[tool.setuptools.data-files]` in pyproject.toml).
`CIFAR_S9_HOME` overrides both. Nothing else in the package walks `parent.parent`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _home() -> Path:
    env = os.environ.get("CIFAR_S9_HOME")
    if env:
        return Path(env).resolve()
    checkout = PACKAGE_DIR.parent
    if (checkout / "weights").is_dir() or (checkout / "pyproject.toml").is_file():
        return checkout
    installed = Path(sys.prefix) / "share" / "cifar_s9"
    return installed if installed.is_dir() else checkout


HOME = _home()                                   # project root (checkout) or the installed data
WEIGHTS_DIR = HOME / "weights"                   # released checkpoints: read-only for the app
DEFAULT_WEIGHTS = WEIGHTS_DIR / "default.safetensors"
REFERENCE_WEIGHTS = WEIGHTS_DIR / "seed.safetensors"  # the reference design (`seed` preset), shipped beside ours
OOD_CALIBRATION = WEIGHTS_DIR / "ood.json"       # the out-of-distribution flag's threshold (bench/ood_calibration.py)
FAITHFULNESS = WEIGHTS_DIR / "faithfulness.json"  # the maps' test-sample ranking (bench/faithfulness.py)
ASSETS_DIR = HOME / "assets"
EXAMPLES_DIR = ASSETS_DIR / "examples"
SAMPLE_TEST = ASSETS_DIR / "test_sample.npz"    # 500 CIFAR-10 test images, the fallback
# the app's training runs: inside a writable checkout, else under the working directory
RUNS_DIR = (HOME if os.access(HOME, os.W_OK) else Path.cwd()) / "runs"
APP_RUNS_DIR = RUNS_DIR / "app"
TRACKER_DIR = RUNS_DIR / "tracker"                # the trackio project (cifar_s9.experiments.tracker)
TRAINING_DIR = HOME / "training"                  # records of the shipped runs: never pruned
CUTOUT_GRID = TRAINING_DIR / "cutout_grid" / "grid.json"  # the measured Coarse Dropout grid (issue 28.4)

