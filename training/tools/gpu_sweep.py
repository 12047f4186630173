"""Train several runs side by side on one lent GPU, each sized to finish inside a wall budget.

A small network at CIFAR size keeps an H100 mostly idle (each step is bound by Python's kernel
launches and by the augmentation workers), so runs share the GPU almost for free. The epoch
count of each run comes from a probe: all runs train together, as they will later, for
`--probe-s` seconds; the median epoch time of each (the first epoch, which fills the worker
queues, left out) sizes its real run to `--fill` of the time left. Every run checkpoints each
epoch, so one killed by the hard limit can be resumed elsewhere.

    python training/tools/gpu_sweep.py --budget-s 480 --data-dir data/cifar10-jpeg \
        --job "b128=--recipe full --workers 3" --job "b512=--recipe full --batch-size 512 --lr 0.4"
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from cifar_s9.records.checkpoint import load_resume  # noqa: E402


def launch(name: str, args: list[str], data_dir: str, run_dir: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "cifar_s9", "train", "--data-dir", data_dir,
           "--out", str(run_dir / "model.safetensors"), *args]
    print(f"[{name}] {shlex.join(cmd)}", flush=True)
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop_all(procs: dict[str, subprocess.Popen]) -> None:
    for p in procs.values():
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)  # the CLI stops cleanly on Ctrl-C
    for p in procs.values():
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def wait_all(procs: dict[str, subprocess.Popen], deadline: float) -> None:
    while any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline:
        time.sleep(1)
    stop_all(procs)


def epoch_times(resume: Path) -> list[float]:
    if not resume.exists():
        return []
    return [h["epoch_time_s"] for h in load_resume(resume)["history"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", action="append", required=True, help="NAME=train arguments")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--budget-s", type=float, required=True, help="wall seconds for probe and runs")
    ap.add_argument("--probe-s", type=float, default=45.0)
    ap.add_argument("--fill", type=float, default=0.85, help="share of the time left the runs plan for")
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--runs", default="runs/sweep")
    args = ap.parse_args()

    start = time.monotonic()
    jobs = dict(j.split("=", 1) for j in args.job)
    runs = Path(args.runs)
    procs = {}
    for name, extra in jobs.items():
        (runs / "probe" / name).mkdir(parents=True, exist_ok=True)
        procs[name] = launch(name, [*shlex.split(extra), "--epochs", "1000", "--eval-every", "1"],
                             args.data_dir, runs / "probe" / name, runs / "probe" / f"{name}.log")
    time.sleep(args.probe_s)
    stop_all(procs)

    left = args.budget_s - (time.monotonic() - start)
    plan = {}
    for name in jobs:
        times = epoch_times(runs / "probe" / name / "resume.pt")[1:]
        if not times:
            print(f"[{name}] the probe finished no second epoch; skipped "
                  f"(see {runs / 'probe' / (name + '.log')})", flush=True)
            continue
        per_epoch = statistics.median(times)
        plan[name] = max(1, int(args.fill * left / per_epoch))
        print(f"[{name}] probe: {len(times) + 1} epochs, median {per_epoch:.2f} s/epoch -> "
              f"{plan[name]} epochs in {left:.0f} s", flush=True)

    procs = {}
    for name, epochs in plan.items():
        (runs / name).mkdir(parents=True, exist_ok=True)
        procs[name] = launch(name, [*shlex.split(jobs[name]), "--epochs", str(epochs),
                                    "--eval-every", str(args.eval_every)],
                             args.data_dir, runs / name, runs / name / "train.log")
    wait_all(procs, start + args.budget_s)
    for name, p in procs.items():
        done = epoch_times(runs / name / "resume.pt")
        print(f"[{name}] exit {p.returncode}, {len(done)}/{plan[name]} epochs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
