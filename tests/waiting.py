"""Waiting for events, never for a fixed time (issue 23): the tests pass on a busy 2-core machine.

A test that needs something to have happened waits for that thing (a thread, a message, an
element) with `wait_until` or an Event, under a deadline that only a real hang reaches: HANG_S.
A test that may wait that long raises its own pytest-timeout (pyproject's is 300 s a test)
with `@pytest.mark.timeout(SLOW_TEST_S)`. CIFAR_S9_TEST_HANG_S sets HANG_S (e.g. a few seconds,
to see quickly that a test whose event never comes fails).
"""
from __future__ import annotations

import os
import time
from typing import Callable, TypeVar

HANG_S = float(os.environ.get("CIFAR_S9_TEST_HANG_S", 600))  # s: no wait is this long but a hang
HANG_MS = int(HANG_S * 1000)   # the same, for Playwright
SLOW_TEST_S = 1800             # pytest-timeout for a test that waits on real work (training, a server)

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, timeout: float = HANG_S, every: float = 0.05) -> T:
    """Poll `condition` until it returns something true, and return that; fail, naming `what`,
    once `timeout` seconds have passed (a hang, not a slow machine)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: still not the case after {timeout:.0f} s")
        time.sleep(every)
