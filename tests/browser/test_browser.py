"""A real browser (Debian's chromium through Playwright) clicks through every tab.

Screenshots go to test-artifacts/ (git-ignored) and, for the README, assets/screenshots/<tab>.png.
Skips cleanly when Playwright or chromium is missing.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from synthetic import free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
README_SHOTS = ROOT / "assets" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def server(weights_path, tmp_path_factory):
    import app
    from cifar_s9.cli import DEFAULT_WEIGHTS
    from cifar_s9.service import load_training_data

    weights = DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.exists() else weights_path  # real model if shipped
    app.configure(weights=weights, runs_dir=tmp_path_factory.mktemp("runs"))
    app.STATE.jobs.load_data = lambda: load_training_data(None, allow_download=False)
    app.demo.queue(default_concurrency_limit=4).launch(
        prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
        css=app.CSS)
    yield app.demo.local_url
    app.demo.close()


@pytest.fixture(scope="module")
def page(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is missing: apt-get install -y chromium")
    with sync_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as exc:  # a broken chromium install should not fail the suite
            pytest.skip(f"chromium does not start: {exc}")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(server)
        page.get_by_text("cifar_s9 lab").first.wait_for()
        yield page
        browser.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    README_SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)  # let plots finish their transitions
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    shutil.copyfile(ARTIFACTS / f"{name}.png", README_SHOTS / f"{name}.png")


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def gallery_sources(page, elem_id: str) -> list[str]:
    return page.eval_on_selector_all(f"#{elem_id} img", "els => els.map(e => e.src)")


def test_classify_tab(page):
    open_tab(page, "Classify")
    upload = page.locator("input[type=file]").first
    upload.set_input_files(str(ROOT / "assets" / "examples" / "ship.jpg"))  # what a drop does
    page.get_by_text("What the network sees").first.wait_for()
    page.locator(".output-class").first.wait_for()
    page.locator("img[alt='cat']").first.click() if page.locator("img[alt='cat']").count() else \
        page.locator(".gallery-item, button.gallery").nth(3).click()  # the "cat" example
    page.wait_for_function("document.querySelectorAll('img').length >= 3")
    page.get_by_text("Evidence for", exact=False).first.wait_for()
    shot(page, "classify")


def test_augmentation_lab_updates_live(page):
    open_tab(page, "Augmentation lab")
    page.wait_for_function("document.querySelectorAll('#aug_grid img').length >= 12")
    before = gallery_sources(page, "aug_grid")
    page.locator("#dropout_p input[type=range]").fill("1")
    holes = page.get_by_label("holes_max", exact=True)
    if holes.count():
        holes.first.fill("4")
    page.wait_for_function(
        "prev => { const now = [...document.querySelectorAll('#aug_grid img')].map(e => e.src);"
        " return now.length >= 12 && now.join() !== prev.join(); }", arg=before)
    assert gallery_sources(page, "aug_grid") != before
    page.get_by_text("Settings valid").first.wait_for()
    shot(page, "augmentation")


def test_train_tab_runs_and_plots(page):
    open_tab(page, "Train")
    page.get_by_role("button", name="Start").click()
    page.get_by_text("finished 2 epochs", exact=False).first.wait_for(timeout=180_000)
    page.locator(".js-plotly-plot:visible").first.wait_for()
    shot(page, "train")


def test_mistakes_tab(page):
    open_tab(page, "Mistakes")
    page.locator("#mistakes_note").get_by_text("Accuracy", exact=False).wait_for()
    page.locator("#confusion .js-plotly-plot").wait_for()
    thumbs = page.locator("#mistake_gallery button.thumbnail-item")
    if thumbs.count():
        thumbs.first.click()
        page.get_by_text("Test image #", exact=False).first.wait_for()
    shot(page, "mistakes")


def test_model_tab(page):
    open_tab(page, "Model")
    page.get_by_text("C4.conv3").first.wait_for()
    page.get_by_text("receptive field per layer", exact=False).first.wait_for()
    shot(page, "model")
