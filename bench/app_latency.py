"""App start-up time and per-image model latency on this machine's CPU.

    python bench/app_latency.py [--repeats 50] [--threads 2]

1. Start-up: launches `python app.py` on a free port and times until it answers HTTP 200.
2. Latency: the work behind one Classify view (image decode to 32x32, probabilities, Grad-CAM at
   the default layer and method, overlay) on the shipped weights; median and p95 of `--repeats`.
Targets: start-up < 15 s; classify + Grad-CAM < 50 ms of model time.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def startup_seconds(timeout: float = 120.0) -> float:
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"app did not answer within {timeout} s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def latencies_ms(repeats: int) -> dict:
    import numpy as np

    from cifar_s9.analysis import gradcam
    from cifar_s9.data import images
    from cifar_s9.app import serving as service
    from cifar_s9.paths import DEFAULT_WEIGHTS

    model = service.ModelCache(DEFAULT_WEIGHTS).shipped.model
    path = ROOT / "assets" / "examples" / "cat.jpg"
    timings = {"classify": [], "gradcam": [], "total": []}
    for i in range(repeats + 3):
        t0 = time.perf_counter()
        image = images.load_rgb32(str(path))
        probs = service.probabilities(model, image)
        t1 = time.perf_counter()
        heatmap = gradcam.explain(model, image)
        gradcam.overlay(image, heatmap)
        t2 = time.perf_counter()
        if i >= 3:  # warm-up excluded
            timings["classify"].append((t1 - t0) * 1e3)
            timings["gradcam"].append((t2 - t1) * 1e3)
            timings["total"].append((t2 - t0) * 1e3)
    assert probs.shape == (10,)
    return {k: {"median": round(float(np.median(v)), 2), "p95": round(float(np.percentile(v, 95)), 2)}
            for k, v in timings.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    startup = startup_seconds()
    lat = latencies_ms(args.repeats)
    print(f"start-up to serving: {startup:.1f} s (target < 15 s)")
    for name, v in lat.items():
        print(f"{name:<9} median {v['median']:7.2f} ms   p95 {v['p95']:7.2f} ms")
    print(json.dumps({"bench": "app_latency", "startup_s": round(startup, 2), "latency_ms": lat,
                      "threads": args.threads, "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
