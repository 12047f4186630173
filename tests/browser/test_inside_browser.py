"""The Inside tab in a real browser (Debian's chromium through Playwright), on the shipped
weights, at a desktop (1400 px) and a phone (390 px) width: choose an image in Classify, then
each view; click a channel, click a unit, switch layer. Screenshots of each view go to
test-artifacts/inside-<view>-<width>.png (git-ignored). Skips when Playwright or chromium is missing.
"""
from __future__ import annotations

import re

import pytest
from browsing import ROOT, answered_since, launched_app, pending_events, shipped_or, shot
from waiting import HANG_MS, SLOW_TEST_S, wait_until

# waits are on the page's state, under a deadline only a hang reaches (issue 23)
pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(SLOW_TEST_S)]

CAT = ROOT / "assets" / "examples" / "cat.jpg"


@pytest.fixture(scope="module")
def server(weights_path, tmp_path_factory):
    with launched_app(shipped_or(weights_path), tmp_path_factory.mktemp("runs")) as (url, _):
        yield url


def open_tab(page, name: str) -> None:
    """Click a tab, through Gradio's "..." overflow menu when the bar is too narrow to show it."""
    page.locator("[role=tab]").first.wait_for()  # the tab bar is drawn after the page's first text
    tab = page.get_by_role("tab", name=name, exact=True)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
        return
    for menu in page.locator(".overflow-menu").all():
        if not menu.is_visible():
            continue
        menu.locator("button").first.click()
        items = [b for b in page.locator(".overflow-dropdown button").all()
                 if b.is_visible() and b.inner_text().strip() == name]
        if items:
            items[0].click()
            return
        menu.locator("button").first.click()  # close it again
    raise AssertionError(f"no tab {name!r} to click")


def src(page, selector: str) -> str:
    return page.eval_on_selector(selector, "e => e.src")


def wait_new_src(page, selector: str, old: str) -> None:
    page.wait_for_function("([s, old]) => { const e = document.querySelector(s); return e && e.src !== old; }",
                           arg=[selector, old], timeout=HANG_MS)
    page.wait_for_function("s => document.querySelector(s).complete", arg=selector)


def choose_cat(page) -> None:
    """Upload the cat in Classify and wait until it is classified: it is then the session's
    image, so Inside opens on it (a view drawn for the opening example would refuse a channel
    click as stale: what failed on a busy machine)."""
    open_tab(page, "Classify")
    page.locator("#prediction .output-class").wait_for()  # the page opens on an example, classified
    shown = src(page, "#network_view img")
    before = pending_events()
    page.locator("input[type=file]").first.set_input_files(str(CAT))
    page.wait_for_function("old => (document.querySelector('#network_view img') || {}).src !== old", arg=shown)
    wait_until(answered_since(before), "the cat was never classified")


def words(page) -> str:
    return page.locator("#inside_words").inner_text()


def wait_words(page, pattern: str, old: str | None = None) -> str:
    """Wait until the words match `pattern` (and differ from `old`, the text before a click)."""
    try:
        page.wait_for_function("([p, old]) => { const t = document.querySelector('#inside_words').innerText;"
                               " return t !== old && new RegExp(p).test(t); }", arg=[pattern, old], timeout=HANG_MS)
    except Exception:
        shot(page, "inside-failure")
        raise AssertionError(f"waited for {pattern!r}; the page says {words(page)!r}") from None
    return words(page)


@pytest.mark.parametrize("width, height", [(1400, 1000), (390, 844)])
def test_inside_views(browser, server, width, height):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(HANG_MS)
    page.goto(server)
    page.get_by_text("cifar_s9 lab").first.wait_for()
    # the current image, chosen in Classify
    choose_cat(page)
    open_tab(page, "Inside")

    # feature maps: C2's 64 channels; the top channel's centre unit is described
    page.wait_for_function("document.querySelectorAll('#inside_channels img').length >= 64", timeout=HANG_MS)
    first = wait_words(page, r"Channel #\d+\. This C2 unit at row 8, column 8 sees 21x21 pixels")
    # click the fourth channel: it opens, with its centre unit
    before = src(page, "#inside_channel img")
    page.locator("#inside_channels button.thumbnail-item").nth(3).click()
    fourth = wait_words(page, r"Channel #\d+\. This C2 unit at row 8, column 8", old=first)
    wait_new_src(page, "#inside_channel img", before)  # click the new picture, not the old one
    # click a unit near the top-left of the enlarged channel
    channel = page.locator("#inside_channel img")
    box = channel.bounding_box()
    side = min(box["width"], box["height"])  # the square picture, centred in its box ("contain")
    at = {"x": (box["width"] - side) / 2 + 0.3 * side, "y": (box["height"] - side) / 2 + 0.3 * side}
    before = src(page, "#inside_field img")
    channel.click(position=at)
    clicked = wait_words(page, r"at row 4, column 4 sees 21x21 pixels; 19x19 of them are on the image",
                         old=fourth)
    assert "zero padding" in clicked
    wait_new_src(page, "#inside_field img", before)
    shot(page, f"inside-maps-{width}", "inside_maps_view")

    # a C4 unit sees more than the image
    before = src(page, "#inside_field img")
    page.locator("#inside_layer input").click()
    page.get_by_role("option", name="C4", exact=True).click()
    wait_words(page, r"This C4 unit at row 2, column 2 sees 81x81 pixels, more than the 32x32 image")
    page.wait_for_function("document.querySelectorAll('#inside_channels img').length >= 192", timeout=HANG_MS)
    wait_new_src(page, "#inside_field img", before)
    shot(page, f"inside-field-{width}", "inside_maps_view")

    # occlusion, integrated gradients and Grad-CAM, with their agreement
    open_tab(page, "Occlusion & gradients")
    for key in ("occlusion", "gradients", "gradcam"):
        page.locator(f"#inside_attr_{key} img").wait_for(timeout=HANG_MS)
    page.locator("#inside_agreement").get_by_text("Spearman", exact=False).wait_for()
    assert re.search(r"occlusion vs Grad-CAM: [+-]\d\.\d\d", page.locator("#inside_agreement").inner_text())
    shot(page, f"inside-occlusion-{width}", "inside_occlusion_view")

    # why not this class: ten Grad-CAMs in one 2x5 picture, the predicted class framed
    open_tab(page, "Why not this class?")
    page.locator("#inside_why img").wait_for(timeout=HANG_MS)
    page.locator("#inside_why_note").get_by_text("framed in red", exact=False).wait_for()
    shot(page, f"inside-why-{width}", "inside_why_view")
    page.close()


@pytest.mark.parametrize("width, height", [(1400, 1000), (390, 844)])
def test_which_map_to_trust(browser, server, width, height):
    """An example chosen in Classify, the view opened: the shipped test-sample ranking is there at
    once; "Score the maps" fills the image's ranked table (31 maps at the page's defaults)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(HANG_MS)
    page.goto(server)
    page.get_by_text("cifar_s9 lab").first.wait_for()
    choose_cat(page)
    open_tab(page, "Inside")
    open_tab(page, "Which map to trust?")
    note = page.locator("#inside_trust_note")
    note.get_by_text("Score the maps", exact=False).wait_for()
    sample = page.locator("#inside_trust_sample_note")
    sample.get_by_text("test sample", exact=False).wait_for()
    from cifar_s9 import paths
    if paths.FAITHFULNESS.exists():  # the shipped ranking of the shipped model, with its spread
        sample.get_by_text("95% bootstrap interval", exact=False).wait_for()
        best_overall = re.search(r"Best: (.+?)[;,]", sample.inner_text()).group(1).strip()
        # Gradio draws a table's visible rows as .virtual-row (a hidden <table> only measures them)
        row = page.locator("#inside_trust_sample .virtual-row").first
        row.get_by_text(best_overall, exact=True).wait_for()
        assert "\u00b1" in row.inner_text() and " to " in row.inner_text()
    page.locator("#inside_trust_run").click()
    note.get_by_text("ROAD passes", exact=False).wait_for()
    words = note.inner_text()
    assert "Higher = removing the pixels this map calls important" in words and "31 maps" in words
    assert "The random map scores" in words
    best = re.search(r"Best here: (.+?) \(", words).group(1)
    first = page.locator("#inside_trust_table .virtual-row").first
    first.get_by_text(best, exact=True).wait_for()  # the best map heads the ranked table
    assert first.locator(".body-cell").first.inner_text().strip() == "1"
    shot(page, f"inside-trust-{width}", "inside_trust_view")
    page.close()
