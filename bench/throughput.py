"""CPU training throughput of the presets: images/s for one forward + backward + SGD step.

Measured as the trainer runs on CPU: batches of 256 random 32x32 images in channels_last
memory, SGD-Nesterov with weight decay, label-smoothed soft cross-entropy, torch.set_num_threads(2).
Warm-up steps are excluded; each preset is timed over several windows of a few steps and the
median window is reported, so one slow window (another process waking up) does not skew it.
All presets run in the same process with their windows interleaved, so their ratio is like for like.

    python bench/throughput.py                       # default and seed, 256 images, 2 threads
    python bench/throughput.py --windows 7 --steps 4 # more windows, longer ones
    python bench/throughput.py --precision fp32 bf16 # bf16 autocast beside fp32, interleaved

Prints a table, the default/seed ratio, and a final JSON line with the numbers and provenance.
Random input data, so augmentation and data loading are not included: this is the model's cost.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cifar_s9.model.net import PRESETS, build_model  # noqa: E402
from cifar_s9.train.losses import soft_cross_entropy  # noqa: E402
from cifar_s9.train.precision import cpu_has_bf16  # noqa: E402


# ---------------------------------------------------------------- settings (defaults mirror the trainer)
BATCH_SIZE = 256      # images per step, as the `fast` recipe
THREADS = 2           # the lab machines have 2 cores
WARMUP_STEPS = 3      # untimed: allocator, oneDNN kernel selection
WINDOWS = 5           # timed windows per preset; the median is reported
STEPS_PER_WINDOW = 3  # steps per window
LABEL_SMOOTHING = 0.1


def make_step(model: torch.nn.Module, bf16: bool = False):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        targets = F.one_hot(y, 10).float() * (1 - LABEL_SMOOTHING) + LABEL_SMOOTHING / 10
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = soft_cross_entropy(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(presets: list[str], batch_size: int, warmup: int, windows: int, steps: int,
            seed: int = 0, precisions: tuple[str, ...] = ("fp32",)) -> list[dict]:
    """Warm every preset up, then time their windows in turn (A B A B ...), so a change in
    background load affects every preset alike."""
    torch.manual_seed(seed)
    x = torch.randn(batch_size, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,))
    runs = [(preset, precision) for preset in presets for precision in precisions]
    label = lambda preset, precision: preset if precisions == ("fp32",) else f"{preset}/{precision}"  # noqa: E731
    models = {label(*r): build_model(r[0]).to(memory_format=torch.channels_last).train() for r in runs}
    steps_fn = {label(*r): make_step(models[label(*r)], bf16=r[1] == "bf16") for r in runs}
    presets = list(models)
    for name in presets:
        for _ in range(warmup):
            steps_fn[name](x, y)
    rates: dict[str, list[float]] = {name: [] for name in presets}
    for _ in range(windows):
        for name in presets:
            start = time.perf_counter()
            for _ in range(steps):
                steps_fn[name](x, y)
            rates[name].append(batch_size * steps / (time.perf_counter() - start))
    return [{"preset": name, "params": models[name].num_params(),
             "images_per_s": round(statistics.median(r), 1), "min": round(min(r), 1),
             "max": round(max(r), 1), "windows": [round(v, 1) for v in r]}
            for name, r in rates.items()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["default", "seed"], choices=sorted(PRESETS))
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--threads", type=int, default=THREADS)
    p.add_argument("--warmup", type=int, default=WARMUP_STEPS)
    p.add_argument("--windows", type=int, default=WINDOWS)
    p.add_argument("--steps", type=int, default=STEPS_PER_WINDOW, help="steps per timed window")
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16"),
                   help="bf16: torch.autocast on the CPU (fast where the CPU has avx512_bf16 or AMX)")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    results = measure(args.presets, args.batch_size, args.warmup, args.windows, args.steps,
                      precisions=tuple(args.precision))
    wall = time.perf_counter() - started

    print(f"CPU training throughput: batch {args.batch_size}, {args.threads} threads, channels_last, "
          f"median of {args.windows} windows x {args.steps} steps after {args.warmup} warm-up steps")
    print(f"{'preset':<14} {'params':>8} {'img/s':>8} {'min':>8} {'max':>8}")
    for r in results:
        print(f"{r['preset']:<14} {r['params']:>8,} {r['images_per_s']:>8.1f} {r['min']:>8.1f} {r['max']:>8.1f}")
    by_name = {r["preset"]: r for r in results}
    ratio = None
    if "default" in by_name and "seed" in by_name:
        ratio = round(by_name["default"]["images_per_s"] / by_name["seed"]["images_per_s"], 3)
        print(f"default/seed throughput ratio: {ratio:.3f}")
    if load_before is not None and load_before > 0.5:
        print(f"note: 1-minute load average was {load_before:.2f} before the run; other processes "
              f"share the cores, so absolute numbers are low (the ratio is fairer)")
    print(json.dumps({
        "benchmark": "cpu_train_throughput", "batch_size": args.batch_size, "threads": args.threads,
        "warmup_steps": args.warmup, "windows": args.windows, "steps_per_window": args.steps,
        "results": by_name, "ratio_default_over_seed": ratio, "wall_time_s": round(wall, 1),
        "load_avg_1m_before": load_before, "cpu_has_bf16": cpu_has_bf16(), "torch": torch.__version__,
        "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
