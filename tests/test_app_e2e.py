"""Launch the app on a free port and drive its named endpoints with gradio_client."""
import pytest

pytestmark = pytest.mark.slow

CAT = "assets/examples/cat.jpg"


@pytest.fixture(scope="module")
def client(app_client):
    return app_client


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
    assert Image.open(path).size[1] == 256  # the overlay, and its colour bar at the right
    path = client.predict(handle_file(CAT), "EigenCAM", "C2.conv3", "dog", 0.8, api_name="/explain")
    assert Image.open(path).size[1] == 256


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
