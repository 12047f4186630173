"""Four costs Gradio 6 puts on every request of a busy shared app, removed (issue 25).

Measured on the 2-core machine with `bench/attack.py` and `bench/load.py`; each is installed by
`install()` when app.py builds the page, and each is tested in tests/test_gradio_fixes.py.

1. **A new session copies the whole page's configuration.**
   Gradio's `SessionState.__init__` renders the configuration of every block of the page (262
   here, each through `inspect.signature`) into `config_values`, which only deep links
   (`gr.DeepLinkButton`, unused by this app) ever read: 31 ms of CPU under the GIL and 444 KB per
   session, for every fresh `session_hash` any client sends. That made a new session the dearest
   thing a visitor can ask for (43% of the server's time when every request came from a fresh
   session; 2,000 sessions held +800 MB). Here `config_values` starts empty and each block's entry
   is made when Gradio first writes it, or when a deep link asks for them all.

2. **Output pictures are rewritten in place.**
   Gradio names each output picture by the hash of its bytes and rewrites the file in place every
   time a handler returns the same picture again (`Path.write_bytes` truncates first). A visitor
   downloading it meanwhile gets the length from the old file and then an empty body: under 64
   users clicking the same examples, 4 of 640 explain requests failed with "peer closed connection
   without sending complete message body". Here the bytes go to a temporary file that replaces the
   final name in one step, and a name that already exists (the same bytes, by construction) is left
   alone.

3. **Every event switches matplotlib's backend** (`utils.MatplotlibBackendMananger`): with the
   backend left to matplotlib's automatic choice, each switch searches for GUI toolkits again,
   1.46 ms per event under the GIL; with "agg" chosen once (a server draws no windows) it is
   7 microseconds.

4. **Every finished event summarises the whole event history with pandas.**
   `Queue.compute_analytics_summary` builds a DataFrame of the last 10,000 events, groups it by
   function and takes percentiles, after each event, for the `/monitoring` page (which
   `http_limits` refuses: nobody reads it). It costs 3.4 ms a summary at 100 events and grows with the
   history: 15.4 ms at 10,000 (`bench/analytics.py`), so an hour of a busy Space made each request
   dearer than the network's own work. Here the summary is left as it was (empty); the event records
   Gradio keeps (a few hundred bytes each, at most 10,000) are untouched.
"""
from __future__ import annotations

from copy import copy
from pathlib import Path

from ..atomic import write_bytes_atomic


def install() -> None:
    """All four, for every Gradio app in this process (idempotent)."""
    lean_sessions()
    atomic_picture_cache()
    headless_plots()
    no_event_summaries()


def no_event_summaries() -> None:
    """Gradio's queues stop summarising their event history (idempotent)."""
    from gradio import queueing

    queueing.Queue.compute_analytics_summary = _unread_summary


def _unread_summary(self, records):
    """`Queue.compute_analytics_summary` for an app whose /monitoring page is closed."""
    return self.cached_event_analytics_summary


def headless_plots() -> None:
    import matplotlib

    matplotlib.use("agg")


def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's `processing_utils.save_pil_to_cache`, with an atomic write."""
    from gradio import processing_utils as pu

    data = pu.encode_pil_to_bytes(img, format)
    path = (Path(cache_dir) / pu.hash_bytes(data) / f"{name}.{format}").resolve()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
    return str(path)


def atomic_picture_cache() -> None:
    """Make Gradio's output pictures use `save_pil_to_cache` (idempotent)."""
    from gradio import processing_utils as pu

    pu.save_pil_to_cache = save_pil_to_cache



def lean_session_class():
    from gradio import state_holder

    class LeanSessionState(state_holder.SessionState):
        def __init__(self, blocks):
            self.blocks_config = copy(blocks.default_config)
            self._page_blocks = blocks.blocks
            self.config_values = {}  # filled on demand: see `components`
            self.state_data = {}
            self._state_ttl = {}
            self.is_closed = False
            self.STATE_TTL_WHEN_CLOSED = 3600

        @property
        def components(self):
            """Every block's configuration, as Gradio's own builds it up front (deep links)."""
            for k, v in self.blocks_config.blocks.items():
                if k in self._page_blocks and k not in self.config_values:
                    self.config_values[k] = self.blocks_config.config_for_block(k, [], v)
            yield from (c for c in self.config_values.values() if c)

    return LeanSessionState


def lean_sessions() -> None:
    """New sessions of every Gradio app in this process are lean (idempotent)."""
    import sys

    from gradio import blocks, route_utils, state_holder

    if getattr(state_holder.SessionState, "lean", False):
        return
    cls = lean_session_class()
    cls.lean = True
    # every module that took the name at import (mcp only if it is loaded)
    for module in (state_holder, blocks, route_utils, sys.modules.get("gradio.mcp")):
        if module is not None and hasattr(module, "SessionState"):
            module.SessionState = cls
