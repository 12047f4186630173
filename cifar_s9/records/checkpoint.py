"""Weights as safetensors plus a JSON model card; resume state as a weights-only torch file.

Nothing here unpickles: safetensors holds raw tensors, and the resume file is read with
`torch.load(weights_only=True)`.

Loading checks, cheapest first, so a hostile file costs milliseconds: the file size; the
architecture the metadata declares (`check_declared`: 4 blocks of 3 convs, channel caps, the
parameter count of the network built on the meta device, input channels and classes), before any
tensor is allocated; the tensor names and shapes from the safetensors header; and the card's
`weights_sha256`, which pairs a card with the exact weights it was written for. Only then are
the tensors read.

Writes are atomic (temp file, then rename). `save_weights` writes the card (holding the new
weights' sha256) before renaming the new weights into place, so a process killed between the
two leaves a pair that `load_weights` refuses, never new weights beside an old card.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_args

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..atomic import temp_path, write_atomic, write_json_atomic
from ..model.layers import ConvKind, Order
from ..model.net import BlockSpec, ConvSpec, ModelConfig, Net
from ..errors import UserError

CARD_HASH = "weights_sha256"  # the card field that pairs it with its weights file


MAX_CONFIG_CHARS = 16_384  # the model config JSON in a checkpoint's metadata


class CheckpointError(UserError):
    pass


# ---------------------------------------------------------------- what a checkpoint may declare

@dataclass(frozen=True)
class ArchitectureLimits:
    """Bounds on the architecture a checkpoint declares, checked on its config JSON before anything
    is built. The defaults admit every preset the command line trains (the 7.8M-parameter teacher
    included); `APP_LIMITS` is what the public app serves."""
    blocks: int = 4                     # C1 C2 C3 C4
    convs_per_block: int = 3
    max_channels: int = 1024            # the wide teacher's largest block has 512
    strides: tuple[int, ...] = (1, 2)
    max_dilation: int = 4
    kernels: tuple[int, ...] = (3, 5, 7)
    params_below: int = 50_000_000      # computed from the config, not from the tensors
    max_file_bytes: int = 256 * 2**20   # the teacher's file is 31 MB
    in_channels: int | None = None      # None: any of 1..4
    num_classes: int | None = None      # None: any of 2..1000


APP_LIMITS = ArchitectureLimits(max_channels=512, params_below=200_000, max_file_bytes=2 * 2**20,
                                in_channels=3, num_classes=10)

# what a declared config may name: the fields and choices of ModelConfig itself
_CONFIG_KEYS = {f.name for f in fields(ModelConfig)}
_BLOCK_KEYS = {f.name for f in fields(BlockSpec)}
_CONV_KEYS = {f.name for f in fields(ConvSpec)}
_KINDS, _ORDERS = get_args(ConvKind), get_args(Order)


def param_count(config: ModelConfig) -> int:
    """Parameters of `Net(config)`, counted on a network built on the meta device: shapes only,
    nothing allocated, so a hostile declaration costs microseconds and the count can never
    disagree with the network."""
    with torch.device("meta"):
        return Net(config).num_params()


def _whole(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CheckpointError(f"the declared {name} must be a whole number in [{lo}, {hi}], got {value!r:.40}")
    return value


def _keys(d, allowed: set[str], what: str) -> dict:
    if not isinstance(d, dict):
        raise CheckpointError(f"the declared {what} is not a JSON object")
    unknown = set(d) - allowed
    if unknown:
        raise CheckpointError(f"the declared {what} has unknown fields {sorted(unknown)[:3]}")
    return d


def check_declared(raw: object, limits: ArchitectureLimits = ArchitectureLimits()) -> ModelConfig:
    """The model config JSON from a checkpoint's metadata -> a ModelConfig within `limits`, or a
    CheckpointError saying what is out of bounds. Pure and cheap: nothing is built."""
    d = _keys(raw, _CONFIG_KEYS, "model config")
    blocks = d.get("blocks")
    if not isinstance(blocks, (list, tuple)) or len(blocks) != limits.blocks:
        n = len(blocks) if isinstance(blocks, (list, tuple)) else type(blocks).__name__
        raise CheckpointError(f"the checkpoint declares {n} blocks; exactly {limits.blocks} are allowed")
    for i, block in enumerate(blocks, 1):
        _keys(block, _BLOCK_KEYS, f"block C{i}")
        convs = block.get("convs")
        if not isinstance(convs, (list, tuple)) or len(convs) != limits.convs_per_block:
            n = len(convs) if isinstance(convs, (list, tuple)) else type(convs).__name__
            raise CheckpointError(f"block C{i} declares {n} convs; exactly {limits.convs_per_block} are allowed")
        if not isinstance(block.get("residual", False), bool):
            raise CheckpointError(f"block C{i}: residual must be true or false")
        for j, conv in enumerate(convs, 1):
            _keys(conv, _CONV_KEYS, f"conv {j} of C{i}")
            _whole(conv.get("out_channels"), f"out_channels of C{i} conv {j}", 1, limits.max_channels)
            if conv.get("kind", "standard") not in _KINDS:
                raise CheckpointError(f"C{i} conv {j}: kind must be one of {_KINDS}")
            if conv.get("stride", 1) not in limits.strides or isinstance(conv.get("stride"), bool):
                raise CheckpointError(f"C{i} conv {j}: stride must be one of {limits.strides}")
            _whole(conv.get("dilation", 1), f"dilation of C{i} conv {j}", 1, limits.max_dilation)
            if conv.get("kernel", 3) not in limits.kernels or isinstance(conv.get("kernel"), bool):
                raise CheckpointError(f"C{i} conv {j}: kernel must be one of {limits.kernels}")
    if d.get("order", _ORDERS[0]) not in _ORDERS:
        raise CheckpointError(f"the declared order must be one of {_ORDERS}")
    dropout = d.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise CheckpointError(f"the declared dropout must be in [0, 1), got {dropout!r:.40}")
    for name, fixed, lo, hi in (("in_channels", limits.in_channels, 1, 4),
                                ("num_classes", limits.num_classes, 2, 1000)):
        value = d.get(name, getattr(ModelConfig, name))
        if fixed is not None and value != fixed:
            raise CheckpointError(f"the checkpoint declares {name}={value!r:.40}; {fixed} is required")
        _whole(value, name, lo, hi)
    try:
        config = ModelConfig.from_dict(d)
    except (TypeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"unreadable model config: {exc}") from exc
    try:
        params = param_count(config)
    except (TypeError, ValueError, AttributeError) as exc:  # e.g. a residual block that changes shape
        raise CheckpointError(f"unreadable model config: {exc}") from exc
    if params >= limits.params_below:
        raise CheckpointError(f"the checkpoint declares a network of {params:,} parameters; "
                              f"fewer than {limits.params_below:,} are allowed here")
    return config


# ---------------------------------------------------------------- saving

def card_path(weights_path: Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def save_weights(model: Net, path: Path, card: dict[str, Any]) -> None:
    """Write `path` (.safetensors) and its model card as a pair: the card records the config, the
    parameter count and the sha256 of these weights, and is written first (see the module doc)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # one metadata key: safetensors writes metadata in hash-map order, so with two keys the same
    # weights saved twice would differ in bytes (and in sha256, and in the app's cache key)
    metadata = {"model_config": json.dumps(model.config.to_dict())}
    tmp = temp_path(path)
    try:
        save_file(state, str(tmp), metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        card = {**card, "model_config": model.config.to_dict(), "params": model.num_params(),
                CARD_HASH: file_sha256(tmp)}
        write_json_atomic(card_path(path), card)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- loading

def read_card(weights_path: Path) -> dict:
    p = card_path(weights_path)
    if not p.exists():
        return {}
    try:
        card = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"model card {p.name} is not valid JSON: {exc}") from exc
    if not isinstance(card, dict):
        raise CheckpointError(f"model card {p.name} is not a JSON object")
    return card


def check_pair(path: Path, card: dict) -> None:
    """Refuse a card whose recorded sha256 is not that of the weights beside it. (Cards written
    before the hash was recorded carry none and are accepted.)"""
    recorded = card.get(CARD_HASH)
    if recorded is not None and recorded != file_sha256(path):
        raise CheckpointError(f"{card_path(path).name} does not belong to {Path(path).name}: the card "
                              "records other weights (an interrupted or mixed save). Save the model "
                              "again, or remove the card to load the weights without it.")


def read_header(path: Path, limits: ArchitectureLimits = ArchitectureLimits()
                ) -> tuple[ModelConfig, dict[str, tuple[int, ...]]]:
    """The declared config (checked against `limits`) and the tensor shapes, from the file's
    header only: no tensor is read and no module is built."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path.name}")
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise CheckpointError(f"{path.name} is {size / 2**20:.1f} MB; checkpoints up to "
                              f"{limits.max_file_bytes / 2**20:.0f} MB are accepted here")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path.name} is not a valid safetensors file "
                              f"(corrupt, truncated or another format): {exc}") from exc
    if "model_config" not in metadata:
        raise CheckpointError(f"{path.name} holds no cifar_s9 model config; not one of our checkpoints")
    declared = metadata["model_config"]
    if len(declared) > MAX_CONFIG_CHARS:  # ours is about 1 KB; a huge one is a parser bomb
        raise CheckpointError(f"{path.name} records a model config of {len(declared):,} characters; "
                              f"at most {MAX_CONFIG_CHARS:,} are accepted")
    try:
        raw = json.loads(declared)
    except RecursionError:  # brackets nested deeper than Python's parser recurses
        raise CheckpointError(f"{path.name} records a model config nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path.name} records an unreadable model config: {exc}") from exc
    try:
        return check_declared(raw, limits), shapes
    except CheckpointError as exc:
        raise CheckpointError(f"{path.name}: {exc}") from None


def load_weights(path: Path, expected: ModelConfig | None = None,
                 limits: ArchitectureLimits = ArchitectureLimits()) -> tuple[Net, dict]:
    """Rebuild the network recorded in the file and load it; refuse anything that does not fit.

    The app passes `limits=APP_LIMITS` (a network under the rules, for 3-channel CIFAR-10)."""
    path = Path(path)
    config, shapes = read_header(path, limits)
    if expected is not None and config != expected:
        raise CheckpointError(f"{path.name} holds a different architecture than the one requested")
    try:
        with torch.device("meta"):  # shapes only: allocates nothing
            skeleton = {k: tuple(v.shape) for k, v in Net(config).state_dict().items()}
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path.name} records an unreadable model config: {exc}") from exc
    missing, unexpected, wrong = _compare(skeleton, shapes)
    if missing or unexpected or wrong:
        raise CheckpointError(f"{path.name} does not match its architecture: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}")
    card = read_card(path)
    check_pair(path, card)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name} is not a valid safetensors file "
                              f"(corrupt, truncated or another format): {exc}") from exc
    model = Net(config)
    model.load_state_dict(state)
    model.eval()
    return model, card


def _compare(expected: dict[str, tuple], got: dict[str, tuple]) -> tuple[list, list, list]:
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [k for k in expected if k in got and got[k] != expected[k]]
    return missing, unexpected, wrong


# ---------------------------------------------------------------- resuming (command line)

def save_resume(path: Path, state: dict) -> None:
    write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_resume(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses pickled code with UnpicklingError
        raise CheckpointError(f"cannot resume from {path}: {exc}") from exc
