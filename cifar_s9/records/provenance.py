"""Where a result came from: hardware, software and code version, for model cards."""
from __future__ import annotations

import datetime as dt
import platform
import subprocess
from pathlib import Path

import torch

from ..paths import HOME


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def git_commit(repo: Path = HOME) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() + ("-dirty" if dirty else "")) if out.returncode == 0 else None


def run_info(device: torch.device) -> dict:
    return {"device": device_name(device), "torch": torch.__version__, "python": platform.python_version(),
            "git_commit": git_commit(), "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


STAGE_KEYS = ("recipe", "train_config", "aug_config", "epochs", "wall_time_s", "git_commit", "device",
              "accuracy")


def stage_starts(history: list[dict]) -> list[int]:
    """The epochs where a chained card's history enters a new stage (none for a single run)."""
    return [h["epoch"] for prev, h in zip(history, history[1:]) if h.get("stage") != prev.get("stage")]


def chain_cards(base: dict, fine_tune: dict, base_name: str, fine_tune_name: str) -> dict:
    """The card of a network fine-tuned from `base`: one per-epoch history over all stages
    (fine-tune epochs numbered on from the base's, each entry naming its stage), summed epochs
    and wall time, and what each stage ran under `stages`. A base that is itself chained keeps
    its own stages (`base_name` then goes unused), so a fine-tune of a fine-tune chains on."""
    offset = base["epochs"]
    history = ([{"stage": base_name, **h} for h in base["history"]]
               + [{**h, "epoch": h["epoch"] + offset, "epochs": h["epochs"] + offset, "stage": fine_tune_name}
                  for h in fine_tune["history"]])
    base_stages = base.get("stages") or [_stage(base_name, base)]
    return {**fine_tune, "history": history, "stages": [*base_stages, _stage(fine_tune_name, fine_tune)],
            "epochs": offset + fine_tune["epochs"],
            "wall_time_s": round(base["wall_time_s"] + fine_tune["wall_time_s"], 1)}


def _stage(name: str, card: dict) -> dict:
    return {"name": name, **{k: card[k] for k in STAGE_KEYS if k in card}}
