"""What starting the app costs beyond importing gradio and torch.

    python bench/app_startup.py [--repeats 3]

Each figure is the median of `--repeats` fresh interpreters (imports are cached per process):
  baseline   `import gradio, torch`
  app        `import app` (imports the package and builds every tab; no server)
and which heavy libraries `import app` pulled in (grad-cam, albumentations, torchinfo and OpenCV
should load only when first used: on the first explain, augmentation or Model tab).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pytorch_grad_cam", "albumentations", "torchinfo", "cv2")


def timed(code: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    probe = f"import sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    base, app, loaded = [], [], ""
    for _ in range(args.repeats):
        base.append(timed("import gradio, torch")[0])
        seconds, loaded = timed("import app; " + probe)
        app.append(seconds)
    b, a = statistics.median(base), statistics.median(app)
    print(f"import gradio, torch: {b:.2f} s   import app (all tabs built): {a:.2f} s   "
          f"ratio {a / b:.2f}   heavy libraries loaded at start: {loaded}")
    print(json.dumps({"bench": "app_startup", "baseline_s": round(b, 2), "app_s": round(a, 2),
                      "ratio": round(a / b, 2), "heavy_loaded": loaded, "repeats": args.repeats}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
