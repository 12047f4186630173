"""Launch the app on a free port and drive its named endpoints with gradio_client."""
import socket

import pytest

pytestmark = pytest.mark.slow

CAT = "assets/examples/cat.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(weights_path, tmp_path_factory):
    from gradio_client import Client
    import app

    app.configure(weights=weights_path, runs_dir=tmp_path_factory.mktemp("runs"))
    app.demo.queue(default_concurrency_limit=4).launch(
        prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    try:
        yield Client(app.demo.local_url, verbose=False)
    finally:
        app.demo.close()


def test_endpoints_are_listed(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/classify", "/explain", "/augment_preview"} <= names
    assert "/start_training" not in names


def test_classify(client):
    from gradio_client import handle_file
    result = client.predict(handle_file(CAT), api_name="/classify")
    assert result["label"] in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                               "horse", "ship", "truck")
    assert len(result["confidences"]) == 3


def test_explain(client):
    from PIL import Image
    from gradio_client import handle_file
    path = client.predict(handle_file(CAT), api_name="/explain")
    assert Image.open(path).size == (256, 256)
    path = client.predict(handle_file(CAT), "EigenCAM", "C2.conv3", "dog", 0.8, api_name="/explain")
    assert Image.open(path).size == (256, 256)


def test_augment_preview(client):
    from gradio_client import handle_file
    grid = client.predict(image=handle_file(CAT), api_name="/augment_preview")
    assert len(grid) == 12  # original + 11 (the default count)
    assert grid[0]["caption"] == "original"


def test_errors_are_readable(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file("assets/test_sample.npz"), api_name="/classify")
    with pytest.raises(AppError, match="holes_min"):
        client.predict(image=handle_file(CAT), holes_min=9, api_name="/augment_preview")
    assert client.predict(handle_file(CAT), api_name="/classify")  # still serving
