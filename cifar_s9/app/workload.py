"""One budget for the app's heavy work: every handler that decodes an image or runs the network
shares one Gradio concurrency group, so the number of them running at once is a single number
for the whole app (Gradio's `default_concurrency_limit` applies per event listener: twelve
listeners took images, so "4 at a time" meant up to 48)."""
from __future__ import annotations

HEAVY_GROUP = "cifar_s9-heavy"
# Two cores: more than this at once only makes each request slower, and the worst case of one
# (an image decoded at the 40 MP cap, about 160 MB) times this bounds the memory they hold.
HEAVY_LIMIT = 4
# sessions whose State Gradio keeps (its default is 10,000, about 4 GB at 400 KB each)
SESSION_CAPACITY = 2000


def share_one_budget(demo, limit: int = HEAVY_LIMIT) -> list[str]:
    """Put every event of `demo` into the heavy group, except those declared with
    `concurrency_limit=None` (the training stream and its stop: they wait, they do not compute;
    the one training slot bounds their work). Returns the names of the events left out."""
    left_out = []
    for fn in demo.fns.values():
        if fn.concurrency_limit is None:
            left_out.append(fn.api_name or fn.name)
            continue
        fn.concurrency_id, fn.concurrency_limit = HEAVY_GROUP, limit
    return left_out
