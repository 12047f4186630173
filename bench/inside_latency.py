"""Latency of every Inside view for one 32x32 image, shipped weights, this machine's CPU.

    python bench/inside_latency.py [--repeats 20] [--threads N] [--image assets/examples/cat.jpg]

Each view is timed as its handler runs it: the computation in `cifar_s9.analysis.inside` plus the
pictures it returns (not Gradio's encoding or the network round trip). Reported per view: the
median and 90th percentile of wall-clock time, and the median CPU time of this process (on a
machine shared with other jobs, wall time includes waiting for a core; CPU time is roughly
what an idle machine's wall time would be at one thread). The run's conditions (load average
before and after, cores, threads, torch) are printed with the figures.
Target (issue 15): every view within 300 ms; occlusion at its default patch and stride.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_MS = 300.0


def views(model, image) -> dict:
    """{view name: a no-argument function doing that view's work}."""
    from cifar_s9.analysis.gradcam import layer_names
    from cifar_s9.analysis.inside import attribution, features, fields, why_not

    def feature_view(layer):
        def run():
            fm = features.feature_maps(model, image, layer)
            features.channel_tiles(fm, "shared")
            return fm
        return run

    def channel_view():
        fm = features.feature_maps(model, image, "C1")
        features.channel_picture(fm, int(fm.order[0]), "shared")

    def field_view(layer, y, x):
        def run():
            field, mass = fields.effective_field(model, image, layer, y, x)
            fields.describe(field, mass)
            fields.field_picture(image, field)
            fields.gradient_picture(mass, field)
        return run

    def occlusion_view():
        result = attribution.attributions(model, image)  # default patch, stride and steps
        attribution.pictures(image, result)
        attribution.summary(result)

    def explain_all_view():
        why_not.grid(image, why_not.all_class_cams(model, image))

    out = {f"feature maps {name}": feature_view(name) for name in layer_names(model)}
    out["enlarged channel (C1)"] = channel_view
    out["receptive field C1.conv1 (16,16)"] = field_view("C1.conv1", 16, 16)
    out["receptive field C4 (2,2)"] = field_view("C4", 2, 2)
    out["occlusion + IG + Grad-CAM"] = occlusion_view
    out["why not (10 Grad-CAMs)"] = explain_all_view
    return out


def measure(fn, repeats: int, warmup: int = 2) -> dict:
    import numpy as np

    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return {"median_ms": round(float(np.median(wall)), 1), "p90_ms": round(float(np.percentile(wall, 90)), 1),
            "cpu_median_ms": round(float(np.median(cpu)), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own choice, which is what the app runs with)")
    parser.add_argument("--image", default=str(ROOT / "assets" / "examples" / "cat.jpg"))
    parser.add_argument("--weights", default=str(ROOT / "weights" / "default.safetensors"))
    args = parser.parse_args()

    import torch

    from cifar_s9.data import images
    from cifar_s9.analysis.inside import attribution
    from cifar_s9.app.serving import ModelCache

    if args.threads:
        torch.set_num_threads(args.threads)
    model = ModelCache(args.weights).shipped.model  # loaded and prepared as the app serves it
    image = images.load_rgb32(args.image)
    load_before = os.getloadavg()
    results = {name: measure(fn, args.repeats) for name, fn in views(model, image).items()}
    load_after = os.getloadavg()

    print(f"conditions: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
          f"torch {torch.__version__} at {torch.get_num_threads()} threads; load average "
          f"(1/5/15 min) before {' '.join(f'{v:.1f}' for v in load_before)}, "
          f"after {' '.join(f'{v:.1f}' for v in load_after)}; {args.repeats} repeats after 2 warm-ups")
    print(f"image {Path(args.image).name}, weights {Path(args.weights).name}; occlusion patch "
          f"{attribution.PATCH} stride {attribution.STRIDE}, integrated gradients {attribution.STEPS} steps")
    print(f"{'view':<34} {'median':>8} {'p90':>8} {'cpu':>8}   target {TARGET_MS:.0f} ms")
    for name, r in results.items():
        flag = "ok" if r["median_ms"] <= TARGET_MS else "OVER"
        print(f"{name:<34} {r['median_ms']:>6.1f}ms {r['p90_ms']:>6.1f}ms {r['cpu_median_ms']:>6.1f}ms   {flag}")
    worst = max(results.values(), key=lambda r: r["median_ms"])
    print(json.dumps({"bench": "inside_latency", "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "cores": os.cpu_count(), "load_before": load_before, "load_after": load_after,
                      "repeats": args.repeats, "views": results, "worst_median_ms": worst["median_ms"],
                      "target_ms": TARGET_MS}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
