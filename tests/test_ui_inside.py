"""The Inside tab's handlers, called as plain functions (no server): what each endpoint returns,
the page's clicks, and clear errors for every bad input."""
from __future__ import annotations

import json
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import torch

from cifar_s9.data.transforms import normalize_uint8
from cifar_s9.analysis.faithfulness import MAX_MAPS
from cifar_s9.analysis.gradcam import METHODS, hooks_left, target_layer
from cifar_s9.app.session import Session
from cifar_s9.ui.common import to_rgb32
from cifar_s9.ui.inside import NO_IMAGE, InsideHandlers

CAT = "assets/examples/cat.jpg"
S0 = Session()
WITH_CAT = Session().with_image(CAT)


@pytest.fixture(scope="module")
def inside(weights_path, tmp_path_factory):
    import app as app_module
    ctx = app_module.configure(weights=weights_path, runs_dir=tmp_path_factory.mktemp("runs"))
    return InsideHandlers(ctx)


def hook_record(model, rgb, layer):
    seen = []
    handle = target_layer(model, layer).register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    try:
        with torch.no_grad():
            model(torch.from_numpy(normalize_uint8(rgb[None])))
    finally:
        handle.remove()
    return seen[0][0].numpy()


def test_feature_maps_endpoint_returns_the_hooked_tensor(inside):
    tiles, data = inside.feature_maps(CAT, "C3", "shared", S0)
    model = inside.ctx.model(S0).model
    expected = hook_record(model, to_rgb32(CAT), "C3")
    assert data["shape"] == [128, 8, 8] and len(tiles) == 128
    np.testing.assert_array_equal(np.asarray(data["activations"], np.float32), expected)
    means = expected.mean(axis=(1, 2))
    assert data["order"] == [int(c) for c in np.argsort(-means, kind="stable")]
    assert data["ranges"][5] == [float(expected[5].min()), float(expected[5].max())]
    assert tiles[0][1].startswith(f"#{data['order'][0]} ")
    assert hooks_left(model) == 0


def test_receptive_field_endpoint(inside):
    field_pic, grad_pic, words, data = inside.receptive_field(CAT, "C4", 1, 2, None, S0)
    assert data["size"] == 81 and data["box"] == [-32, -24, 48, 56] and data["on_image"] == [32, 32]
    assert data["padding_pixels"] == 81 * 81 - 32 * 32 and data["fraction"] == 0.5
    assert isinstance(data["central_square"], int) and data["central_square"] % 2 == 1
    assert "81x81 pixels, more than the 32x32 image" in words
    assert f"central {data['central_square']}x{data['central_square']}" in words
    assert field_pic.shape[0] >= 256 and grad_pic.shape == (256, 256, 3)
    one = inside.receptive_field(CAT, "C1.conv2", 10, 10, "3", S0)[3]
    assert one["box"] == [8, 8, 12, 12] and one["padding_pixels"] == 0


def test_occlusion_endpoint(inside):
    pictures, summary, data = inside.occlusion(CAT, "dog", 8, 4, S0)
    assert [c for _, c in pictures] == ["occlusion", "integrated gradients", "Grad-CAM"]
    assert data["target"] == "dog" and 0 <= data["probability"] <= 1
    assert set(data["agreement"]) == {"occlusion vs integrated gradients", "occlusion vs Grad-CAM",
                                      "integrated gradients vs Grad-CAM"}
    assert "**dog**" in summary
    predicted = inside.occlusion(CAT, "predicted", 16, 16, S0)[2]
    probs = inside.explain_all(CAT, "C4", S0)[1]
    assert predicted["target"] == max(probs, key=probs.get)


def test_explain_all_endpoint(inside):
    grid, probs = inside.explain_all(CAT, "C4", S0)
    assert len(grid) == 10 and list(probs)[0] == "airplane"
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert sum(c.endswith("(predicted)") for _, c in grid) == 1


@pytest.mark.parametrize("call, message", [
    (lambda h: h.feature_maps(CAT, "C9", "shared", S0), "unknown layer"),
    (lambda h: h.feature_maps(CAT, "C1", "log", S0), "scale"),
    (lambda h: h.feature_maps(None, "C1", "shared", S0), "No image"),
    (lambda h: h.receptive_field(CAT, "C4", 4, 0, None, S0), "row must be a whole number in \\[0, 3\\]"),
    (lambda h: h.receptive_field(CAT, "C4", 0, float("nan"), None, S0), "column"),
    (lambda h: h.receptive_field(CAT, "C4", 0, 0, 192, S0), "channel must be a whole number in \\[0, 191\\]"),
    (lambda h: h.receptive_field(CAT, "C4", "1; rm -rf /", 0, None, S0), "row"),
    (lambda h: h.receptive_field(CAT, ["C4"], 0, 0, None, S0), "layer must be a name"),
    (lambda h: h.occlusion(CAT, "unicorn", 8, 4, S0), "unknown class"),
    (lambda h: h.occlusion(CAT, "cat", 1, 1, S0), "patch size"),
    (lambda h: h.occlusion(CAT, "cat", 8, 9, S0), "stride 9 is larger than the 8-pixel patch.*from 2 to 8"),
    (lambda h: h.occlusion(CAT, "cat", 2, 4, S0), "stride 4 is larger than the 2-pixel patch.*from 2 to 2"),
    (lambda h: h.occlusion(CAT, "cat", 4, 1, S0), "at most 400"),
    (lambda h: h.occlusion(CAT, "cat", float("inf"), 4, S0), "patch size"),
    (lambda h: h.explain_all(CAT, "C4.conv4", S0), "unknown layer"),
    (lambda h: h.explain_all("/etc/passwd", "C4", S0), "image"),
])
def test_bad_inputs_are_clear_errors(inside, call, message):
    with pytest.raises(gr.Error, match=message) as info:
        call(inside)
    assert "/work" not in str(info.value) and "Traceback" not in str(info.value)


def test_page_without_an_image_says_so(inside):
    out = inside.page_maps("C2", "shared", S0)
    assert out[0] == NO_IMAGE and len(out) == 9
    assert inside.page_occlusion("predicted", 8, 4, S0) == (None, None, None, NO_IMAGE)
    assert inside.page_explain_all("C4", S0) == (None, NO_IMAGE)


def test_page_clicks(inside):
    note, tiles, shown, channel, input_pic, channel_pic, field_pic, erf_pic, words = \
        inside.page_maps("C2", "channel", WITH_CAT)
    order = shown["order"]
    assert "64 channels of 16x16" in note and len(tiles) == 64 and channel == order[0]
    assert input_pic.shape == (256, 256, 3) and channel_pic.shape == (256, 256, 3)
    assert f"Channel **#{order[0]}**" in words and "row 8, column 8" in words   # the centre unit
    picked = inside.pick_channel("C2", "channel", shown, WITH_CAT, SimpleNamespace(index=5))
    assert picked[0] == order[5] and f"Channel **#{order[5]}**" in picked[4]
    # a click at (x 40, y 200) on the 256-pixel picture of a 16x16 map: unit (12, 2)
    unit = inside.pick_unit("C2", "channel", order[5], WITH_CAT, SimpleNamespace(index=[40, 200]))
    assert "row 12, column 2" in unit[3]
    assert unit[0].shape == (256, 256, 3) and tuple(unit[0][12 * 16, 2 * 16]) == (255, 48, 48)  # outlined
    for bad in (64, -1, "3", [1, 2], None, True, 1.0):
        with pytest.raises(gr.Error, match="select one of the channels"):
            inside.pick_channel("C2", "channel", shown, WITH_CAT, SimpleNamespace(index=bad))
    for hostile in (order, None, {"seen": shown["seen"], "order": "abc"}):
        with pytest.raises(gr.Error, match="select one of the channels"):
            inside.pick_channel("C2", "channel", hostile, WITH_CAT, SimpleNamespace(index=0))
    # tiles shown for another layer or image (or model: the same stamp): refused, not mixed
    for layer, session in (("C3", WITH_CAT), ("C2", Session().with_image("assets/examples/ship.jpg"))):
        with pytest.raises(gr.Error, match="shown again"):
            inside.pick_channel(layer, "channel", shown, session, SimpleNamespace(index=5))
    for bad in ([256, 0], [0, -3], "12,40", None, [1], [float("nan"), 3], {"x": 1}):
        with pytest.raises(gr.Error, match="click"):
            inside.pick_unit("C2", "channel", order[5], WITH_CAT, SimpleNamespace(index=bad))
    with pytest.raises(gr.Error, match="channel"):
        inside.pick_unit("C2", "channel", 64, WITH_CAT, SimpleNamespace(index=[0, 0]))


def test_page_views_on_the_current_image(inside):
    *pictures, summary = inside.page_occlusion("predicted", 8, 4, WITH_CAT)
    assert len(pictures) == 3 and all(p.shape == (256, 256, 3) for p in pictures) and "Spearman" in summary
    grid, note = inside.page_explain_all("C4", WITH_CAT)
    assert grid.shape[1] == 5 * 128 + 4 * 6 and "The network says" in note


def test_handlers_never_change_the_session(inside):
    before = Session().with_image(CAT)
    inside.page_maps("C1", "shared", before)
    inside.feature_maps(None, "C1", "shared", before)
    assert before == Session().with_image(CAT)


def test_only_the_open_view_recomputes_and_a_refresh_is_quiet():
    from cifar_s9.ui.inside import _if_shown

    calls = []

    def view(x):
        calls.append(x)
        if x == "bad":
            raise gr.Error("no")
        return x, x

    assert _if_shown("why", view, 2)("why", 1) == (1, 1) and calls == [1]
    skipped = _if_shown("why", view, 2)("maps", 2)
    assert len(skipped) == 2 and calls == [1]                # another sub-tab is open: not computed
    with pytest.raises(gr.Error):
        _if_shown("why", view, 2)("why", "bad")
    assert len(_if_shown("why", view, 2, quiet=True)("why", "bad")) == 2


@pytest.mark.parametrize("patch, stride, expected", [
    (2, 4, {"minimum": 1, "maximum": 2, "value": 2, "interactive": False}),  # one stride only, shown fixed
    (8, 4, {"minimum": 2, "maximum": 8, "value": 4, "interactive": True}),
    (4, 9, {"minimum": 2, "maximum": 4, "value": 4, "interactive": True}),
    (16, 1, {"minimum": 1, "maximum": 16, "value": 1, "interactive": True}),
])
def test_the_stride_slider_follows_the_patch(patch, stride, expected):
    from cifar_s9.ui.inside import link_stride
    update = link_stride(patch, stride)
    assert {k: update[k] for k in expected} == expected
    assert update["minimum"] < update["maximum"]  # Gradio refuses a slider without a range


def test_the_stride_slider_ignores_a_patch_that_is_not_one():
    from cifar_s9.ui.inside import link_stride
    assert link_stride("nine", 4) == gr.skip() and link_stride(99, 4) == gr.skip()


# ---------------------------------------------------------------- which map to trust?

def test_faithfulness_endpoint_ranks_the_maps_and_adds_the_shipped_sample(inside, tmp_path):
    from cifar_s9.ui.inside import InsideHandlers
    key = inside.ctx.model(S0).digest
    path = tmp_path / "faithfulness.json"
    path.write_text(json.dumps({"models": {key: {"weights": "tiny.safetensors", "data": "3 images", "n": 3,
                                                 "ranking": [{"map": "occlusion", "mean": 0.2, "std": 0.1,
                                                              "ci95": [0.1, 0.3], "mean_rank": 1.0}]}}}))
    h = InsideHandlers(inside.ctx, ranking_file=path)
    words, data = h.faithfulness(CAT, "GradCAM", "C4", S0)
    assert [r["map"] for r in data["ranking"]] and len(data["ranking"]) == 4
    assert data["sample"]["ranking"][0]["map"] == "occlusion" and data["removed_percent"] == [20, 40, 60, 80]
    assert "Higher = removing the pixels" in words
    assert inside.faithfulness(CAT, "GradCAM", "C4", S0)[1]["sample"] is None  # none for this network


def test_the_trust_view_scores_on_a_click_and_clears_a_stale_table(inside):
    from cifar_s9.ui.inside import TRUST_PROMPT
    table, words, seen = inside.page_trust(["HiResCAM"], ["C3"], WITH_CAT)
    assert list(table["map"]).count("HiResCAM at C3") == 1 and len(table) == 4 and "ROAD passes" in words
    assert list(table["#"]) == [1, 2, 3, 4]
    kept = inside.page_trust_open(seen, WITH_CAT)
    assert kept[0] == gr.skip() and kept[1] == gr.skip() and "no ranking is shipped" in kept[3]
    other = Session().with_image("assets/examples/ship.jpg")
    cleared = inside.page_trust_open(seen, other)
    assert len(cleared[0]) == 0 and cleared[1] == TRUST_PROMPT
    assert inside.page_trust_open(None, S0)[1] == NO_IMAGE
    assert inside.page_trust(["GradCAM"], ["C4"], S0)[1] == NO_IMAGE
    with pytest.raises(gr.Error, match="at least one method"):
        inside.page_trust(None, ["C4"], WITH_CAT)   # every box unticked


@pytest.mark.parametrize("methods, layers, message", [
    ("GradCAM", "C1,C2,C3,C4,C1.conv1,C1.conv2,C1.conv3,C2.conv1,C2.conv2,C2.conv3,C3.conv1,C3.conv2,"
     "C3.conv3,C4.conv1,C4.conv2,C4.conv3,C1,C2,C3,C4", None),
    ("all", "C1,C2,C3,C4,C1.conv1,C2.conv1", f"{len(METHODS) * 6 + 3} maps; at most {MAX_MAPS}"),
    ("ScoreCAM", "C4", "unknown method 'ScoreCAM'"),
    ("GradCAM", ["C4", 3], "layers must be names"),
    (["GradCAM"] * 100, "C4", "methods must be names"),
])
def test_the_trust_views_cost_is_bounded_before_it_runs(inside, monkeypatch, methods, layers, message):
    from cifar_s9.analysis import faithfulness
    from cifar_s9.errors import UserError

    def work(*args, **kwargs):
        raise UserError("reached the work")
    monkeypatch.setattr(faithfulness, "rank_maps", work)
    # 16 layers of one method (repeats count once) + 3 = 19 maps: allowed, so it reaches the work
    with pytest.raises(gr.Error, match=message or "reached the work"):
        inside.faithfulness(CAT, methods, layers, S0)


def test_a_third_trust_request_at_once_is_refused_in_words(inside):
    from cifar_s9.ui.inside import TRUST_AT_ONCE
    seats = inside.trust_seats
    with seats.taken(), seats.taken():
        assert TRUST_AT_ONCE == 2
        with pytest.raises(gr.Error, match="being scored right now"):
            inside.faithfulness(CAT, "GradCAM", "C4", S0)
    assert inside.faithfulness(CAT, "GradCAM", "C4", S0)[1]["ranking"]  # the seats are free again
