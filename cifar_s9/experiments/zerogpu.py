"""Training under Hugging Face ZeroGPU: `@spaces.GPU` with a duration derived from the budget.

Off ZeroGPU the real `spaces` package returns the function unchanged, so the same call trains
on the CPU (or a local CUDA GPU, with bf16 autocast: the trainer's CUDA path). On ZeroGPU the
function runs in a GPU worker process: the app's progress callback and stop event (which hold
thread locks) cannot cross into it, so `run_in_slot` leaves them out there and the app shows the
result when the call returns.
"""
from __future__ import annotations

import spaces

from .runner import ExperimentConfig, ExperimentResult, run_experiment

OVERHEAD_S = 60          # start-up, data transfer, evaluation of every arm
GPU_EPOCH_S = 3.0        # one lab-recipe epoch (5,000 images) on a ZeroGPU slice, generously
MAX_DURATION_S = 1800    # never ask ZeroGPU for more than half an hour


def gpu_seconds(config: ExperimentConfig, *args, **kwargs) -> int:
    """Seconds of GPU to ask for: every arm and seed at its budget, plus a fixed overhead."""
    runs = len(config.arms) * config.repeats
    per_run = config.minutes * 60 if config.minutes is not None else config.epochs * GPU_EPOCH_S
    return int(min(MAX_DURATION_S, OVERHEAD_S + runs * per_run))


@spaces.GPU(duration=gpu_seconds)
def run_experiment_on_gpu(config: ExperimentConfig, *args, **kwargs) -> ExperimentResult:
    """`run_experiment` where ZeroGPU lends a GPU for `gpu_seconds(config)`; elsewhere a plain call."""
    return run_experiment(config, *args, **kwargs)


def on_zerogpu() -> bool:
    from spaces.config import Config

    return bool(Config.zero_gpu)


def run_in_slot(config: ExperimentConfig, *args, **kwargs) -> ExperimentResult:
    """What the app's experiment job calls: the decorated runner, with the in-process-only
    arguments (progress, stop) dropped where ZeroGPU runs it in another process."""
    if on_zerogpu():
        kwargs = {k: v for k, v in kwargs.items() if k not in ("progress", "stop")}
    return run_experiment_on_gpu(config, *args, **kwargs)
