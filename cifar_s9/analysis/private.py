"""Private copies of a shared network, for every view that hooks it or runs it in pieces
(Grad-CAM, feature maps, receptive fields, occlusion, the torchinfo summary).

A forward hook fires on every forward pass of its module, from any thread: a view that hooked
the served network saw, and broke, other visitors' passes (a torchinfo summary running beside a
feature-map request died on that request's `_Stop`; issue 26.1). So no view hooks the network it
is given. It borrows a copy that one request uses at a time; the served network is only read.

A copy mirrors the network as it was when copied: the app never changes a served network in
place (a new checkpoint is a new network in the model cache). A few idle copies per network wait for the next request (a <200k-parameter net is under 1 MB);
they are keyed weakly, so they go when the model cache drops the network, and a copy that comes
back with a hook left on it is dropped rather than lent again.
"""
from __future__ import annotations

import copy
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

from torch import nn

IDLE_PER_MODEL = 4  # as many as the app runs heavy handlers at once (workload.HEAVY_LIMIT)

_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_IDLE: "weakref.WeakKeyDictionary[nn.Module, list[nn.Module]]" = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()  # guards the two dictionaries only; never held while a network runs


def model_lock(model: nn.Module) -> threading.RLock:
    """Held while a shared network is read whole (copied, or run by a plain prediction), so a
    copy never sees a half-changed network (a test's in-place change, for one)."""
    with _GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


def _hook_dicts(module: nn.Module) -> list[dict]:
    return [module._forward_hooks, module._forward_pre_hooks, module._backward_hooks,
            getattr(module, "_backward_pre_hooks", {})]


def hooks_left(model: nn.Module) -> int:
    """Forward/backward hooks still registered on any submodule (0 after every view)."""
    return sum(len(d) for m in model.modules() for d in _hook_dicts(m))


def _fresh(model: nn.Module) -> nn.Module:
    with model_lock(model):
        twin = copy.deepcopy(model)
    for m in twin.modules():  # deepcopy copies hooks too; one on the served net is not the view's
        for hooks in _hook_dicts(m):
            hooks.clear()
    for p in twin.parameters():  # Grad-CAM and the input gradients need gradients to flow
        p.requires_grad_(True)
    return twin


@contextmanager
def borrowed(model: nn.Module) -> Iterator[nn.Module]:
    """A copy of `model` (same weights, same train/eval mode) that only this request runs,
    hooks and differentiates; returned for reuse afterwards if it is clean."""
    with _GUARD:
        idle = _IDLE.get(model)
        twin = idle.pop() if idle else None
    if twin is None:
        twin = _fresh(model)
    twin.train(model.training)
    try:
        yield twin
    finally:
        twin.zero_grad(set_to_none=True)
        if hooks_left(twin) == 0:
            with _GUARD:
                idle = _IDLE.setdefault(model, [])
                if len(idle) < IDLE_PER_MODEL:
                    idle.append(twin)


def idle_copies(model: nn.Module) -> int:
    """How many copies of `model` wait to be lent (tests check the bound)."""
    with _GUARD:
        return len(_IDLE.get(model, ()))
