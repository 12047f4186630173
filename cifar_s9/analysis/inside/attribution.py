"""Three answers to "which pixels made the network say this class?", side by side:

  - occlusion (Captum `Occlusion`): grey out a patch (the dataset's mean colour, i.e. 0 after
    normalisation), slide it with a stride, and record how much the class *probability* drops;
    each pixel gets the mean drop over the patches that covered it;
  - integrated gradients (Captum `IntegratedGradients`): the class *logit*'s gradient averaged
    along the straight path from the mean-colour image to this one, times the difference,
    summed over RGB (signed: positive pixels speak for the class);
  - Grad-CAM (`cifar_s9.analysis.gradcam`, pytorch-grad-cam) at the last block, for the same class.

Agreement is Spearman's rank correlation over the 32x32 pixels (signed maps as they are;
Grad-CAM is non-negative by construction). Pictures show the positive part of each map.
Captum and SciPy load on the first request (seconds), not when the app starts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ...data.cifar import CLASSES
from ..gradcam import explain
from . import render
from .probe import IMAGE_SIZE, InsideError, running, to_input, whole

PATCH = 8            # default occlusion patch side (pixels): a quarter of the image's side
STRIDE = 4           # default occlusion stride: each pixel covered by up to 4 patches
PATCH_RANGE = (2, 16)
STRIDE_RANGE = (1, 16)
MAX_WINDOWS = 400    # occluded copies per request: 8x8 at stride 2 makes 169; 2x2 at stride 1
                     # (961) is refused
STEPS = 16           # integrated-gradients steps (Gauss-Legendre); the summary reports how far the
                     # map's sum is from the logit change it should add up to (1-21% on the five
                     # examples checked; 32 steps would double the view's cost)
STEPS_RANGE = (4, 128)
CAM_LAYER = "C4"
MAPS = ("occlusion", "integrated gradients", "Grad-CAM")


@dataclass(frozen=True)
class Attributions:
    target: int
    probability: float          # of the target class, on the unoccluded image
    occlusion: np.ndarray       # (32, 32) mean drop in the target's probability
    gradients: np.ndarray       # (32, 32) integrated gradients summed over RGB
    gradcam: np.ndarray         # (32, 32) in [0, 1]
    logit_change: float         # target logit of the image minus that of the mean-colour image
    agreement: dict[str, float]  # "a vs b" -> Spearman rank correlation (nan if a map is flat)

    @property
    def maps(self) -> dict[str, np.ndarray]:
        return dict(zip(MAPS, (self.occlusion, self.gradients, self.gradcam)))


def windows(patch: int, stride: int, size: int = IMAGE_SIZE) -> int:
    """Patches per side times patches per side, as Captum places them (the last one is cut at
    the border, so every pixel is covered)."""
    per_side = -(-(size - patch) // stride) + 1
    return per_side * per_side


def stride_range(patch: int) -> tuple[int, int]:
    """The strides a `patch` allows, (lowest, highest): at most the patch itself (a larger stride
    would leave pixels no patch covers), at least the smallest that keeps the occluded copies
    within MAX_WINDOWS. The page's stride slider takes this range whenever the patch changes."""
    hi = min(STRIDE_RANGE[1], patch)
    lo = next(s for s in range(STRIDE_RANGE[0], hi + 1) if windows(patch, s) <= MAX_WINDOWS)
    return lo, hi


def fit_stride(patch, stride) -> int:
    """The stride nearest to `stride` that `patch` allows (for the page: a patch change moves the
    stride instead of refusing it); values that are not whole numbers are left to check_occlusion."""
    lo, hi = stride_range(whole(patch, "patch size", *PATCH_RANGE))
    try:
        return min(max(int(stride), lo), hi) if float(stride).is_integer() else stride
    except (TypeError, ValueError, OverflowError):
        return stride


def check_occlusion(patch, stride) -> tuple[int, int]:
    patch = whole(patch, "patch size", *PATCH_RANGE)
    lo, hi = stride_range(patch)
    stride = whole(stride, "stride", *STRIDE_RANGE)
    if stride > hi:
        raise InsideError(f"stride {stride} is larger than the {patch}-pixel patch, so some pixels "
                          f"would never be covered: use a stride from {lo} to {hi}")
    if stride < lo:
        raise InsideError(f"a {patch}x{patch} patch with stride {stride} makes {windows(patch, stride)} "
                          f"occluded copies; at most {MAX_WINDOWS}: use a stride from {lo} to {hi}")
    return patch, stride


def occlusion(model: nn.Module, image: np.ndarray, target: int, patch: int = PATCH,
              stride: int = STRIDE) -> np.ndarray:
    from captum.attr import Occlusion

    patch, stride = check_occlusion(patch, stride)
    x = to_input(image, model)
    with running(model) as net, torch.no_grad():
        attr = Occlusion(lambda t: net(t).softmax(1)).attribute(
            x, sliding_window_shapes=(3, patch, patch), strides=(3, stride, stride), baselines=0.0,
            target=int(target), perturbations_per_eval=64)
    return attr[0, 0].cpu().numpy().astype(np.float32)  # the patch spans RGB: channels are equal


def integrated_gradients(model: nn.Module, image: np.ndarray, target: int, steps: int = STEPS) -> np.ndarray:
    from captum.attr import IntegratedGradients

    steps = whole(steps, "steps", *STEPS_RANGE)
    x = to_input(image, model)
    with running(model) as net, torch.enable_grad():
        attr = IntegratedGradients(net).attribute(x, baselines=0.0, target=int(target),
                                                    n_steps=steps, internal_batch_size=steps)
    return attr[0].sum(0).detach().cpu().numpy().astype(np.float32)


def logit_change(model: nn.Module, image: np.ndarray, target: int) -> float:
    """What integrated gradients must add up to: logit(image) - logit(mean-colour image)."""
    x = to_input(image, model)
    with running(model) as net, torch.no_grad():
        logits = net(torch.cat([x, torch.zeros_like(x)]))
    return float(logits[0, int(target)] - logits[1, int(target)])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps' values (ties get their mean rank); nan when
    either map is constant (no ranking to compare)."""
    from scipy.stats import spearmanr

    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if a.shape != b.shape:
        raise InsideError(f"maps of different sizes: {a.size} and {b.size} values")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def agreement(maps: dict[str, np.ndarray]) -> dict[str, float]:
    names = list(maps)
    return {f"{a} vs {b}": spearman(maps[a], maps[b])
            for i, a in enumerate(names) for b in names[i + 1:]}


def predicted(model: nn.Module, image: np.ndarray) -> np.ndarray:
    with running(model) as net, torch.no_grad():
        return net(to_input(image, model)).softmax(1)[0].cpu().numpy()


def attributions(model: nn.Module, image: np.ndarray, target=None, patch=PATCH, stride=STRIDE,
                 steps=STEPS) -> Attributions:
    """The three maps for `target` (None: the predicted class) and how well they agree."""
    patch, stride = check_occlusion(patch, stride)
    probs = predicted(model, image)
    target = int(probs.argmax()) if target is None else whole(target, "target class", 0, len(probs) - 1)
    occ = occlusion(model, image, target, patch, stride)
    ig = integrated_gradients(model, image, target, steps)
    cam = explain(model, image, "GradCAM", CAM_LAYER, target)
    maps = dict(zip(MAPS, (occ, ig, cam)))
    return Attributions(target, float(probs[target]), occ, ig, cam,
                        logit_change(model, image, target), agreement(maps))


def pictures(image: np.ndarray, result: Attributions, size: int = 256,
             opacity: float = 0.5) -> list[tuple[np.ndarray, str]]:
    """[(the image with a map's positive part blended on, caption)] for the three maps. Colours
    saturate at the 99th percentile: a few extreme pixels (gradients have them) would otherwise
    leave the rest of the map dark."""
    base = render.enlarge(image, size)
    out = []
    for name, m in result.maps.items():
        positive = np.maximum(m, 0)
        heat = render.colour(render.unit_range(positive, 0.0, float(np.percentile(positive, 99))), "jet")
        out.append((render.blend(base, render.enlarge(heat, size), opacity), name))
    return out


def summary(result: Attributions) -> str:
    """Markdown: the class explained, and the agreement of each pair of maps."""
    lines = [f"Explaining **{CLASSES[result.target]}** (probability {result.probability:.1%}). "
             "Rank correlation (Spearman, over the 1,024 pixels; 1 = same ranking, 0 = unrelated):"]
    for pair, rho in result.agreement.items():
        lines.append(f"- {pair}: " + ("undefined (a map is flat)" if np.isnan(rho) else f"{rho:+.2f}"))
    lines.append("\n" + agreement_sentence(result.agreement))
    lines.append(f"\nIntegrated gradients add up to {float(result.gradients.sum()):+.2f}; the "
                 f"{CLASSES[result.target]} logit changes by {result.logit_change:+.2f} from the "
                 "mean-colour image to this one (equal with exact integration).")
    return "\n".join(lines)


AGREE, DISAGREE = 0.5, 0.2  # |Spearman| at least this: the rankings agree; under that: they do not


def agreement_sentence(agreement: dict[str, float]) -> str:
    """What to conclude from the three rank correlations, in one sentence."""
    known = {pair: rho for pair, rho in agreement.items() if not np.isnan(rho)}
    if not known:
        return "**What it means:** a map is flat, so there is nothing to compare."
    best_pair, best = max(known.items(), key=lambda kv: kv[1])
    if all(rho >= AGREE for rho in known.values()):
        return ("**What it means:** the three methods rank the pixels alike, so the regions they "
                "share are a fair account of what the network used.")
    if all(abs(rho) < DISAGREE for rho in known.values()):
        return ("**What it means:** the three maps barely agree (every |correlation| under "
                f"{DISAGREE}): each method measures something different here (a greyed patch, "
                "pixel gradients, the last block's coarse evidence), so read no single map as the "
                "explanation.")
    return (f"**What it means:** only {best_pair} agree somewhat ({best:+.2f}); where the others "
            "disagree, treat each map as one method's view, not as the network's reason.")
