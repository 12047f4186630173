"""Serving models to many visitors: a bounded cache of loaded models keyed by content hash,
predictions, and a per-model evaluation cache. Nothing here knows about Gradio.

Each visitor's session holds only a `ModelChoice` (a hash and a display name: cheap to deep-copy,
as Gradio does for every session's state); the loaded networks live once in `ModelCache`, shared
by every session that chose the same checkpoint. The shipped model is pinned; others are evicted
least-recently-used and reloaded from their file on the next request.
"""
from __future__ import annotations

import copy
import hashlib
import os
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..records.checkpoint import APP_LIMITS, CARD_HASH, CheckpointError, load_weights
from ..data.cifar import CLASSES, Split, save_npz_atomic
from ..analysis.evaluate import Evaluation, predict_logits, summarize
from ..analysis import gradcam
from ..analysis.gradcam import model_lock
from .batching import Coalescer
from ..model.net import Net, build_model
from ..errors import UserError

SHIPPED = "shipped"


@dataclass(frozen=True)
class ModelChoice:
    """What a session remembers about its model: a cache key and the name a visitor reads."""
    key: str = SHIPPED
    label: str = "shipped model"

    @property
    def shipped(self) -> bool:
        return self.key == SHIPPED


@dataclass(frozen=True)
class ActiveModel:
    model: Net
    card: dict
    source: str             # what a visitor may read: a file or run name, never a server path
    key: str                # the cache key; also keys the evaluation cache
    warning: str | None = None
    digest: str | None = None  # content hash of the weights (None: untrained), for the disk cache

    @property
    def trained(self) -> bool:
        return self.warning is None


def load_servable(weights: str | Path) -> tuple[Net, dict]:
    """`load_weights`, plus the checks that the app can serve it: 3-channel input, the 10 CIFAR-10
    classes, and a 32x32 forward pass that works. Anything else is a CheckpointError."""
    path = Path(weights)
    model, card = load_weights(path, limits=APP_LIMITS)  # declared architecture checked first
    cfg = model.config
    if cfg.in_channels != 3 or cfg.num_classes != len(CLASSES):
        raise CheckpointError(f"{path.name} is a network for {cfg.in_channels}-channel images and "
                              f"{cfg.num_classes} classes; this app serves 3-channel CIFAR-10 (10 classes)")
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(1, 3, 32, 32))
    except RuntimeError as exc:
        raise CheckpointError(f"{path.name} cannot classify a 32x32 image: {exc}") from exc
    if tuple(out.shape) != (1, len(CLASSES)):
        raise CheckpointError(f"{path.name} gives outputs of shape {tuple(out.shape)}, not (1, 10)")
    return model, card


def _serving(model: Net) -> Net:
    model = model.to("cpu").eval()
    for p in model.parameters():  # Grad-CAM needs gradients w.r.t. activations, so keep grad on
        p.requires_grad_(True)
    return model


def content_key(model: Net, card: dict) -> str:
    """sha256 of the tensors (by name) and the card: the same network is the same key for
    everyone. (Not the file's bytes: safetensors may order its header differently each save.)"""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode() + b"\0" + str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    described = {k: v for k, v in card.items() if k != CARD_HASH}  # the file's hash, not the network's
    h.update(json.dumps(described, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


# A served network is about 1 MB (plus a few private copies for the views): room for many
MODEL_CAPACITY = 32
# The models one session keeps loaded; its own older ones go first, so one session's (or a few
# sessions') uploads never push out another session's model
MODELS_PER_OWNER = 3


class ModelCache:
    """The shipped model (pinned) plus up to `capacity` other loaded models. Each owner (a
    session) holds its `per_owner` latest models; when the cache is full, the least recently used
    model that no owner holds goes first, then the oldest one of whoever holds the most. `add` checks
    and loads a checkpoint and returns the ModelChoice a session keeps; `get` turns a choice back
    into a model (reloading it if it was evicted), named with that session's own label."""

    def __init__(self, shipped_weights: str | Path | None, capacity: int = MODEL_CAPACITY,
                 fallback_preset: str = "default", max_files: int = 256,
                 per_owner: int = MODELS_PER_OWNER, max_owners: int = 2000):
        self.capacity, self.max_files = capacity, max_files
        self.per_owner, self.max_owners = per_owner, max_owners
        self._lock = threading.Lock()
        self._models: OrderedDict[str, ActiveModel] = OrderedDict()
        self._files: OrderedDict[str, tuple] = OrderedDict()  # key -> (file, label, check)
        self._held: OrderedDict[str, list[str]] = OrderedDict()  # owner -> its latest keys
        self.shipped = self._load_shipped(shipped_weights, fallback_preset)

    @staticmethod
    def _load_shipped(weights, fallback_preset: str) -> ActiveModel:
        if weights is not None:
            try:
                model, card = load_servable(weights)
                return ActiveModel(_serving(model), card, Path(weights).name, SHIPPED,
                                   digest=content_key(model, card))
            except CheckpointError as exc:
                reason = str(exc)
        else:
            reason = "no weights file was given"
        warning = (f"Untrained model: {reason}. Predictions are random until you train a model "
                   "(Train tab) or start the app with --weights PATH.")
        return ActiveModel(_serving(build_model(fallback_preset)), {"preset": fallback_preset},
                           f"untrained {fallback_preset}", SHIPPED, warning)

    def add(self, weights: str | Path, label: str, check=None, owner: str | None = None) -> ModelChoice:
        """Load a checkpoint the server wrote (or received as an upload); CheckpointError if it is
        unusable or `check(model)` refuses it (before it is cached for anyone)."""
        weights = Path(weights)
        if not weights.is_file():
            raise CheckpointError(f"no checkpoint {label!r} (it may have been cleaned up)")
        model, card = load_servable(weights)  # outside the lock: loading takes a while
        if check is not None:
            check(model)
        key = content_key(model, card)
        with self._lock:
            if key not in self._models:  # the same network chosen twice is loaded once
                self._models[key] = ActiveModel(_serving(model), card, label, key, digest=key)
            self._models.move_to_end(key)
            if owner is not None:
                self._hold(owner, key)
            self._evict()
            self._remember(key, weights, label, check)
        return ModelChoice(key, label)

    def _hold(self, owner: str, key: str) -> None:
        keys = [k for k in self._held.pop(owner, []) if k != key] + [key]
        self._held[owner] = keys[-self.per_owner:]
        while len(self._held) > self.max_owners:
            self._held.popitem(last=False)

    def _evict(self) -> None:
        """Down to capacity: unheld models first (least recently used), then the oldest model of
        whoever holds the most, so a session holding one model loses it last."""
        while len(self._models) > self.capacity:
            held = {k for keys in self._held.values() for k in keys}
            victim = next((k for k in self._models if k not in held), None)
            if victim is None:
                greedy = max(self._held, key=lambda o: len(self._held[o]))
                victim = self._held[greedy].pop(0)
                if any(victim in keys for keys in self._held.values()):
                    continue  # another owner still holds it: keep it loaded
            self._models.pop(victim, None)

    def _remember(self, key: str, weights: Path, label: str, check) -> None:
        self._files[key] = (weights, label, check)
        self._files.move_to_end(key)
        while len(self._files) > self.max_files:
            self._files.popitem(last=False)

    def get(self, choice: ModelChoice | None) -> ActiveModel:
        if choice is None or choice.shipped:
            return self.shipped
        with self._lock:
            active = self._models.get(choice.key)
            if active is not None:
                self._models.move_to_end(choice.key)
                return replace(active, source=choice.label)  # this session's name for it
            known = self._files.get(choice.key)
        if known is not None:
            try:
                if self.add(*known).key == choice.key:  # same bytes as when it was chosen
                    with self._lock:
                        return replace(self._models[choice.key], source=choice.label)
            except (CheckpointError, KeyError):
                pass
        # gone (cleaned up, or changed on disk): say so and serve the shipped model
        return ActiveModel(self.shipped.model, self.shipped.card, self.shipped.source, SHIPPED,
                           f"{choice.label} is no longer available; showing the shipped model")

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)


# ---------------------------------------------------------------- predictions

def probabilities(model: Net, image: np.ndarray) -> np.ndarray:
    """Softmax probabilities (10,) for one (32, 32, 3) uint8 image; concurrent calls for the
    same network share one forward pass (`batching`)."""
    # no lock: views hook and differentiate private copies (analysis.private), so the served
    # network is only read, and reads run side by side
    return _PROBABILITIES((model, image.shape), image)


def heatmap(model: Net, image: np.ndarray, method: str = gradcam.DEFAULT_METHOD,
            layer: str = gradcam.DEFAULT_LAYER, target_class: int | None = None) -> np.ndarray:
    """`gradcam.explain`, with concurrent calls for the same network, method and layer sharing
    one pass."""
    gradcam.checked_image(image)  # refused before it joins a batch
    return _HEATMAPS((model, str(method), str(layer), image.shape), (image, target_class))


def _probabilities_of(key, images) -> list[np.ndarray]:
    model, _ = key
    return list(predict_logits(model, np.stack(images), "cpu").softmax(1).numpy())


def _heatmaps_of(key, items) -> np.ndarray:
    model, method, layer, _ = key
    return gradcam.explain_many(model, np.stack([image for image, _ in items]), method, layer,
                                [target for _, target in items])


# process-wide, like the networks they run: requests from every session share a pass
_PROBABILITIES = Coalescer(_probabilities_of)
_HEATMAPS = Coalescer(_heatmaps_of)


def top_k(probs: np.ndarray, k: int = 3) -> dict[str, float]:
    """{class name: probability} for the k most likely classes, most likely first."""
    k = int(max(1, min(len(CLASSES), k)))
    order = np.argsort(-probs, kind="stable")[:k]
    return {CLASSES[i]: float(probs[i]) for i in order}


def class_index(name: str | int | None) -> int | None:
    """A class name or index -> index; None, "" and "predicted" -> None (explain the prediction)."""
    if name is None or name == "" or name == "predicted":
        return None
    if isinstance(name, (int, np.integer)):
        index = int(name)
    elif str(name).lower() in CLASSES:
        index = CLASSES.index(str(name).lower())
    else:
        raise UserError(f"unknown class {name!r}; choose one of {', '.join(CLASSES)}")
    if not 0 <= index < len(CLASSES):
        raise UserError(f"class index must be in [0, {len(CLASSES)}), got {index}")
    return index


# ---------------------------------------------------------------- evaluation cache

def inference_copy(model: Net) -> Net:
    """An eval-mode copy of `model` with each BatchNorm folded into the convolution before it
    (same outputs up to float rounding; about a fifth less work on a CPU)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    from ..model.layers import ConvUnit, DepthwiseSeparableConv2d

    fast = copy.deepcopy(model).eval()
    for p in fast.parameters():
        p.requires_grad_(False)
    for unit in fast.modules():
        if isinstance(unit, ConvUnit) and len(unit) > 1 and isinstance(unit[1], torch.nn.BatchNorm2d):
            conv = unit[0]
            if isinstance(conv, DepthwiseSeparableConv2d):
                conv.pointwise = fuse_conv_bn_eval(conv.pointwise, unit[1])
            else:
                unit[0] = fuse_conv_bn_eval(conv, unit[1])
            unit[1] = torch.nn.Identity()
    return fast


def prune_oldest(folder: Path, pattern: str, keep: int) -> int:
    """Delete all but the `keep` most recently used files matching `pattern`; returns how many
    went. Every uploaded model adds one evaluation file, so the folder is bounded here."""
    files = []
    for f in Path(folder).glob(pattern):
        try:
            files.append((f.stat().st_mtime, f))
        except OSError:
            continue  # removed meanwhile by another request's prune
    files.sort(reverse=True)
    removed = 0
    for _, f in files[keep:]:
        try:
            f.unlink()
            removed += 1
        except OSError:
            pass
    return removed


class EvaluationCache:
    """One Evaluation per (model, test set), the last `capacity` kept in memory; concurrent first
    requests for the same pair evaluate once (the others wait for it).

    Inference on the 10,000 test images is the whole cost of the Mistakes tab (about 20 s on two
    CPU cores), and it used to be paid again after every activation. Now a model is evaluated once
    per content: in memory by its cache key, and on disk (`disk_dir`, the logits, 400 KB) by the
    hash of its weights and of the test images, so a restarted app, or the shipped model that
    `warm_up` evaluated at start, answers at once."""

    def __init__(self, capacity: int = 4, disk_dir: Path | None = None, disk_capacity: int = 64):
        self.capacity, self.disk_dir, self.disk_capacity = capacity, disk_dir, disk_capacity
        self._lock = threading.Lock()  # guards the two dicts only; never held while evaluating
        self._values: OrderedDict[tuple, Evaluation] = OrderedDict()
        self._evaluating: dict[tuple, threading.Lock] = {}  # one lock per key being evaluated

    def get(self, active: ActiveModel, split: Split, progress=None) -> Evaluation:
        """Two models evaluate side by side; two requests for the same model evaluate once."""
        key = (active.key, split.source, len(split))
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            key_lock = self._evaluating.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._values:  # another request finished it while this one waited
                    return self._values[key]
            value = self._load_or_evaluate(active, split, progress)
            with self._lock:
                self._values[key] = value
                while len(self._values) > self.capacity:
                    self._values.popitem(last=False)
                self._evaluating.pop(key, None)
            return value

    def _disk_path(self, active: ActiveModel, split: Split) -> Path | None:
        if self.disk_dir is None or active.digest is None:
            return None
        h = hashlib.sha256(np.ascontiguousarray(split.images).data)
        h.update(np.ascontiguousarray(split.labels).data)
        return Path(self.disk_dir) / f"eval-{active.digest[:24]}-{h.hexdigest()[:24]}.npz"

    def _load_or_evaluate(self, active: ActiveModel, split: Split, progress) -> Evaluation:
        path = self._disk_path(active, split)
        if path is not None and path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    logits = z["logits"]
                if logits.shape == (len(split), 10):
                    os.utime(path)  # recently used: the prune below keeps it
                    return summarize(torch.from_numpy(logits), split.labels)
            except (OSError, ValueError, KeyError):
                pass  # unreadable: evaluate again and rewrite it
        # a private copy with BatchNorm folded in: 10,000 forwards must neither hold the shared
        # model's lock (every visitor's Classify would wait) nor pay for BatchNorm separately
        with model_lock(active.model):
            fast = inference_copy(active.model)
        logits = predict_logits(fast, split.images, "cpu", progress=progress)
        if path is not None:
            try:
                save_npz_atomic(path, logits=logits.numpy())
                prune_oldest(path.parent, "eval-*.npz", self.disk_capacity)
            except OSError:
                pass  # a read-only cache folder only costs the next start some time
        return summarize(logits, split.labels)

    def cached(self, active: ActiveModel, split: Split) -> bool:
        with self._lock:
            return (active.key, split.source, len(split)) in self._values
