"""Inside the network: what the "Inside" tab shows, as plain functions on (model, 32x32 image).

    probe.py        running a shared model safely: lock, eval mode, hooks that are always removed
    features.py     feature maps of any layer, channels sorted by mean activation
    fields.py       a unit's theoretical receptive field on the image and its effective one
    attribution.py  occlusion and integrated gradients (Captum) beside Grad-CAM, and their agreement
    why_not.py      Grad-CAM for all ten classes from one forward pass
    render.py       numpy pictures for the UI: colour maps, enlargement, boxes, shading

Layers are named as in `cifar_s9.analysis.gradcam`: "C1".."C4" (block outputs) and "C1.conv1".."C4.conv3".
Every function raises `InsideError` (a `UserError`) with a readable message for bad input.
"""
from .probe import InsideError

__all__ = ["InsideError"]
