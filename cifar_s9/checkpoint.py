"""Weights as safetensors plus a JSON model card; resume state as a weights-only torch file.

Nothing here unpickles: safetensors holds raw tensors, and the resume file is read with
`torch.load(weights_only=True)`. Every write goes to a temp file that is renamed into place,
so a process killed mid-write leaves the previous file intact.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .model import ModelConfig, Net


class CheckpointError(ValueError):
    pass


def card_path(weights_path: Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: dict) -> None:
    _atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))


def save_weights(model: Net, path: Path, card: dict[str, Any]) -> None:
    """Write `path` (.safetensors) and its model card; the card always records the config."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    card = {**card, "model_config": model.config.to_dict(), "params": model.num_params()}
    metadata = {"format": "cifar_s9", "model_config": json.dumps(model.config.to_dict())}
    _atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))
    write_json_atomic(card_path(path), card)


def read_card(weights_path: Path) -> dict:
    p = card_path(weights_path)
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"model card {p} is not valid JSON: {exc}") from exc


def load_weights(path: Path, expected: ModelConfig | None = None) -> tuple[Net, dict]:
    """Rebuild the network recorded in the file and load it; refuse anything that does not fit."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name} is not a valid safetensors file "
                              f"(corrupt, truncated or another format): {exc}") from exc
    if "model_config" not in metadata:
        raise CheckpointError(f"{path.name} holds no cifar_s9 model config; not one of our checkpoints")
    try:
        config = ModelConfig.from_dict(json.loads(metadata["model_config"]))
        with torch.device("meta"):  # shapes only: a config declaring a huge network allocates nothing
            skeleton = Net(config)
    except (TypeError, KeyError, ValueError, AttributeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path.name} records an unreadable model config: {exc}") from exc
    if expected is not None and config != expected:
        raise CheckpointError(f"{path.name} holds a different architecture than the one requested")
    missing, unexpected, wrong = _compare(skeleton.state_dict(), state)
    if missing or unexpected or wrong:
        raise CheckpointError(f"{path.name} does not match its architecture: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}")
    model = Net(config)  # its parameters are no larger than the tensors the file really holds
    model.load_state_dict(state)
    model.eval()
    return model, read_card(path)


def _compare(expected: dict, got: dict) -> tuple[list, list, list]:
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [k for k in expected if k in got and tuple(got[k].shape) != tuple(expected[k].shape)]
    return missing, unexpected, wrong


def save_resume(path: Path, state: dict) -> None:
    _atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_resume(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses pickled code with UnpicklingError
        raise CheckpointError(f"cannot resume from {path}: {exc}") from exc
