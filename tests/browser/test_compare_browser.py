"""Classify's "Compare with the reference design" in a real browser (issue 27.4), on the shipped
weights: off when the page opens; ticked, the example the visitor classified is shown through
both designs, each column with its name, accuracy, top classes and Grad-CAM; a new example and a
new Grad-CAM setting follow; a session on the reference design is compared with the shipped
model. At 1400 and 390 px; screenshots in test-artifacts/compare-*.png (git-ignored).
"""
from __future__ import annotations

import pytest
from synthetic import free_port
from browsing import answered_since, open_page, pending_events, shot
from test_browser import classify_example
from waiting import SLOW_TEST_S, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(SLOW_TEST_S)]


@pytest.fixture(scope="module")
def server(weights_path, tmp_path_factory):
    import app
    from cifar_s9.paths import DEFAULT_WEIGHTS

    weights = DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.exists() else weights_path
    ctx = app.configure(weights=weights, runs_dir=tmp_path_factory.mktemp("runs"))
    if ctx.reference is None:
        pytest.skip("weights/seed.safetensors is not in this checkout")
    options = {**app.launch_options(), "server_name": "127.0.0.1", "server_port": free_port(),
               "prevent_thread_lock": True, "quiet": True}
    app.demo.queue(**app.QUEUE).launch(**options)
    yield app.demo.local_url
    app.demo.close()


def columns(page) -> dict[str, dict]:
    """What each column of the comparison shows: its title, top class and Grad-CAM's address."""
    return page.evaluate("""() => Object.fromEntries(['yours', 'other'].map(side => {
        const col = document.querySelector('#compare_' + side);
        const top = col.querySelector('.output-class'), cam = col.querySelector('.compare-cam img');
        return [side, {title: col.querySelector('.compare-title').innerText,
                       top: top ? top.innerText.trim() : null, cam: cam ? cam.src : null,
                       rows: col.querySelectorAll('.compare-top .confidence-set').length}];
    }))""")


def settle(page, before: set[str], what: str) -> None:
    wait_until(answered_since(before), f"{what}: its events were never all answered")


def tick_compare(page) -> dict[str, dict]:
    before = pending_events()
    page.get_by_label("Compare with the reference design").check()
    page.locator("#compare_other .compare-cam img").wait_for()
    settle(page, before, "ticking the comparison")
    return columns(page)


@pytest.mark.parametrize("width", [1400, 390])
def test_the_classified_example_through_both_designs(server, browser, width):
    page = open_page(browser, server, width=width, height=1000 if width > 400 else 844)
    shown = classify_example(page, "cat")
    assert not page.locator("#compare").is_visible()  # off: nothing computed, nothing shown
    seen = tick_compare(page)
    assert seen["yours"]["top"] == shown  # the Classify answer, in the left column
    assert seen["yours"]["title"].startswith("Your model: default.safetensors")
    assert seen["other"]["title"].startswith("Reference design: reference design (seed.safetensors)")
    for side in ("yours", "other"):
        assert seen[side]["top"] and seen[side]["rows"] == 3 and seen[side]["cam"], (side, seen)
        assert "%" in seen[side]["title"]  # each title names its test accuracy
    box = page.locator("#compare").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1  # inside the screen
    page.locator("#compare").scroll_into_view_if_needed()
    shot(page, f"compare-{width}")

    # a new example and a new target layer: the comparison follows both
    before = pending_events()
    dog = classify_example(page, "dog")
    settle(page, before, "the dog example")
    wait_until(lambda: columns(page)["yours"]["top"] == dog, "the comparison never showed the dog")
    old = columns(page)
    before = pending_events()
    page.get_by_label("target layer").click()
    page.get_by_role("option", name="C3", exact=True).click()
    settle(page, before, "the new layer")
    page.locator("#compare_note").get_by_text("GradCAM at C3", exact=False).wait_for()
    new = columns(page)
    assert new["yours"]["cam"] != old["yours"]["cam"] and new["other"]["cam"] != old["other"]["cam"]

    before = pending_events()
    page.get_by_label("Compare with the reference design").uncheck()
    page.locator("#compare").wait_for(state="hidden")
    settle(page, before, "unticking")
    page.context.close()


def test_a_session_on_the_reference_design_is_compared_with_the_shipped_model(server, browser):
    page = open_page(browser, server)
    classify_example(page, "ship")
    before = pending_events()
    page.get_by_role("button", name="Use the reference design").click()
    page.locator("#banner").get_by_text("reference design").wait_for()
    settle(page, before, "the reference design")
    seen = tick_compare(page)
    assert seen["yours"]["title"].startswith("Your model: reference design (seed.safetensors)")
    assert seen["other"]["title"].startswith("Shipped model: default.safetensors")
    page.locator("#compare_note").get_by_text("already uses the reference design", exact=False).wait_for()
    assert seen["yours"]["top"] == page.locator("#prediction .output-class").inner_text().strip()
    page.locator("#compare").scroll_into_view_if_needed()
    shot(page, "compare-reference-session-1400")
    page.context.close()
