"""The `browser` fixture of every browser test: one chromium per test module (browsing.py has
the settings)."""
from __future__ import annotations

from pathlib import Path

import pytest
from browsing import ARGS, CHROMIUM


@pytest.fixture(scope="module")
def browser():
    """One chromium per test module; the module skips, saying why, when it cannot start."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is missing: apt-get install -y chromium")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as exc:  # a broken chromium install should not fail the suite
            pytest.skip(f"chromium does not start: {exc}")
        yield b
        b.close()
