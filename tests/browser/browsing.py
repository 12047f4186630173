"""What the browser tests share: Debian's chromium driven by Playwright (it cannot download a
browser of its own here), its flags, and where screenshots go (git-ignored)."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# screenshots are for the people who review a change (they open them); a test run asserts on the
# page and skips drawing them unless asked: CIFAR_S9_SCREENSHOTS=1 pytest tests/browser
SCREENSHOTS = os.environ.get("CIFAR_S9_SCREENSHOTS", "") not in ("", "0")
# without the background-networking flags chromium keeps dialling out of a closed network
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def shipped_or(weights_path: Path) -> Path:
    """The shipped model when the checkout has it (what visitors see), else the test's tiny one."""
    from cifar_s9.paths import DEFAULT_WEIGHTS

    return Path(DEFAULT_WEIGHTS) if Path(DEFAULT_WEIGHTS).exists() else Path(weights_path)


@contextmanager
def launched_app(weights: Path, runs_dir: Path, sample_training: bool = False):
    """The app as `python app.py` launches it (its CSS, theme and HTTP limits) on a free local
    port; yields (url, context). `sample_training`: training runs use the bundled sample, so no
    dataset is needed."""
    import app
    from cifar_s9.data.app_data import load_training_data
    from synthetic import free_port

    ctx = app.configure(weights=weights, runs_dir=runs_dir)
    if sample_training:
        ctx.jobs.load_data = lambda: load_training_data(None)
    options = {**app.launch_options(), "server_name": "127.0.0.1", "server_port": free_port(),
               "prevent_thread_lock": True, "quiet": True}
    app.demo.queue(**app.QUEUE).launch(**options)
    try:
        yield app.demo.local_url, ctx
    finally:
        app.demo.close()


def record_messages(page) -> None:
    """From now on, keep every message a toast shows (one `toast-text` each: Gradio 6 stacks the
    errors of one kind in one toast, "Error (2)"), even after its toast has closed itself."""
    page.evaluate("""() => {
        window.seenMessages = [];
        const shown = () => document.querySelectorAll('[data-testid=toast-text]');
        shown().forEach(e => { e.dataset.seen = '1'; });  // those on screen already are not new
        if (window.messageObserver) window.messageObserver.disconnect();
        window.messageObserver = new MutationObserver(() => shown().forEach(e => {
            if (!e.dataset.seen) { e.dataset.seen = '1'; window.seenMessages.push(e.innerText); }
        }));
        window.messageObserver.observe(document.body, {childList: true, subtree: true});
    }""")


def recorded_messages(page) -> list[str]:
    return page.evaluate("() => window.seenMessages")


def pending_events() -> set[str]:
    """The events the app has been sent and not yet fully answered, of every session (Gradio's
    queue: an event id leaves `pending_event_ids_session` once its last message went out; those
    of a page closed before its answer stay there for good)."""
    import app
    return {i for ids in list(app.demo._queue.pending_event_ids_session.values()) for i in ids}


def answered_since(before: set[str]):
    """A condition: every event sent since `before` was taken has had its answer sent."""
    return lambda: not (pending_events() - before)


def open_page(browser, url: str, width: int = 1400, height: int = 1000, **context):
    """A page in a fresh browser context (its own session) at this size, once the banner shows;
    `context`: more options of the context (accept_downloads=True, ...)."""
    from waiting import HANG_MS

    page = browser.new_context(viewport={"width": width, "height": height}, **context).new_page()
    page.set_default_timeout(HANG_MS)
    count_answers(page)
    page.goto(url)
    page.locator("#banner").get_by_text("Active model").wait_for()
    return page


# Gradio's client joins an event with a POST to queue/join and reads every answer from one
# streamed GET of queue/data; this page script counts both (a clone of each stream, read beside
# the client's own), so a test can wait until the page itself has every answer it asked for
COUNT_ANSWERS = """(() => {
    const fetchOf = window.fetch.bind(window);
    window.joinedEvents = 0;
    window.answeredEvents = 0;
    window.fetch = async (...args) => {
        const url = String((args[0] && args[0].url) || args[0]);
        const joins = url.includes('/queue/join');
        if (joins) window.joinedEvents++;  // counted as it leaves: a chained event joins at once
        let response;
        try {
            response = await fetchOf(...args);
        } catch (error) {
            if (joins) window.joinedEvents--;
            throw error;
        }
        if (joins && !response.ok) window.joinedEvents--;  // refused: no answer will come
        if (url.includes('/queue/data') && (args[1] || {}).method !== 'POST' && response.body) {
            const reader = response.clone().body.getReader();
            const decoder = new TextDecoder();
            let pending = '';
            (async () => {
                for (;;) {
                    const {done, value} = await reader.read();
                    if (done) return;
                    pending += decoder.decode(value, {stream: true});
                    const messages = pending.split('\\n\\n');
                    pending = messages.pop();
                    for (const message of messages)
                        if (message.includes('"process_completed"')) window.answeredEvents++;
                }
            })();
        }
        return response;
    };
})()"""


def count_answers(page) -> None:
    """From the page's first script on, count the events it joins and the answers it receives."""
    page.add_init_script(COUNT_ANSWERS)


def drawn(page) -> None:
    """The page has received the last message of every event it joined, and two animation frames
    later still has (an event chained after another joins as the first one's answer is read):
    Svelte applies a message within the task that reads it, so every toast and output of those
    answers is on the page. Waits on the page, never for a fixed time."""
    page.evaluate("""() => new Promise(done => {
        let frames = 0;
        const look = () => {
            frames = window.answeredEvents >= window.joinedEvents ? frames + 1 : 0;
            if (frames >= 2) done(); else requestAnimationFrame(look);
        };
        requestAnimationFrame(look);
    })""")


def steady(page, selector: str, frames: int = 5) -> None:
    """The boxes of every element `selector` matches have not moved for `frames` animation frames
    in a row (a scroll, a relayout or a transition has ended)."""
    page.evaluate("""([selector, frames]) => new Promise(done => {
        let last = null, same = 0;
        const look = () => {
            const boxes = JSON.stringify([...document.querySelectorAll(selector)].map(e => e.getBoundingClientRect()));
            same = boxes === last ? same + 1 : 0;
            last = boxes;
            if (same >= frames) done(); else requestAnimationFrame(look);
        };
        requestAnimationFrame(look);
    })""", [selector, frames])


def shot(page, name: str, panel: str | None = None) -> None:
    """When screenshots are asked for (SCREENSHOTS): the whole page as test-artifacts/<name>.png,
    and the view's own panel alone (`panel`: its elem_id) as <name>-panel.png."""
    if not SCREENSHOTS:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_function("[...document.images].every(image => image.complete)")
    steady(page, "img, .js-plotly-plot")  # images fade in, plots finish their transitions
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if panel:
        page.locator(f"#{panel}").screenshot(path=str(ARTIFACTS / f"{name}-panel.png"))
