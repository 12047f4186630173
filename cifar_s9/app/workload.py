"""One budget for the app's heavy work: every handler that decodes an image or runs the network
shares one Gradio concurrency group, so the number of them running at once is a single number
for the whole app (Gradio's `default_concurrency_limit` applies per event listener: twelve
listeners took images, so "4 at a time" meant up to 48)."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from ..errors import UserError

HEAVY_GROUP = "cifar_s9-heavy"
# Two cores: more than this at once only makes each request slower, and the worst case of one
# (an image decoded at the 40 MP cap, about 160 MB) times this bounds the memory they hold.
HEAVY_LIMIT = 4
# Torch's intra-op threads in a shared app. Up to HEAVY_LIMIT handlers run the network at once and
# already fill the cores; more threads each only oversubscribe them. `bench/load.py`, 64 users on
# the 2-core machine, three runs each: 30-31 req/s (p95 2.6-2.8 s) with 1 thread, 25-26 (p95
# 3.4-3.5 s) with 2. A personal app (--local) keeps torch's own choice: its training run is the
# work that matters there.
SHARED_APP_THREADS = 1
# sessions whose State Gradio keeps (its default is 10,000, about 4 GB at 400 KB each)
SESSION_CAPACITY = 2000


# Cheap events whose answers must arrive in the order they were asked (a link box recomputed by
# several fields' changes at once): one at a time, first come first served, outside the heavy group.
IN_ORDER_GROUP = "cifar_s9-in-order"


def torch_threads(requested: int | None, local: bool) -> int | None:
    """The app's torch threads: `requested`, else SHARED_APP_THREADS for a shared app, else None
    (a personal app: torch's default, every core)."""
    if requested is not None:
        if int(requested) < 1:
            raise ValueError(f"threads must be at least 1, got {requested}")
        return int(requested)
    return None if local else SHARED_APP_THREADS


def use_torch_threads(requested: int | None, local: bool) -> int:
    """Set `torch_threads` for this process (before the app serves) and return the count in use."""
    import torch

    threads = torch_threads(requested, local)
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def share_one_budget(demo, limit: int = HEAVY_LIMIT) -> list[str]:
    """Put every event of `demo` into the heavy group, except those declared with
    `concurrency_limit=None` (the training stream and its stop: they wait, they do not compute;
    the one training slot bounds their work) and those declared in IN_ORDER_GROUP (run one at a
    time, so they add one place to the budget). Returns the names of the events left out."""
    left_out = []
    for fn in demo.fns.values():
        if fn.concurrency_limit is None or fn.concurrency_id == IN_ORDER_GROUP:
            fn.concurrency_limit = None if fn.concurrency_limit is None else 1
            left_out.append(fn.api_name or fn.name)
            continue
        fn.concurrency_id, fn.concurrency_limit = HEAVY_GROUP, limit
    return left_out


class Seats:
    """At most `n` requests of one long kind (seconds, not the few hundred ms of a view) run at
    once; one more is refused at once, in words, rather than waiting: waiting, it would hold one
    of the HEAVY_LIMIT places, and a few of them would leave no place for anyone's short views."""

    def __init__(self, n: int, busy: str):
        self.n, self.busy = n, busy
        self._free = threading.BoundedSemaphore(n)

    @contextmanager
    def taken(self) -> Iterator[None]:
        if not self._free.acquire(blocking=False):
            raise UserError(self.busy)
        try:
            yield
        finally:
            self._free.release()


# Waiting events (queued, not yet running) one visitor may have: a page opening fires several at
# once (its example classified, the banner, the run token's re-attachment, the heartbeat, a tab's
# views): at 4 the Experiments tab's own plan line was refused on a busy machine, so 16; 80 joins
# from one client in 1.3 s took 28 of the 64 places. A class behind one NAT shares an address, so
# the per-address cap is half the queue, not a handful.
PER_SESSION_WAITING = 16
PER_CLIENT_WAITING = 32


def client_address(request) -> str:
    """The visitor's address: the last X-Forwarded-For hop (the one the Space's own proxy
    appended; earlier hops are whatever the client wrote), else the socket's peer."""
    forwarded = request.headers.get("x-forwarded-for", "") if request is not None else ""
    return address_from(forwarded, getattr(getattr(request, "client", None), "host", None))


def address_from(forwarded: str, peer: str | None) -> str:
    """`client_address` from an X-Forwarded-For value and the socket's peer host."""
    if forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return peer or "unknown"


def fair_queue(demo, per_session: int = PER_SESSION_WAITING, per_client: int = PER_CLIENT_WAITING):
    """Refuse a join (HTTP 503, Gradio's "queue full") from a session or an address that
    already has this many events waiting, so one client cannot fill the queue for the others.
    Installed on every queue `demo.queue(...)` makes from now on."""
    make_queue = demo.queue

    def queue(*args, **kwargs):
        result = make_queue(*args, **kwargs)
        _limit_pushes(demo._queue, per_session, per_client)
        return result

    demo.queue = queue
    if getattr(demo, "_queue", None) is not None:
        _limit_pushes(demo._queue, per_session, per_client)
    return demo


def _waiting_from(event_queue, session: str | None, client: str) -> tuple[int, int]:
    """(events waiting from `session`, events waiting from `client`), in one pass. Each event's
    address is read from its headers once and kept on it (Gradio's Event has no __slots__): every
    join walks the whole queue, and parsing each waiting event's headers per join was 4.8% of the
    time a loaded server held the GIL."""
    same_session = same_client = 0
    for q in list(event_queue.event_queue_per_concurrency_id.values()):
        for event in list(q.queue):
            address = getattr(event, "_cifar_s9_address", None)
            if address is None:
                address = event._cifar_s9_address = client_address(event.request)
            same_session += bool(session) and event.session_hash == session
            same_client += address == client
    return same_session, same_client


def _limit_pushes(event_queue, per_session: int, per_client: int) -> None:
    push = event_queue.push
    if getattr(push, "fair", False):
        return

    async def fair_push(body, request, username):
        session, client = getattr(body, "session_hash", None), client_address(request)
        same_session, same_client = _waiting_from(event_queue, session, client)
        if session and same_session >= per_session:
            return False, (f"You already have {per_session} requests waiting; wait for them to "
                           "finish before sending more."), "queue_full"
        if same_client >= per_client:
            return False, (f"Your network address already has {per_client} requests waiting; "
                           "try again in a moment."), "queue_full"
        return await push(body, request, username)

    fair_push.fair = True
    event_queue.push = fair_push
