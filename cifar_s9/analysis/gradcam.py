"""Class-activation maps for our Net: the one place that calls pytorch-grad-cam.

Layers are named like the architecture: "C1".."C4" (a block's output, after its residual sum)
and "C1.conv1".."C4.conv3" (a ConvUnit's output, i.e. after its ReLU in conv-bn-act order, so
the CAM sees post-activation maps; the third unit of a residual block is the exception: its
ReLU comes after the sum, so "Ci.conv3" is the branch before it is added).

Two hazards handled here:
  - hooks: the CAM object is always used as a context manager, so its forward hooks are removed
    even when a request fails (tests check that none is left behind);
  - concurrency: the CAM stores activations on itself, and its hooks fire on *any* forward pass
    of the module they are on; so a CAM never hooks the network it is given, only a copy that
    this request alone runs (`private.borrowed`), and two requests never mix their heatmaps.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ..data.images import upscale
from ..data.transforms import normalize_uint8
from .pictures import blend, colour, colour_levels
from ..errors import UserError
from .private import borrowed, hooks_left, model_lock  # noqa: F401 (re-exported)

# method name -> pytorch-grad-cam class name; the library (and OpenCV) load on the first explain,
# not when the app starts
METHODS = {
    "GradCAM": "GradCAM",
    "GradCAM++": "GradCAMPlusPlus",
    "XGradCAM": "XGradCAM",
    "HiResCAM": "HiResCAM",
    "LayerCAM": "LayerCAM",
    "EigenCAM": "EigenCAM",          # first principal component of the activations: class-agnostic
    "EigenGradCAM": "EigenGradCAM",
}
CLASS_AGNOSTIC = {"EigenCAM"}
DEFAULT_METHOD = "GradCAM"
DEFAULT_LAYER = "C4"  # the last block: the standard Grad-CAM choice, coarsest but most semantic


class ExplainError(UserError):
    pass


# ---------------------------------------------------------------- layers

def layer_names(model: nn.Module) -> list[str]:
    """["C1", "C1.conv1", "C1.conv2", "C1.conv3", "C2", ...]: blocks, each followed by its units."""
    names = []
    for i, _ in enumerate(model.blocks, start=1):
        names.append(f"C{i}")
        names += [f"C{i}.conv{j}" for j in (1, 2, 3)]
    return names


def target_layer(model: nn.Module, name: str) -> nn.Module:
    parts = str(name).split(".")
    head = parts[0]
    i = int(head[1:]) if head[:1] == "C" and head[1:].isdigit() else 0
    if not 1 <= i <= len(model.blocks) or len(parts) > 2 \
            or (len(parts) == 2 and parts[1] not in ("conv1", "conv2", "conv3")):
        raise ExplainError(f"unknown layer {name!r}; choose one of {layer_names(model)}")
    block = model.blocks[i - 1]
    return block if len(parts) == 1 else getattr(block, parts[1])


# ---------------------------------------------------------------- explain

def explain(model: nn.Module, image: np.ndarray, method: str = DEFAULT_METHOD,
            layer: str = DEFAULT_LAYER, target_class: int | None = None) -> np.ndarray:
    """Heatmap (H, W) float32 in [0, 1] for one (H, W, 3) uint8 image (normally 32x32).

    `target_class` None explains the predicted class; any class index answers "why not that
    class?" (EigenCAM ignores it).
    """
    return explain_many(model, checked_image(image)[None], method, layer, [target_class])[0]


def checked_image(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ExplainError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    return image


class _Predicted:
    """pytorch-grad-cam target: the class the network predicts for this image."""

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return model_output[..., int(model_output.argmax(-1))]


@contextmanager
def graph_from(net: nn.Module, layer: nn.Module) -> Iterator[nn.Module]:
    """While open, autograd records `net` only from `layer`'s input up: that input becomes a leaf
    and no parameter asks for a gradient. Every method here reads the gradient at `layer`'s output
    alone, which is the same either way (a test compares them bit for bit), so the backward pass
    skips the layers below it and every weight gradient: Grad-CAM at C4 costs half. For a borrowed
    copy only: the flags are restored and the hook removed on exit."""
    params = list(net.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    handle = layer.register_forward_pre_hook(
        lambda module, inputs: tuple(_leaf(i) for i in inputs))
    try:
        yield layer
    finally:
        handle.remove()
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _leaf(value):
    if torch.is_tensor(value) and value.is_floating_point():
        return value.detach().requires_grad_(True)
    return value


def explain_many(model: nn.Module, images: np.ndarray, method: str = DEFAULT_METHOD,
                 layer: str = DEFAULT_LAYER, targets: list[int | None] | None = None) -> np.ndarray:
    """`explain` for (N, H, W, 3) uint8 images in one pass: heatmaps (N, H, W), each the one its
    image gets alone (every method scales and projects per image; a test checks each). `targets`:
    one class index or None (the prediction) per image; None: all predicted."""
    if method not in METHODS:
        raise ExplainError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8 or not len(images):
        raise ExplainError(f"expected (N, H, W, 3) uint8 images, got {images.shape} {images.dtype}")
    targets = [None] * len(images) if targets is None else list(targets)
    if len(targets) != len(images):
        raise ExplainError(f"{len(targets)} targets for {len(images)} images")
    num_classes = model.config.num_classes
    for t in targets:
        if t is not None and not 0 <= int(t) < num_classes:
            raise ExplainError(f"target class must be in [0, {num_classes}), got {t}")
    target_layer(model, layer)  # an unknown layer is refused before a copy is made
    device = next(model.parameters()).device
    x = torch.from_numpy(normalize_uint8(images)).to(device)
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam_class = METHODS[method]  # a class name, or a class (tests plug in failing ones)
    cam_class = getattr(pytorch_grad_cam, cam_class) if isinstance(cam_class, str) else cam_class
    cam_targets = None if all(t is None for t in targets) else \
        [_Predicted() if t is None else ClassifierOutputTarget(int(t)) for t in targets]
    heatmaps = None
    with borrowed(model) as net, torch.enable_grad(), graph_from(net, target_layer(net, layer)) as at, \
            cam_class(model=net, target_layers=[at]) as cam:
        heatmaps = cam(input_tensor=x, targets=cam_targets)
    if heatmaps is None or len(heatmaps) != len(images):
        # pytorch-grad-cam's __exit__ swallows IndexError; do not return garbage
        raise ExplainError(f"{method} failed on layer {layer}")
    return np.nan_to_num(np.asarray(heatmaps, np.float32), nan=0.0)


# ---------------------------------------------------------------- display

def colorize(heatmap: np.ndarray, size: int) -> np.ndarray:
    """(h, w) in [0, 1] -> (size, size, 3) uint8 jet colours, smoothly (bilinear) enlarged.
    Quantised to the colour map's 256 levels before the enlargement, which then runs in 8 bits."""
    import cv2
    levels = np.uint8(np.rint(255 * np.clip(np.nan_to_num(heatmap), 0, 1)))
    return colour_levels(cv2.resize(levels, (size, size), interpolation=cv2.INTER_LINEAR), "jet")


def overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5, size: int = 256) -> np.ndarray:
    """The image enlarged with nearest neighbour (the pixels the net saw; `size` rounds down to a
    whole multiple of the image's side), the heatmap blended on top."""
    checked_opacity(opacity)
    base = upscale(image, size)
    return blend(base, colorize(heatmap, base.shape[0]), opacity)


def colorbar(height: int, width: int = 14) -> np.ndarray:
    """(height, width, 3) uint8: the jet scale `colorize` uses, high evidence at the top."""
    return colour(np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(width, 1), "jet")


def with_colorbar(overlay_image: np.ndarray, width: int = 14, gap: int = 6, label_w: int = 36) -> np.ndarray:
    """The overlay with the colour scale at its right, labelled "high" at the top, "low" below."""
    import cv2
    h, w = overlay_image.shape[:2]
    out = np.full((h, w + gap + width + label_w, 3), 255, np.uint8)
    out[:, :w] = overlay_image
    out[:, w + gap:w + gap + width] = colorbar(h, width)
    x = w + gap + width + 3
    for text, y in (("high", 12), ("low", h - 4)):
        cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (40, 40, 40), 1, cv2.LINE_AA)
    return out


def picture(model: nn.Module, image: np.ndarray, method: str = DEFAULT_METHOD,
            layer: str = DEFAULT_LAYER, target_class: int | None = None, opacity: float = 0.5) -> np.ndarray:
    """What the app shows for a Grad-CAM: the image enlarged, its heatmap blended on top, the
    colour scale at the right (256 pixels high). The opacity is checked before any work."""
    checked_opacity(opacity)
    return shown(image, explain(model, image, method, layer, target_class), opacity)


def checked_opacity(opacity: float) -> float:
    if not 0.0 <= opacity <= 1.0:
        raise ExplainError(f"opacity must be in [0, 1], got {opacity}")
    return opacity


def shown(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """`picture` of a heatmap already made (the app batches the heatmaps of concurrent requests)."""
    return with_colorbar(overlay(image, heatmap, opacity))
