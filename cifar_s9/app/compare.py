"""Two designs side by side for one image (issue 27.4): the visitor's model and the reference
design, each with its top classes and its Grad-CAM under the same settings. When the visitor's
model is the reference design itself, the shipped model takes the other column: a column that
repeats the first would show nothing.

The cost is bounded and known: one forward pass and one Grad-CAM per column, on the 32x32 image,
in one request (so one place of the app's heavy-work budget, `workload.share_one_budget`). Every
value is checked before either network runs. The networks are the shared ones of
`serving.ModelCache`: predictions only read them, and the Grad-CAM hooks a private copy
(`analysis.private`), so neither design is ever changed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..analysis import gradcam
from ..data.cifar import CLASSES
from ..errors import UserError, number, whole_number
from . import texts
from .serving import ActiveModel, class_index, probabilities, top_k

YOURS = "Your model"
REFERENCE = "Reference design"
SHIPPED = "Shipped model"


@dataclass(frozen=True)
class CamSettings:
    """The Grad-CAM both columns are drawn with (the tab's own settings)."""
    method: str = gradcam.DEFAULT_METHOD
    layer: str = gradcam.DEFAULT_LAYER
    target: int | None = None      # None: each network's own predicted class
    opacity: float = 0.5

    @classmethod
    def parse(cls, method, layer, target, opacity) -> "CamSettings":
        """Values as a page or an HTTP client sent them (None: the default) -> checked settings;
        a UserError names the first bad one. The layer is checked against each network later."""
        method = cls.method if method is None else method
        if not isinstance(method, str) or method not in gradcam.METHODS:
            raise UserError(f"unknown Grad-CAM method {str(method)[:40]!r}; choose one of "
                            f"{', '.join(gradcam.METHODS)}")
        layer = cls.layer if layer is None else layer
        if not isinstance(layer, str) or len(layer) > 16:
            raise UserError(f"a target layer is a name like {cls.layer!r}, got {str(layer)[:40]!r}")
        if isinstance(target, bool) or not isinstance(target, (str, int, type(None))) \
                or (isinstance(target, str) and len(target) > 16):  # no class name is longer
            raise UserError(f"the target class is a class name or 'predicted', got {str(target)[:40]!r}")
        opacity = number(cls.opacity if opacity is None else opacity, "opacity")
        if not 0.0 <= opacity <= 1.0:
            raise UserError(f"opacity must be in [0, 1], got {opacity}")
        return cls(method, layer, class_index(target), opacity)

    @property
    def class_agnostic(self) -> bool:
        return self.method in gradcam.CLASS_AGNOSTIC


@dataclass(frozen=True)
class Column:
    """One design's answer: its title (whose, which, how accurate), top classes and Grad-CAM."""
    title: str
    top: dict[str, float]
    cam: np.ndarray     # (256, 256 + colour bar, 3) uint8, as Classify's own Grad-CAM


@dataclass(frozen=True)
class Comparison:
    note: str           # what is compared (and why with the shipped model, if it is)
    yours: Column
    other: Column


def partner(yours: ActiveModel, reference: ActiveModel, shipped: ActiveModel) -> tuple[str, ActiveModel]:
    """(role, model) of the design to set beside the visitor's: the reference design, or the
    shipped model when the visitor's model already is the reference (same weights and card)."""
    if not _same(yours, reference):
        return REFERENCE, reference
    if _same(shipped, reference):
        raise UserError("your model is the reference design, and so is the model this app ships: "
                        "there is no other design to compare it with")
    return SHIPPED, shipped


def _same(a: ActiveModel, b: ActiveModel) -> bool:
    return a.key == b.key or (a.digest is not None and a.digest == b.digest)


def column(active: ActiveModel, role: str, image: np.ndarray, k: int, cam: CamSettings,
           measured: tuple[float, int, bool] | None = None) -> Column:
    """One forward pass (the top classes) and one Grad-CAM of `active` for one 32x32 image."""
    probs = probabilities(active.model, image)
    picture = gradcam.picture(active.model, image, cam.method, cam.layer, cam.target, cam.opacity)
    return Column(texts.design_title(role, active.source, active.card, active.warning, measured),
                  top_k(probs, k), picture)


def compare(yours: ActiveModel, reference: ActiveModel, shipped: ActiveModel, image: np.ndarray,
            k, cam: CamSettings, measured: Callable[[ActiveModel], tuple | None] = lambda active: None
            ) -> Comparison:
    """The visitor's model and its partner (`partner`) on the same image with the same settings.
    `measured(active)`: the app's own test accuracy of a model if known (the banner's number),
    else each title quotes its card."""
    k = whole_number(k, "top-k", 1, len(CLASSES))
    if not (isinstance(image, np.ndarray) and image.shape == (32, 32, 3) and image.dtype == np.uint8):
        raise UserError("the comparison needs the 32x32 RGB image the network sees")
    role, other = partner(yours, reference, shipped)
    for active in (yours, other):  # a layer either network lacks is refused before any work
        gradcam.target_layer(active.model, cam.layer)
    note = texts.compare_note(cam.method, cam.layer, cam.target, cam.class_agnostic,
                              role.lower(), role == SHIPPED)
    return Comparison(note, column(yours, YOURS, image, k, cam, measured(yours)),
                      column(other, role, image, k, cam, measured(other)))
