"""A real browser runs a short A/B in the Experiments tab on the bundled sample and screenshots
the overlaid curves and the result table at 1400 and 390 px (into test-artifacts/)."""
from __future__ import annotations


import pytest
from browsing import launched_app, shot
from waiting import HANG_MS, SLOW_TEST_S

# every check waits on the page's state, never a count taken once (issue 23: the plot had not
# drawn its traces yet on a busy machine)
pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(SLOW_TEST_S)]


@pytest.fixture(scope="module")
def server(weights_path, tmp_path_factory):
    import os

    os.environ.pop("CIFAR_S9_DATA_DIR", None)  # experiments run on the bundled sample
    with launched_app(weights_path, tmp_path_factory.mktemp("runs")) as (url, ctx):
        yield url, ctx


def test_the_measured_grid_shows_as_a_heatmap_and_in_words_or_says_it_is_not_measured(server, browser, tmp_path,
                                                                                      monkeypatch):
    """Issue 28.4: the shipped grid summary (here a synthetic one) beside the visitor's runs."""
    import json

    import numpy as np

    from cifar_s9.experiments import grid as g

    url, ctx = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(HANG_MS)
    monkeypatch.setattr(ctx, "cutout_grid", tmp_path / "missing.json")
    page.goto(url)
    page.get_by_role("tab", name="Experiments").click()
    page.locator("#grid_words").get_by_text("not measured yet").wait_for()
    assert page.locator("#grid_plot").count() == 0 or not page.locator("#grid_plot").is_visible()

    def cell(name, holes, size, right):
        correct = np.array([1] * right + [0] * (100 - right), bool)
        return {"cell": name, "holes": holes, "size": size, "epochs": 40, "train_images": 43_000,
                "eval_images": 100, "accuracy": float(correct.mean()), "ci": [0.0, 1.0],
                "correct_packbits_hex": np.packbits(correct).tobytes().hex()}

    cells = [cell("off", 0, 0, 60), cell("1x8px", 1, 8, 70), cell("1x16px", 1, 16, 62),
             cell("2x8px", 2, 8, 55), cell("2x16px", 2, 16, 60)]
    (tmp_path / "grid.json").write_text(json.dumps(g.summarize(cells)))
    monkeypatch.setattr(ctx, "cutout_grid", tmp_path / "grid.json")
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("tab", name="Experiments").click()  # each visit reads the shipped file again
    page.locator("#grid_words").get_by_text("1 hole of 8 px gave +10.0 points").wait_for()
    page.wait_for_function("() => document.querySelectorAll('#grid_plot .heatmaplayer image, "
                           "#grid_plot .hm image').length >= 1")
    page.wait_for_function("() => (document.querySelector('#grid_plot')?.innerText ?? '').includes('+10.0')")
    shot(page, "experiments_grid_1400", panel="grid_plot")
    page.set_viewport_size({"width": 390, "height": 900})
    page.wait_for_function("() => document.querySelector('#grid_plot').getBoundingClientRect().right <= 390")
    shot(page, "experiments_grid_390", panel="grid_plot")
    page.close()


def test_short_ab_on_the_sample_shows_overlay_and_table(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(HANG_MS)
    page.goto(server[0])
    page.get_by_role("tab", name="Experiments").click()
    page.locator("#exp_current").get_by_text("Coarse Dropout on").wait_for()  # what "current" holds
    page.get_by_label("epochs", exact=True).check()
    budget = page.get_by_label("minutes (or epochs) per arm")
    budget.fill("2")
    budget.press("Tab")
    images = page.get_by_label("training images")  # 2 steps of 64 per epoch: the busy CPU
    images.fill("128")
    images.press("Tab")
    page.locator("#exp_plan").get_by_text("4 epochs in all").wait_for()  # 2 arms x 1 seed x 2 epochs
    page.get_by_role("button", name="Run the A/B").click()
    # the verdict appears when both arms are done; the sample warning with it
    page.get_by_text("mean nothing").first.wait_for()
    page.get_by_text("McNemar").first.wait_for()
    # the overlaid curves: 2 arms x 2 panels, drawn some time after the verdict's text
    page.wait_for_function("n => document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length >= n",
                           arg=4)
    page.get_by_text("✅ done").nth(1).wait_for()  # the queue: both arms done
    for arm in ("no Coarse Dropout", "current settings"):  # queue, result table, legend, verdict
        page.wait_for_function("arm => document.body.innerText.split(arm).length - 1 >= 3", arg=arm)
    assert page.inner_text("body").count("✅ done") == 2  # both arms, once each
    shot(page, "experiments_1400")
    page.set_viewport_size({"width": 390, "height": 900})
    # on a phone the answer is on screen without scrolling the table sideways (26.9): before,
    # accuracy and CI were the 4th and 5th of seven columns, past the right edge
    edges_js = """() => Object.fromEntries([...document.querySelectorAll('#exp_result th')]
        .map(c => [c.innerText.trim(), Math.round(c.getBoundingClientRect().right)]))"""
    try:  # the table re-lays out for the narrow screen: wait for it, however busy the machine
        page.wait_for_function(f"() => {{ const e = ({edges_js})();"
                               " return (e['accuracy'] ?? 1e6) <= 390 && (e['95% CI'] ?? 1e6) <= 390; }",
                               timeout=HANG_MS)
    except Exception:  # playwright's TimeoutError (imported only where playwright is: conftest)
        pass  # the assertion below says where the columns ended
    edges = page.evaluate(edges_js)
    assert edges.get("accuracy", 10**6) <= 390 and edges.get("95% CI", 10**6) <= 390, edges
    shot(page, "experiments_390")
    # the past runs list shows both arms from the tracker; overlay them
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.get_by_text("Past runs (run tracker)").click()
    # the past-runs table lists both arms without a Refresh (26.5), and still after one
    for arm in ("no Coarse Dropout", "current settings"):
        page.wait_for_function("arm => (document.querySelector('#exp_runs')?.innerText ?? '').includes(arm)", arg=arm)
    page.get_by_role("button", name="Refresh").click()
    page.wait_for_function("() => document.body.innerText.split('current settings').length > 5")
    page.get_by_role("button", name="Overlay").click()
    page.get_by_text("two past runs").first.wait_for()
    shot(page, "experiments_past_runs")
    page.close()
