"""The Inside endpoints over the wire: gradio_client by name (the feature maps it returns equal
the tensors a forward hook records), and raw HTTP (`POST /gradio_api/queue/join` with the
`fn_index` read from `/config`) with hostile values: each is one clear error, no server path,
and the app keeps serving."""
from __future__ import annotations

import uuid

import httpx
import numpy as np
import pytest
import torch
from rawhttp import join_and_wait
from waiting import HANG_S, SLOW_TEST_S

from cifar_s9.data.transforms import normalize_uint8
from cifar_s9.records.checkpoint import load_weights
from cifar_s9.analysis.gradcam import target_layer
from cifar_s9.data.images import load_rgb32

pytestmark = [pytest.mark.slow, pytest.mark.timeout(SLOW_TEST_S)]  # waits are for the answer (issue 23)
CAT = "assets/examples/cat.jpg"
ENDPOINTS = ("feature_maps", "receptive_field", "occlusion", "explain_all", "faithfulness")


def test_feature_maps_through_the_client_equal_a_forward_hook(app_client, weights_path):
    from gradio_client import handle_file
    _, data = app_client.predict(handle_file(CAT), "C2.conv1", "channel", api_name="/feature_maps")
    model = load_weights(weights_path)[0].eval()
    seen = []
    handle = target_layer(model, "C2.conv1").register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    with torch.no_grad():
        model(torch.from_numpy(normalize_uint8(load_rgb32(CAT)[None])))
    handle.remove()
    np.testing.assert_array_equal(np.asarray(data["activations"], np.float32), seen[0][0].numpy())
    assert data["shape"] == [64, 16, 16]


def test_the_other_endpoints_through_the_client(app_client):
    from gradio_client import handle_file
    _, _, words, data = app_client.predict(handle_file(CAT), "C4", 0, 0, None, api_name="/receptive_field")
    assert data["box"] == [-40, -40, 40, 40] and "81x81" in words
    pictures, summary, data = app_client.predict(handle_file(CAT), "cat", 8, 4, api_name="/occlusion")
    assert len(pictures) == 3 and data["target"] == "cat"
    grid, probs = app_client.predict(handle_file(CAT), "C4", api_name="/explain_all")
    assert len(grid) == 10 and len(probs) == 10
    words, data = app_client.predict(handle_file(CAT), "HiResCAM,GradCAM", "C4", api_name="/faithfulness")
    assert "Higher = removing" in words and len(data["ranking"]) == 5
    assert [r["score"] for r in data["ranking"]] == sorted((r["score"] for r in data["ranking"]), reverse=True)


# ---------------------------------------------------------------- raw HTTP

class Raw:
    """One visitor speaking Gradio's queue protocol by hand."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=HANG_S)
        config = self.http.get("/config").json()
        self.fn_index = {d.get("api_name"): d["id"] for d in config["dependencies"] if d.get("api_name")}
        upload = self.http.post("/gradio_api/upload", files={"files": ("cat.jpg", open(CAT, "rb"), "image/jpeg")})
        self.image = {"path": upload.json()[0], "orig_name": "cat.jpg", "meta": {"_type": "gradio.FileData"}}

    def call(self, endpoint: str, data: list) -> dict:
        return join_and_wait(self.http, self.fn_index[endpoint], [*data, None], uuid.uuid4().hex[:12])


@pytest.fixture(scope="module")
def raw(app_client):
    return Raw(app_client.src)


# (endpoint, the values after the image, words the error must contain)
HOSTILE = [
    ("feature_maps", ["C99", "shared"], "unknown layer"),
    ("feature_maps", ["C1", {"$gt": ""}], "scale"),
    ("feature_maps", [["C1"] * 1000, "shared"], "unknown layer"),
    ("receptive_field", ["C4", 1e308, 0, None], "row"),
    ("receptive_field", ["C4", 0, "NaN", None], "column"),
    ("receptive_field", ["C4", 0, 0, -1], "channel"),
    ("receptive_field", ["C1.conv1", [1, 2], 0, None], "row"),
    ("occlusion", ["cat", 0, 4], "patch size"),
    ("occlusion", ["cat", 8, 2.5], "stride"),
    ("occlusion", ["cat", 2, 1], "at most 400"),
    ("occlusion", ["../../etc/passwd", 8, 4], "unknown class"),
    ("explain_all", ["C4.conv3.0"], "unknown layer"),
    ("faithfulness", ["all", "C1,C2,C3,C4,C1.conv1,C2.conv1"], "at most 40"),
    ("faithfulness", ["9" * 5000, "C4"], "at most 64"),
    ("faithfulness", [{"$gt": ""}, "C4"], "unknown method"),  # the text box made it text
    ("faithfulness", ["GradCAM", [["C4"]]], "unknown layer"),
    ("faithfulness", ["ScoreCAM", "C4"], "unknown method"),
    ("faithfulness", ["GradCAM", "../../etc/passwd"], "unknown layer"),
    ("faithfulness", [" , ", "C4"], "at least one method"),
]


@pytest.mark.parametrize("endpoint, values, words", HOSTILE, ids=[f"{e}-{i}" for i, (e, *_ ) in enumerate(HOSTILE)])
def test_hostile_values_get_one_clear_error_and_the_app_keeps_serving(raw, endpoint, values, words):
    assert set(ENDPOINTS) <= set(raw.fn_index)
    msg = raw.call(endpoint, [raw.image, *values])
    assert msg.get("success") is False, msg
    error = (msg.get("output") or {}).get("error") or msg.get("message") or ""
    assert words.lower() in error.lower(), error
    assert "/tmp" not in error and "/work" not in error and "Traceback" not in error
    ok = raw.call("explain_all", [raw.image, "C4"])
    assert ok.get("success") is True, ok


def test_a_missing_image_is_a_clear_error(raw):
    msg = raw.call("explain_all", [None, "C4"])
    assert msg.get("success") is False and "No image" in msg["output"]["error"]
