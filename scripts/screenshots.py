"""Refresh the README's screenshots: every tab at 1400 px and at 390 px (a phone).

    python scripts/screenshots.py [--out assets/screenshots] [--data-dir DIR]

Launches the app on a free local port with the shipped weights, drives Debian's chromium through
Playwright, and writes <tab>-1400.png and <tab>-390.png (palette PNGs, to stay small). An explicit
command: the tests never write into assets/.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TABS = {"classify": "Classify", "augmentation": "Augmentation lab", "train": "Train",
        "experiments": "Experiments", "mistakes": "Mistakes", "inside": "Inside", "model": "Model"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settle(page) -> None:
    """Scroll through the page so lazy images load, then back to the top."""
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height, 600):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(120)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(800)


def save_small(png: bytes, path: Path) -> None:
    """A 256-colour PNG: a screenshot of flat UI colours loses nothing visible."""
    import io

    from PIL import Image
    im = Image.open(io.BytesIO(png)).convert("RGB")
    im.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def capture(page, width: int, out: Path) -> None:
    for slug, name in TABS.items():
        page.get_by_role("tab", name=name).click()
        if slug == "classify":
            page.locator("#prediction .output-class").wait_for()  # the page opens on the ship, classified
            page.wait_for_function("document.querySelector('#cam img') !== null")
        elif slug == "augmentation":
            page.wait_for_function("document.querySelectorAll('#aug_grid img').length >= 12")
        elif slug == "train":
            page.get_by_role("button", name="Start").click()
            page.locator("#train_progress").get_by_text("finished", exact=False).wait_for(timeout=600_000)
        elif slug == "mistakes":
            page.locator("#mistakes_note").get_by_text("Accuracy", exact=False).wait_for(timeout=600_000)
            thumbs = page.locator("#mistake_gallery button.thumbnail-item")
            if thumbs.count():
                thumbs.first.click()
                page.get_by_text("Test image #", exact=False).first.wait_for()
        elif slug == "inside":  # the feature maps of the current image (the ship picked on Classify)
            page.wait_for_function("document.querySelectorAll('#inside_channels img').length >= 8")
        elif slug == "model":
            page.get_by_text("C4.conv3").first.wait_for()
        settle(page)
        path = out / f"{slug}-{width}.png"
        save_small(page.screenshot(full_page=True), path)
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path  # --out may lie elsewhere
        print(f"{shown}  {path.stat().st_size / 1024:.0f} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "assets" / "screenshots"))
    parser.add_argument("--data-dir", help="CIFAR-10 image folder for the Mistakes tab (default: sample)")
    args = parser.parse_args()
    os.chdir(ROOT)
    import app
    from cifar_s9.data.app_data import load_training_data
    from playwright.sync_api import sync_playwright

    ctx = app.configure(data_dir=args.data_dir, runs_dir=ROOT / "test-artifacts" / "screenshot-runs")
    ctx.jobs.load_data = lambda: load_training_data(None)  # the bundled sample: a quick demo run
    port = free_port()
    app.demo.queue(**app.QUEUE).launch(**{**app.launch_options(), "server_name": "127.0.0.1",
                                          "server_port": port, "prevent_thread_lock": True, "quiet": True})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for width, height in ((1400, 1000), (390, 844)):
                page = browser.new_context(viewport={"width": width, "height": height}).new_page()
                page.set_default_timeout(120_000)
                page.goto(app.demo.local_url)
                page.locator("#banner").get_by_text("Active model").wait_for()
                capture(page, width, out)
                page.context.close()
            browser.close()
    finally:
        app.demo.close()


if __name__ == "__main__":
    main()
