"""Which explanation can I trust? Every map the app draws for an image, scored by how faithful it
is to the network, with pytorch-grad-cam's ROAD metric (Rong et al. 2022, "A Consistent and
Efficient Evaluation Strategy for Attribution Methods"; `pytorch_grad_cam.metrics.road`).

For each share of the pixels in REMOVED (20, 40, 60, 80%) ROAD removes the pixels the map calls
most relevant (MoRF) and, separately, those it calls least relevant (LeRF), fills them in from
their neighbours (noisy linear imputation, so the hole's outline tells the network nothing), and
records the change in the predicted class's probability. The score is the library's
`ROADCombined`: (mean LeRF change - mean MoRF change) / 2, in [-0.5, 0.5]. Higher = removing the
pixels this map calls important hurts the prediction more than removing the unimportant ones; a
random map scores about 0 (it is scored beside the others as the reference point).

The MoRF and LeRF passes are called one share at a time (`ROADMostRelevantFirst(p)`,
`ROADLeastRelevantFirst(p)`, in `ROADCombined`'s own order), so the curves come with the score at
no extra cost; the score equals `ROADCombined(percentiles=...)` on the same maps and RNG state
(a test checks it). Two things are ours:
  - every map is replaced by its pixel ranks (ties broken by a fixed random order) before
    scoring: ROAD thresholds a map at its percentiles and removes every pixel at or above the
    threshold, so a map that is 0 over half the image (a ReLU'd CAM) would have far more than
    the asked share removed; ranks keep the map's order and make each share exact;
  - the imputer's noise (0.01 in normalised units) comes from torch's global RNG, which the app
    does not reseed (other visitors' work shares it): a score moves by a few thousandths between
    two runs (`bench/faithfulness.py` seeds it for the shipped ranking).

Maps scored: every CAM method of `gradcam.METHODS` at each chosen layer (private copies, as
`gradcam.explain` always does), occlusion and integrated gradients (`inside.attribution`, at the
Inside tab's defaults; integrated gradients signed: positive speaks for the class), and a random
map. The request's cost is bounded before any work: at most MAX_MAPS maps, each 2 x len(REMOVED)
imputations.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from ..data.cifar import CLASSES
from ..errors import UserError
from .gradcam import METHODS, explain, layer_names
from .inside import attribution
from .inside.probe import running, to_input

REMOVED = (20, 40, 60, 80)   # % of the pixels removed per ROAD pass: pytorch-grad-cam's README choice
DEFAULT_LAYERS = ("C1", "C2", "C3", "C4")  # the block outputs; the units inside are there to choose
EXTRA_MAPS = ("occlusion", "integrated gradients", "random map")
MAX_MAPS = 40                # 7 methods x 5 layers + the three others; 7 x 4 + 3 = 31 by default
MAX_CHOICES = 64             # items (or characters / 16) in a methods or layers value, read first
RANDOM_SEED = 0
MEANING = ("Higher = removing the pixels this map calls important hurts the prediction more than "
           "removing the unimportant ones.")


class FaithfulnessError(UserError):
    pass


# ---------------------------------------------------------------- what to score

@dataclass(frozen=True)
class Plan:
    methods: tuple[str, ...]
    layers: tuple[str, ...]

    @property
    def maps(self) -> int:
        return len(self.methods) * len(self.layers) + len(EXTRA_MAPS)

    @property
    def imputations(self) -> int:
        return self.maps * 2 * len(REMOVED)


def _choices(value, what: str, allowed: list[str], default: tuple[str, ...]) -> tuple[str, ...]:
    """A list of names from a UI or JSON value: None, "" or "all" ("all": every allowed name for
    methods, `default` otherwise), a comma-separated text, or a list of texts. Sizes are checked
    before the value is split or walked; unknown names are refused by name."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "default")):
        return default
    if isinstance(value, str):
        if len(value) > MAX_CHOICES * 16:
            raise FaithfulnessError(f"{what}: at most {MAX_CHOICES} names, comma-separated")
        if value.strip().lower() == "all":
            return tuple(allowed)
        value = value.split(",")
    if not isinstance(value, (list, tuple)) or len(value) > MAX_CHOICES \
            or not all(isinstance(v, str) and len(v) <= 32 for v in value):
        raise FaithfulnessError(f"{what} must be names such as {allowed[0]!r}, as a list or "
                                f"comma-separated text (at most {MAX_CHOICES})")
    names = list(dict.fromkeys(v.strip() for v in value if v.strip()))  # order kept, repeats once
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise FaithfulnessError(f"unknown {what[:-1]} {unknown[0][:32]!r}; choose from {', '.join(allowed)}")
    if not names:
        raise FaithfulnessError(f"choose at least one {what[:-1]}")
    return tuple(names)


def plan(model: nn.Module, methods=None, layers=None) -> Plan:
    """The checked methods and layers, refused (before any work) if they make over MAX_MAPS maps."""
    p = Plan(_choices(methods, "methods", list(METHODS), tuple(METHODS)),
             _choices(layers, "layers", layer_names(model), DEFAULT_LAYERS))
    if p.maps > MAX_MAPS:
        raise FaithfulnessError(
            f"{len(p.methods)} methods x {len(p.layers)} layers + {len(EXTRA_MAPS)} = {p.maps} maps; "
            f"at most {MAX_MAPS} per request (each map costs {2 * len(REMOVED)} ROAD passes): "
            "choose fewer methods or layers")
    return p


# ---------------------------------------------------------------- the maps

def cam_name(method: str, layer: str) -> str:
    return f"{method} at {layer}"


def random_map(seed: int = RANDOM_SEED, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).random((size, size)).astype(np.float32)


def all_maps(model: nn.Module, image: np.ndarray, target: int, p: Plan, seed: int = RANDOM_SEED
             ) -> dict[str, np.ndarray]:
    """{name: (32, 32) map} for every CAM method at every layer of the plan, then occlusion,
    integrated gradients and a random map; all explain `target`."""
    maps = {cam_name(m, layer): explain(model, image, m, layer, target)
            for layer in p.layers for m in p.methods}
    maps["occlusion"] = attribution.occlusion(model, image, target)
    maps["integrated gradients"] = attribution.integrated_gradients(model, image, target)
    maps["random map"] = random_map(seed, image.shape[0])
    return maps


def ranked(heatmap: np.ndarray, seed: int = RANDOM_SEED) -> np.ndarray:
    """The map's pixel ranks scaled to [0, 1] (0: least relevant), ties in a fixed random order."""
    flat = np.nan_to_num(np.asarray(heatmap, np.float64)).ravel()
    tie_break = np.random.default_rng(seed).random(flat.size)
    ranks = np.empty(flat.size)
    ranks[np.lexsort((tie_break, flat))] = np.arange(flat.size)
    return (ranks / max(flat.size - 1, 1)).reshape(np.shape(heatmap)).astype(np.float32)


# ---------------------------------------------------------------- ROAD

@dataclass(frozen=True)
class Score:
    name: str
    road: float                       # ROADCombined: (mean LeRF change - mean MoRF change) / 2
    most_first: tuple[float, ...]     # probability change after removing REMOVED[i]% most relevant
    least_first: tuple[float, ...]    # ... least relevant

    @property
    def method(self) -> str:
        return self.name.split(" at ")[0]


def road(model: nn.Module, image: np.ndarray, maps: dict[str, np.ndarray], target: int,
         removed: tuple[int, ...] = REMOVED) -> list[Score]:
    """Every map's ROAD score for `target`'s probability, best first (pytorch-grad-cam's metrics,
    all maps in one batch per pass, on a private eval copy of `model`)."""
    from pytorch_grad_cam.metrics.road import ROADLeastRelevantFirst, ROADMostRelevantFirst
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    names = list(maps)
    cams = np.stack([ranked(maps[n]) for n in names])
    x = to_input(image, model).repeat(len(names), 1, 1, 1)
    targets = [ClassifierOutputSoftmaxTarget(int(target))] * len(names)
    percentiles = [100 - s for s in removed]  # ROAD's percentile p removes the (100 - p)% past it
    with running(model) as net:
        # ROADCombined's order (LeRF at each percentile, then MoRF), so the RNG draws match it
        lerf = np.float32([ROADLeastRelevantFirst(p)(x, cams, targets, net) for p in sorted(percentiles)])
        morf = np.float32([ROADMostRelevantFirst(p)(x, cams, targets, net) for p in sorted(percentiles)])
    combined = (np.mean(lerf, axis=0) - np.mean(morf, axis=0)) / 2
    back = [sorted(percentiles).index(100 - s) for s in removed]  # rows in the order of `removed`
    scores = [Score(n, float(combined[i]), tuple(float(morf[j, i]) for j in back),
                    tuple(float(lerf[j, i]) for j in back)) for i, n in enumerate(names)]
    return sorted(scores, key=lambda s: -s.road)


@dataclass(frozen=True)
class Ranking:
    target: int
    probability: float
    scores: list[Score]    # best first
    plan: Plan
    seconds: float


def rank_maps(model: nn.Module, image: np.ndarray, methods=None, layers=None) -> Ranking:
    """The visitor's view: every map of the plan for the predicted class, ROAD-scored, best first."""
    p = plan(model, methods, layers)  # refused before anything runs
    started = time.perf_counter()
    probs = attribution.predicted(model, image)
    target = int(probs.argmax())
    scores = road(model, image, all_maps(model, image, target, p), target)
    return Ranking(target, float(probs[target]), scores, p, time.perf_counter() - started)


# ---------------------------------------------------------------- words and tables

def _signed(x: float) -> str:
    return f"{x:+.3f}".replace("-", "\u2212")


def table(result: Ranking) -> list[list]:
    """Rows for the ranked table: rank, map, score, mean probability change with the most and
    with the least relevant pixels removed."""
    return [[i, s.name, _signed(s.road), _signed(float(np.mean(s.most_first))),
             _signed(float(np.mean(s.least_first)))] for i, s in enumerate(result.scores, start=1)]


TABLE_HEADERS = ["#", "map", "score", "\u0394p, important removed", "\u0394p, unimportant removed"]


def summary(result: Ranking) -> str:
    best, n = result.scores[0], len(result.scores)
    names = [s.name for s in result.scores]
    rnd = result.scores[names.index("random map")]
    below = n - 1 - names.index("random map")
    cls = CLASSES[result.target]
    chance = ("every map beats it" if below == 0 else
              f"{below} of {n - 1} maps score below it: those explain this prediction no better "
              "than chance")
    return (f"Scoring the maps that explain **{cls}** ({result.probability:.1%}). **{MEANING}** "
            f"The score is half the gap between the {cls} probability once the least and once the "
            f"most relevant pixels are removed (filled in from their neighbours), averaged over "
            f"removing {', '.join(map(str, REMOVED))}% of the pixels (ROAD, pytorch-grad-cam's "
            f"`ROADCombined`); a random map scores about 0.\n\n"
            f"Best here: **{best.name}** ({_signed(best.road)}). The random map scores "
            f"{_signed(rnd.road)}; {chance}. One image says little: the test-sample ranking below "
            f"is steadier. <small>{n} maps, {n * 2 * len(REMOVED)} ROAD passes, "
            f"{result.seconds:.1f} s.</small>")


def to_json(result: Ranking) -> dict:
    return {"target": CLASSES[result.target], "probability": result.probability,
            "measure": "ROADCombined", "removed_percent": list(REMOVED),
            "methods": list(result.plan.methods), "layers": list(result.plan.layers),
            "ranking": [{"map": s.name, "score": s.road, "most_relevant_removed": list(s.most_first),
                         "least_relevant_removed": list(s.least_first)} for s in result.scores],
            "seconds": round(result.seconds, 2)}


# ---------------------------------------------------------------- the test-sample ranking

def spread(values: np.ndarray, seed: int = RANDOM_SEED, resamples: int = 2000) -> dict:
    """Mean, standard deviation and a 95% bootstrap interval of the mean (SciPy, BCa)."""
    from scipy.stats import bootstrap

    v = np.asarray(values, np.float64)
    lo = hi = float(v.mean())
    if len(v) > 1 and np.ptp(v) > 0:
        ci = bootstrap((v,), np.mean, n_resamples=resamples, confidence_level=0.95, method="BCa",
                       rng=np.random.default_rng(seed)).confidence_interval
        lo, hi = float(ci.low), float(ci.high)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "ci95": [lo, hi]}


def sample_ranking(model: nn.Module, images: np.ndarray, methods=None, layers=None,
                   progress=None) -> dict:
    """Every map of the plan scored on each image (its predicted class; the random map a new
    draw per image), then per map: mean ± std, a 95% bootstrap interval and the mean rank,
    best mean first."""
    p = plan(model, methods, layers)
    per_image: dict[str, list[float]] = {}
    ranks: dict[str, list[int]] = {}
    started = time.perf_counter()
    for i, image in enumerate(images):
        target = int(attribution.predicted(model, image).argmax())
        scores = road(model, image, all_maps(model, image, target, p, seed=i), target)
        for r, s in enumerate(scores, start=1):
            per_image.setdefault(s.name, []).append(s.road)
            ranks.setdefault(s.name, []).append(r)
        if progress is not None:
            progress(i + 1, len(images), time.perf_counter() - started)
    rows = [{"map": name, **spread(np.array(v)), "mean_rank": float(np.mean(ranks[name]))}
            for name, v in per_image.items()]
    rows.sort(key=lambda r: -r["mean"])
    return {"n": len(images), "methods": list(p.methods), "layers": list(p.layers),
            "seconds_per_image": round((time.perf_counter() - started) / max(len(images), 1), 2),
            "ranking": rows}


@dataclass(frozen=True)
class SampleRanking:
    weights: str         # the file name the ranking was made for
    data: str            # which images
    n: int
    rows: list[dict]     # map, mean, std, ci95, mean_rank; best first

    @classmethod
    def load(cls, path: Path, key: str | None) -> "SampleRanking | None":
        """The shipped ranking for the network whose content key is `key` (None: none made)."""
        try:
            entry = json.loads(Path(path).read_text())["models"][key]
            rows = [{"map": str(r["map"]), "mean": float(r["mean"]), "std": float(r["std"]),
                     "ci95": [float(r["ci95"][0]), float(r["ci95"][1])],
                     "mean_rank": float(r["mean_rank"])} for r in entry["ranking"]]
            found = cls(str(entry["weights"]), str(entry["data"]), int(entry["n"]), rows)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
        if not key or not rows or not all(math.isfinite(r["mean"]) for r in rows):
            return None
        return found

    def table(self) -> list[list]:
        return [[i, r["map"], f"{_signed(r['mean'])} \u00b1 {r['std']:.3f}",
                 f"{_signed(r['ci95'][0])} to {_signed(r['ci95'][1])}", f"{r['mean_rank']:.1f}"]
                for i, r in enumerate(self.rows, start=1)]

    def caption(self) -> str:
        best = self.rows[0]
        overlapping = [r["map"] for r in self.rows[1:] if r["ci95"][1] >= best["ci95"][0]]
        tied = (f"; its 95% interval overlaps {len(overlapping)} other map"
                f"{'s' if len(overlapping) != 1 else ''} ({', '.join(overlapping[:3])}"
                f"{', ...' if len(overlapping) > 3 else ''}), so those are not told apart on "
                f"{self.n} images" if overlapping else "; no other map's interval reaches it")
        return (f"**On the test sample** ({self.data}; {self.weights}): mean ROAD score ± standard "
                f"deviation over the {self.n} images, a 95% bootstrap interval of the mean, and the "
                f"mean rank among the maps. Best: **{best['map']}**{tied}. Computed offline "
                "(`bench/faithfulness.py`).")


SAMPLE_HEADERS = ["#", "map", "mean \u00b1 std", "95% interval", "mean rank"]
