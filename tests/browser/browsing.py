"""What the browser tests share: Debian's chromium driven by Playwright (it cannot download a
browser of its own here), its flags, and where screenshots go (git-ignored)."""
from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# without the background-networking flags chromium keeps dialling out of a closed network
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
