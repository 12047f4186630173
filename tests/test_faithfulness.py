"""Which map to trust (cifar_s9.analysis.faithfulness): pytorch-grad-cam's ROAD on a toy network
whose true importance is known, the score equal to the library's ROADCombined, the ranks that
make each removed share exact, the cost bound checked before any work, the served network left
untouched, and the shipped test-sample ranking read back only for its own network."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from cifar_s9.analysis import faithfulness as faith
from cifar_s9.analysis.gradcam import METHODS, hooks_left, layer_names

ROWS, COLS = slice(8, 16), slice(12, 20)   # the one 8x8 patch the toy network reads


class PatchReader(nn.Module):
    """Class 0's logit is 3 x the mean of one 8x8 patch of the (normalised) input; the other nine
    are 0. Its probability is ~0.98 with the patch white, ~0 with it black."""

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(3.0))

    def forward(self, x):
        logit = self.gain * x[:, :, ROWS, COLS].mean(dim=(1, 2, 3))
        return torch.stack([logit] + [torch.zeros_like(logit)] * 9, dim=1)


@pytest.fixture(scope="module")
def toy():
    image = np.zeros((32, 32, 3), np.uint8)
    image[ROWS, COLS] = 255  # white patch on black: removing it (imputed from black) hurts
    truth = np.zeros((32, 32), np.float32)
    truth[ROWS, COLS] = 1.0
    return PatchReader().eval(), image, truth


def test_the_true_importance_scores_well_above_its_inverse_and_a_random_map(toy):
    model, image, truth = toy
    maps = {"truth": truth, "inverse": 1 - truth, "random": faith.random_map()}
    scores = {s.name: s for s in faith.road(model, image, maps, 0)}
    assert [s.name for s in faith.road(model, image, maps, 0)][0] == "truth"
    assert scores["truth"].road > 0.3 > abs(scores["random"].road) + 0.2
    assert scores["inverse"].road < -0.3
    # removing any share of the most relevant pixels takes out the whole patch: probability ~0;
    # removing the least relevant ones leaves the patch, so the probability does not move
    assert all(m < -0.9 for m in scores["truth"].most_first)
    assert all(abs(v) < 0.02 for v in scores["truth"].least_first)


def test_the_score_is_pytorch_grad_cams_road_combined(toy):
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model, image, truth = toy
    maps = {"truth": truth, "inverse": 1 - truth, "random": faith.random_map(3)}
    torch.manual_seed(7)
    ours = {s.name: s for s in faith.road(model, image, maps, 0)}
    torch.manual_seed(7)  # the same imputer noise, drawn in ROADCombined's own order
    x = faith.to_input(image, model).repeat(3, 1, 1, 1)
    cams = np.stack([faith.ranked(m) for m in maps.values()])
    theirs = ROADCombined(percentiles=[100 - s for s in faith.REMOVED][::-1])(
        x, cams, [ClassifierOutputSoftmaxTarget(0)] * 3, copy.deepcopy(model))
    for i, name in enumerate(maps):
        assert ours[name].road == pytest.approx(float(theirs[i]), abs=1e-7)
        # and it is the mean of the curves it shows
        assert ours[name].road == pytest.approx(
            (np.mean(ours[name].least_first) - np.mean(ours[name].most_first)) / 2, abs=1e-6)


def test_ranks_keep_the_order_and_break_ties_so_each_share_is_exact():
    cam = np.zeros((32, 32), np.float32)
    cam[:4] = 0.5
    cam[0, 0] = 1.0  # 1 top pixel, 127 at 0.5, 896 at 0: ROAD's percentile cut would remove far too many
    r = faith.ranked(cam)
    assert sorted(r.ravel().tolist()) == pytest.approx(np.linspace(0, 1, 1024).tolist())
    assert r[0, 0] == 1.0 and r[:4].min() > r[4:].max()  # every 0.5 above every 0
    np.testing.assert_array_equal(r, faith.ranked(cam))  # the tie order is fixed
    zeros = r[4:].ravel()  # but not the raster order, which would remove the top rows first
    assert 0.3 < np.mean(np.diff(zeros) > 0) < 0.7
    for share in faith.REMOVED:  # RemoveMostRelevantFirst keeps the pixels under the cut
        kept = int((r < np.percentile(r, 100 - share)).sum())
        assert abs((1024 - kept) - share / 100 * 1024) <= 1
    assert np.isfinite(faith.ranked(np.full((32, 32), np.nan))).all()


@pytest.mark.parametrize("methods, layers, words", [
    # every method on 6 layers, with the 3 maps beside them (45 for the 7 methods of today)
    (None, ["C1", "C2", "C3", "C4", "C1.conv1", "C2.conv1"], f"{len(METHODS) * 6 + 3} maps"),
    ("GradCAM,Nope", None, "unknown method 'Nope'"),
    (["GradCAM"], ["C9"], "unknown layer 'C9'"),
    ([], None, "at least one method"),
    ("9" * 600_000, None, "at most 64"),
    ([["GradCAM"]], None, "must be names"),
    ({"$gt": ""}, None, "must be names"),
    (1e308, None, "must be names"),
    (["GradCAM"] * 65, None, "must be names"),
])
def test_a_bad_or_too_costly_plan_is_refused_before_any_map_is_drawn(model, monkeypatch, methods, layers, words):
    def no_work(*a, **k):
        raise AssertionError("a map was drawn for a refused plan")
    monkeypatch.setattr(faith, "explain", no_work)
    with pytest.raises(faith.FaithfulnessError, match=words.replace("(", r"\(")):
        faith.rank_maps(model, np.zeros((32, 32, 3), np.uint8), methods, layers)


def test_plans_read_names_as_lists_or_text():
    from cifar_s9.model.net import build_model
    net = build_model("default")
    default = faith.plan(net)
    assert default.methods == tuple(METHODS) and default.layers == faith.DEFAULT_LAYERS
    maps = len(METHODS) * 4 + 3  # the 4 block outputs, occlusion, gradients, random (31 today)
    assert default.maps == maps and default.imputations == maps * 8
    p = faith.plan(net, " HiResCAM , GradCAM,HiResCAM", ["C4.conv3", "C2"])
    assert p.methods == ("HiResCAM", "GradCAM") and p.layers == ("C4.conv3", "C2")
    assert faith.plan(net, "all", "").layers == faith.DEFAULT_LAYERS
    assert faith.plan(net, ["GradCAM"], "all").layers == tuple(layer_names(net))  # 16 + 3 maps
    assert faith.MAX_MAPS >= 7 * 5 + 3


def test_every_map_is_scored_for_the_prediction_and_the_served_network_is_untouched(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    result = faith.rank_maps(model, image, ["GradCAM", "EigenCAM"], ["C2", "C4.conv1"])
    names = [s.name for s in result.scores]
    assert sorted(names) == sorted(["GradCAM at C2", "EigenCAM at C2", "GradCAM at C4.conv1",
                                    "EigenCAM at C4.conv1", *faith.EXTRA_MAPS])
    assert [s.road for s in result.scores] == sorted((s.road for s in result.scores), reverse=True)
    assert all(-0.5 <= s.road <= 0.5 and len(s.most_first) == len(faith.REMOVED) for s in result.scores)
    assert result.target == int(faith.attribution.predicted(model, image).argmax())
    assert hooks_left(model) == 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    rows = faith.table(result)
    assert [r[0] for r in rows] == list(range(1, len(names) + 1)) and rows[0][1] == names[0]
    words = faith.summary(result)
    assert faith.MEANING in words and "random map scores" in words and "ROAD passes" in words
    data = faith.to_json(result)
    assert json.loads(json.dumps(data))["ranking"][0]["map"] == names[0]


def test_spread_gives_a_bootstrap_interval_around_the_mean():
    values = np.random.default_rng(1).normal(0.2, 0.1, 100)
    s = faith.spread(values)
    assert s["ci95"][0] < s["mean"] < s["ci95"][1] and s["ci95"][1] - s["ci95"][0] < 0.06
    assert s["std"] == pytest.approx(values.std(ddof=1))
    assert faith.spread(np.full(5, 0.3))["ci95"] == [0.3, 0.3]


def test_the_sample_ranking_on_a_real_network(model):
    images = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    seen = []
    out = faith.sample_ranking(model, images, ["GradCAM"], ["C4"], progress=lambda i, n, s: seen.append(i))
    assert out["n"] == 3 and seen == [1, 2, 3] and len(out["ranking"]) == 4
    means = [r["mean"] for r in out["ranking"]]
    assert means == sorted(means, reverse=True)
    assert all(r["ci95"][0] <= r["mean"] + 1e-9 <= r["ci95"][1] + 2e-9 and 1 <= r["mean_rank"] <= 4
               for r in out["ranking"])


def _ranking_file(tmp_path, key="abc", rows=None):
    rows = rows or [{"map": "occlusion", "mean": 0.2, "std": 0.1, "ci95": [0.15, 0.25], "mean_rank": 3.0},
                    {"map": "GradCAM at C4", "mean": 0.18, "std": 0.1, "ci95": [0.16, 0.2], "mean_rank": 5.0},
                    {"map": "random map", "mean": 0.0, "std": 0.02, "ci95": [-0.01, 0.01], "mean_rank": 20.0}]
    path = tmp_path / "faithfulness.json"
    path.write_text(json.dumps({"models": {key: {"weights": "w.safetensors", "data": "3 images",
                                                  "n": 3, "ranking": rows}}}))
    return path


def test_the_shipped_ranking_is_read_only_for_its_own_network(tmp_path):
    path = _ranking_file(tmp_path)
    found = faith.SampleRanking.load(path, "abc")
    assert found.n == 3 and found.rows[0]["map"] == "occlusion"
    assert faith.SampleRanking.load(path, "other") is None and faith.SampleRanking.load(path, None) is None
    assert faith.SampleRanking.load(tmp_path / "missing.json", "abc") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert faith.SampleRanking.load(tmp_path / "bad.json", "abc") is None
    (tmp_path / "nan").mkdir()
    nan = _ranking_file(tmp_path / "nan", rows=[{"map": "m", "mean": "NaN", "std": 0, "ci95": [0, 0], "mean_rank": 1}])
    assert faith.SampleRanking.load(nan, "abc") is None
    rows = found.table()
    assert rows[0][:2] == [1, "occlusion"] and "\u00b1 0.100" in rows[0][2] and rows[2][4] == "20.0"
    caption = found.caption()
    assert "Best: **occlusion**" in caption and "overlaps 1 other map (GradCAM at C4)" in caption


def test_the_shipped_file_holds_the_shipped_model_and_the_reference_design():
    from cifar_s9 import paths
    from cifar_s9.app.serving import ModelCache

    if not paths.FAITHFULNESS.exists():
        pytest.skip("weights/faithfulness.json is not generated in this checkout")
    cache = ModelCache(paths.DEFAULT_WEIGHTS)
    for key in (cache.shipped.digest, cache.add(paths.REFERENCE_WEIGHTS, "reference").key):
        found = faith.SampleRanking.load(paths.FAITHFULNESS, key)
        assert found is not None and found.n >= 100, key
        assert {"random map", "occlusion", "integrated gradients", "GradCAM at C4"} <= {r["map"] for r in found.rows}
