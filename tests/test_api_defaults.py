"""Every named endpoint works with only its required inputs, and the API page shows the
defaults of the others (issue 26.8): through gradio_client (which fills a left-out parameter with
the default the API page shows) and over raw HTTP with None for every optional value (which the
handlers read as the default, server-side)."""
from __future__ import annotations

import uuid

import httpx
import pytest
from rawhttp import join_and_wait
from waiting import HANG_S, SLOW_TEST_S

pytestmark = [pytest.mark.slow, pytest.mark.timeout(SLOW_TEST_S)]  # waits are for the answer (issue 23)
CAT = "assets/examples/cat.jpg"
# what the API page must show for the parameters a client may leave out
DEFAULTS = {
    "/classify": {"k": 3},
    "/explain": {"method": "GradCAM", "layer": "C4", "target": "predicted", "opacity": 0.5},
    "/compare": {"k": 3, "method": "GradCAM", "layer": "C4", "target": "predicted", "opacity": 0.5},
    "/feature_maps": {"layer": "C2", "scale": "shared"},
    "/receptive_field": {"layer": "C4", "row": 0, "column": 0, "channel": None},
    "/occlusion": {"target": "predicted", "patch": 8, "stride": 4},
    "/explain_all": {"layer": "C4"},
    "/faithfulness": {"methods": "all", "layers": "C1,C2,C3,C4"},
    "/experiment_start": {"budget": 3, "seed": 0},
}
# inputs no endpoint can have a default for: the picture, and the two runs an overlay compares
REQUIRED = {"image", "name_a", "name_b"}
NOT_CALLED = {"/experiment_start": "would hold the training slot for minutes",
              "/runs_overlay": "its two required inputs name runs a fresh app does not have"}


@pytest.fixture(scope="module")
def api(app_client):
    return app_client.view_api(return_format="dict", print_info=False)["named_endpoints"]


def test_the_api_page_shows_every_optional_default(api):
    assert set(DEFAULTS) <= set(api)
    for name, endpoint in api.items():
        params = {p["parameter_name"]: p for p in endpoint["parameters"]}
        required = {n for n, p in params.items() if not p["parameter_has_default"]}
        assert required <= REQUIRED, (name, required)
        for param, value in DEFAULTS.get(name, {}).items():
            assert params[param]["parameter_has_default"], (name, param)
            assert params[param]["parameter_default"] == value, (name, param)


def test_every_named_endpoint_answers_with_its_required_inputs_alone(app_client, api):
    from gradio_client import handle_file
    for name, endpoint in api.items():
        if name in NOT_CALLED:
            continue
        needs_image = any(p["parameter_name"] == "image" and not p["parameter_has_default"]
                          for p in endpoint["parameters"])
        args = {"image": handle_file(CAT)} if needs_image else {}
        result = app_client.predict(**args, api_name=name)  # raises on an error
        assert result is not None or name == "/experiment_stop", name


def _raw_call(http: httpx.Client, fn_index: int, data: list) -> dict:
    return join_and_wait(http, fn_index, data, uuid.uuid4().hex[:12])


def test_none_for_every_optional_input_means_its_default_over_raw_http(app_client, api):
    http = httpx.Client(base_url=app_client.src, timeout=HANG_S)
    config = http.get("/config").json()
    deps = {"/" + d["api_name"]: d for d in config["dependencies"] if d.get("api_name")}
    with open(CAT, "rb") as f:
        upload = http.post("/gradio_api/upload", files={"files": ("cat.jpg", f, "image/jpeg")})
    image = {"path": upload.json()[0], "orig_name": "cat.jpg", "meta": {"_type": "gradio.FileData"}}
    for name, endpoint in api.items():
        if name in NOT_CALLED:
            continue
        dep = deps[name]
        takes_image = bool(endpoint["parameters"]) and endpoint["parameters"][0]["parameter_name"] == "image"
        data = [image if takes_image and i == 0 else None for i in range(len(dep["inputs"]))]
        msg = _raw_call(http, dep["id"], data)
        assert msg.get("success"), (name, msg.get("output"))
