""""Why not this class?": Grad-CAM for all ten classes from one forward pass.

The layer's activations A and the logits come from one forward pass; the ten gradients
d logit_k / d A come from one batched backward pass (`is_grads_batched`: the rows of the
identity as output gradients). Each map is Grad-CAM's: ReLU(sum_c mean(dlogit_k/dA_c) * A_c),
then pytorch-grad-cam's own min-max scaling and resize, so each equals what
`cifar_s9.analysis.gradcam.explain(..., "GradCAM", layer, k)` returns (a test checks it).
The pictures use `shared` instead: the same maps resized, divided by the largest value of all
ten, so a class with little evidence stays dark instead of glowing as red as the prediction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ...data.cifar import CLASSES
from . import render
from .probe import forward_with, running, to_input

LAYER = "C4"


@dataclass(frozen=True)
class ClassMaps:
    layer: str
    probabilities: np.ndarray  # (K,)
    cams: np.ndarray           # (K, H, W) in [0, 1], one Grad-CAM per class, each scaled on its own
    shared: np.ndarray         # (K, H, W) in [0, 1], the same maps on one scale for all classes

    @property
    def predicted(self) -> int:
        return int(self.probabilities.argmax())


def all_class_cams(model: nn.Module, image: np.ndarray, layer: str = LAYER) -> ClassMaps:
    from pytorch_grad_cam.utils.image import scale_cam_image  # loads in seconds: on first use

    x = to_input(image, model)
    with running(model) as net, torch.enable_grad():
        logits, acts = forward_with(net, x, layer)
        k = logits.shape[1]
        eye = torch.eye(k, dtype=logits.dtype, device=logits.device)[:, None, :]  # (K, 1, K)
        (grads,) = torch.autograd.grad(logits, acts, grad_outputs=eye, is_grads_batched=True)
    a = acts.detach()[0].cpu().numpy()                   # (C, h, w)
    weights = grads[:, 0].mean(dim=(2, 3)).cpu().numpy()  # (K, C): Grad-CAM's channel weights
    raw = np.maximum(np.einsum("kc,chw->khw", weights, a), 0)
    size = (x.shape[-1], x.shape[-2])
    cams = np.stack([scale_cam_image(scale_cam_image(c[None], size))[0] for c in raw])
    resized = torch.nn.functional.interpolate(torch.from_numpy(raw[:, None]).float(), size=size[::-1],
                                              mode="bilinear", align_corners=False)[:, 0].numpy()
    shared = np.maximum(resized, 0) / max(float(resized.max()), 1e-12)
    probs = logits.detach().softmax(1)[0].cpu().numpy()
    return ClassMaps(layer, probs, np.nan_to_num(cams.astype(np.float32), nan=0.0),
                     np.nan_to_num(shared.astype(np.float32), nan=0.0))


def grid(image: np.ndarray, maps: ClassMaps, size: int = 128,
         opacity: float = 0.5) -> list[tuple[np.ndarray, str]]:
    """[(image with class k's Grad-CAM blended on, "cat 71.2%")] in class order (a 2x5 grid),
    all ten on one colour scale; the predicted class is marked."""
    base = render.enlarge(image, size)
    out = []
    for k, (cam, p) in enumerate(zip(maps.shared, maps.probabilities)):
        picture = render.blend(base, render.enlarge(render.colour(cam, "jet"), size), opacity)
        mark = " (predicted)" if k == maps.predicted else ""
        out.append((picture, f"{CLASSES[k]} {p:.1%}{mark}"))
    return out


def grid_picture(image: np.ndarray, maps: ClassMaps, size: int = 128, columns: int = 5) -> np.ndarray:
    """One picture of the ten maps, 2 rows of 5, each labelled "cat 71.2%" below it; the
    predicted class is framed in red. (One picture keeps the 2x5 layout on any screen.)"""
    gap = 6
    tiles = []
    for k, (picture, _) in enumerate(grid(image, maps, size)):
        if k == maps.predicted:
            picture = render.rectangle(picture, 0, 0, size - 1, size - 1, render.BOX, 4)
        label = f"{CLASSES[k]} {maps.probabilities[k]:.1%}"
        tiles.append(render.label_below(picture, [label], line_height=17))
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    out = np.full((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return out
