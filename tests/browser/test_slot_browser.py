"""A real browser and the one training slot (issue 26.3): a run outlives a reload and the page
re-attaches to it; a second visitor's slot line follows the slot live, without switching tabs,
and their Busy message says what they can do. Screenshots of the Train tab at 1400 and 390 px
go to test-artifacts/ (git-ignored)."""
from __future__ import annotations

import re
import threading

import pytest
from browsing import count_answers, drawn, launched_app, shot
from waiting import HANG_MS, HANG_S, SLOW_TEST_S

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(SLOW_TEST_S)]


@pytest.fixture(scope="module")
def server(weights_path, tmp_path_factory):
    with launched_app(weights_path, tmp_path_factory.mktemp("runs"), sample_training=True) as (url, ctx):
        gate = threading.Event()  # holds a run in "loading data" until the test opens it (a signal)
        gate.set()
        load_sample = ctx.jobs.load_data
        ctx.jobs.load_data = lambda: (gate.wait(HANG_S), load_sample())[1]
        try:
            yield url, ctx, gate
        finally:
            gate.set()
            if ctx.jobs.current is not None and ctx.jobs.current.thread is not None:
                ctx.jobs.current.thread.join(HANG_S)  # a training thread alive at exit aborts the process


def open_page(browser, url: str, width: int = 1400, height: int = 1000):
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(HANG_MS)
    count_answers(page)
    page.goto(url)
    page.locator("#banner").get_by_text("Active model").wait_for()
    return page


def train_tab(page):
    page.get_by_role("tab", name="Train").click()
    page.locator("#train_slot").get_by_text("Training slot").wait_for()


def test_a_reload_reattaches_the_page_to_its_run(server, browser):
    url, ctx, gate = server
    page = open_page(browser, url)
    gate.clear()
    try:
        train_tab(page)
        page.get_by_role("button", name="Start").click()
        page.locator("#train_progress").get_by_text("loading data").wait_for()
        page.wait_for_function("() => localStorage.getItem('cifar_s9_run') !== null")  # the token, kept
        page.reload()
        page.locator("#banner").get_by_text("Active model").wait_for()
        train_tab(page)
        # the new page follows the same run: its progress, "your" run, its Stop button
        page.locator("#train_progress").get_by_text("loading data").wait_for()
        page.locator("#train_slot").get_by_text("your", exact=False).wait_for()
        shot(page, "train-reattached-1400")
        change_the_lab_while_it_trains(page)
    finally:
        gate.set()
    page.locator("#train_progress").get_by_text("finished 2 epochs").wait_for()
    page.get_by_role("button", name="Use this model in my session").click()
    page.locator("#banner").get_by_text("your model").wait_for()  # the reloaded session owns it
    # the stream (an update a second) used to send back the session it started with, undoing a
    # lab setting changed during the run: the Train tab showed, and a next run used, the old one
    page.get_by_role("tab", name="Augmentation lab").click()
    page.locator("#aug_status").get_by_text("Settings valid").wait_for()
    train_tab(page)  # opening the tab shows the settings the session holds now
    page.get_by_text("augmentation settings (from the lab)").click()
    page.locator("#train_aug").get_by_text("hole_width_max", exact=False).wait_for()
    drawn(page)
    shown = " ".join(page.locator("#train_aug").inner_text().split())
    assert re.search(r"hole_width_max\W*5\b", shown), shown
    page.context.close()


def change_the_lab_while_it_trains(page) -> None:
    page.get_by_role("tab", name="Augmentation lab").click()
    page.locator("#aug_status").get_by_text("Settings valid").wait_for()
    box = page.locator("#hole_width_max input[type=number]")
    box.fill("5")
    box.press("Enter")
    page.wait_for_function("document.querySelector('#hole_width_max input[type=number]').value === '5'")
    drawn(page)  # the lab's answer, which puts the setting in the session, is in
    train_tab(page)


def test_a_second_visitors_slot_line_follows_the_slot_live(server, browser):
    url, ctx, gate = server
    a, b = open_page(browser, url), open_page(browser, url)
    train_tab(b)
    b.locator("#train_slot").get_by_text("slot free").wait_for()
    gate.clear()
    try:
        train_tab(a)
        a.get_by_role("button", name="Start").click()
        a.locator("#train_progress").get_by_text("loading data").wait_for()
        # B switches nothing: its slot line changes by itself (the page's ticker)
        b.locator("#train_slot").get_by_text("another visitor", exact=False).wait_for()
        b.get_by_role("button", name="Start").click()
        busy = b.locator("#train_progress").get_by_text("Wait for it", exact=False)
        busy.wait_for()
        text = b.locator("#train_progress").inner_text()
        assert "at most" in text and "Train tab" not in text, text
        shot(b, "train-busy-1400")
        b.set_viewport_size({"width": 390, "height": 844})
        shot(b, "train-busy-390")
    finally:
        gate.set()
    a.locator("#train_progress").get_by_text("finished 2 epochs").wait_for()
    b.locator("#train_slot").get_by_text("slot free").wait_for()  # and back, still without a click
    shot(a, "train-finished-1400")
    a.set_viewport_size({"width": 390, "height": 844})
    shot(a, "train-finished-390")
    a.context.close()
    b.context.close()
