"""Request-body caps for the public app, enforced before a body is read.

Gradio parses a `POST /gradio_api/queue/join` body completely before any handler or component
sees it (a 200 MB JSON body cost the server +500 MB), and its `max_file_size` covers each file
of an upload, not the request. `BodyLimit` is a plain ASGI middleware: a declared
`Content-Length` over the cap is answered 413 without reading a byte; a body without one
(chunked) is counted as it streams and cut off at the cap. GET, HEAD and OPTIONS pass.

How the app installs it (Gradio 6 passes `app_kwargs` to its FastAPI app's constructor, so the
middleware is in place before the server starts; `demo.app.add_middleware` after launch is too
late for Starlette):

    demo.queue(**QUEUE).launch(**launch_options(), **http_limits.launch_kwargs())

`launch_kwargs` also sets Gradio's own per-file `max_file_size` to the same upload cap, and
installs `UnknownSessionStream` (no traceback in the log per unknown session) and
`UploadQuota` (bytes and files per address per window, so one client's uploads cannot
make the size-capped upload folder drop other visitors' files) and `PublicSurface`.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from ..data.images import MAX_BYTES
from .workload import address_from

MAX_JSON_BYTES = 2**20           # 1 MB: the app's API calls carry settings and file references, not files
MAX_UPLOAD_BYTES = MAX_BYTES     # 20 MB: the image limit; checkpoints are never uploaded
MULTIPART_SLACK = 64 * 2**10     # multipart boundaries and headers around one maximal file
UPLOAD_PATHS = ("/gradio_api/upload",)
UNLIMITED_METHODS = ("GET", "HEAD", "OPTIONS")


class BodyTooLarge(HTTPException):
    """Raised inside the app when a streamed body passes its cap; FastAPI and Starlette pass an
    HTTPException through their own error handling, so it becomes a 413 answer."""

    def __init__(self, limit: int):
        super().__init__(413, f"Request body too large: the limit is {limit:,} bytes")


def limit_for(path: str, default: int = MAX_JSON_BYTES, upload: int = MAX_UPLOAD_BYTES + MULTIPART_SLACK) -> int:
    """The body cap for a request path (a mount prefix before `/gradio_api` is allowed)."""
    return upload if path.rstrip("/").endswith(UPLOAD_PATHS) else default


class BodyLimit:
    """ASGI middleware: refuse request bodies over `limit_for(path)` bytes with 413, unread."""

    def __init__(self, app, default: int = MAX_JSON_BYTES, upload: int = MAX_UPLOAD_BYTES + MULTIPART_SLACK):
        self.app, self.default, self.upload = app, default, upload

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method", "GET") in UNLIMITED_METHODS:
            return await self.app(scope, receive, send)
        limit = limit_for(scope.get("path", ""), self.default, self.upload)
        declared = _content_length(scope)
        if declared == -1:
            return await _answer(send, 400, "Invalid Content-Length header")
        if declared is not None and declared > limit:
            return await _answer(send, 413, BodyTooLarge(limit).detail)

        received, started = 0, False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as exc:  # raised where nothing turned it into a response
            if not started:
                await _answer(send, 413, exc.detail)


def _content_length(scope) -> int | None:
    """The declared body length; None when absent; -1 when malformed or repeated."""
    values = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
    if not values:
        return None
    if len(values) > 1 or not values[0].strip().isdigit():
        return -1
    return int(values[0])


async def _answer(send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"x-content-type-options", b"nosniff"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


# Gradio's analytics dashboard and its JSON: open by default, and nothing a visitor needs
HIDDEN_PATH_PARTS = ("/monitoring",)


class PublicSurface:
    """ASGI middleware: 404 for the paths a public Space must not expose, and
    `X-Content-Type-Options: nosniff` on every response, so an uploaded file is never run as
    HTML or script by a browser that guesses its type."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "").rstrip("/")
        if any(path.endswith(part) or part + "/" in path for part in HIDDEN_PATH_PARTS):
            return await _answer(send, 404, "Not Found")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"x-content-type-options"]
                message = {**message, "headers": [*headers, (b"x-content-type-options", b"nosniff")]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# What one address may upload per window: five maximal images in ten minutes. The upload folder
# is pruned oldest first at 500 MB (cleanup.UPLOAD_CAPS), so one client alone can no longer
# flood it to evict other visitors' files; it takes five addresses at their full quota.
UPLOAD_QUOTA = dict(max_bytes=5 * MAX_UPLOAD_BYTES, max_files=60, window_s=600.0)
TRACKED_ADDRESSES = 10_000       # the oldest address is forgotten past this many (bounded memory)


class UploadLedger:
    """Bytes and uploads per address over a sliding window; thread-safe, bounded in size."""

    def __init__(self, max_bytes: int, max_files: int, window_s: float, clock=time.monotonic,
                 max_addresses: int = TRACKED_ADDRESSES):
        self.max_bytes, self.max_files, self.window_s = max_bytes, max_files, window_s
        self.clock, self.max_addresses = clock, max_addresses
        self._seen: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, address: str) -> deque:
        entries = self._seen.setdefault(address, deque())
        self._seen.move_to_end(address)
        while len(self._seen) > self.max_addresses:
            self._seen.popitem(last=False)
        horizon = self.clock() - self.window_s
        while entries and entries[0][0] < horizon:
            entries.popleft()
        return entries

    def refusal(self, address: str, declared: int) -> str | None:
        """Why an upload of `declared` more bytes from `address` is refused, or None."""
        with self._lock:
            entries = self._recent(address)
            used = sum(n for _, n in entries)
            minutes = round(self.window_s / 60)
            if len(entries) >= self.max_files:
                return f"Upload quota reached: {self.max_files} files per {minutes} minutes per address"
            if used + declared > self.max_bytes:
                return (f"Upload quota reached: {self.max_bytes // 2**20} MB per {minutes} minutes per "
                        "address; try again later")
            return None

    def charge(self, address: str, n: int) -> None:
        with self._lock:
            self._recent(address).append((self.clock(), n))


class UploadQuota:
    """ASGI middleware: each address's uploads are charged to an `UploadLedger`; past its quota an
    upload is answered 429 before its body is read (a streamed one is charged what it sent)."""

    def __init__(self, app, ledger: UploadLedger | None = None):
        self.app, self.ledger = app, ledger or UploadLedger(**UPLOAD_QUOTA)

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or scope.get("method", "GET") in UNLIMITED_METHODS
                or not scope.get("path", "").rstrip("/").endswith(UPLOAD_PATHS)):
            return await self.app(scope, receive, send)
        address = address_from(_header(scope, b"x-forwarded-for"), (scope.get("client") or (None,))[0])
        declared = max(_content_length(scope) or 0, 0)
        refused = self.ledger.refusal(address, declared)
        if refused:
            return await _answer(send, 429, refused)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        try:
            await self.app(scope, counted_receive, send)
        finally:
            self.ledger.charge(address, max(received, declared))


def _header(scope, name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == name), "")


QUEUE_DATA_PATH = "/queue/data"
SESSION_NOT_FOUND = (b'data: {"msg":"unexpected_error","event_id":null,"message":"404: Not Found",'
                     b'"session_not_found":true,"success":false}\n\n')


class UnknownSessionStream:
    """ASGI middleware: a `GET .../queue/data` for a session with nothing queued gets Gradio's own
    "session not found" event straight away. Gradio answers it by raising inside a response that
    has started, which writes a 5.8 KB traceback to the log per request (300 requests: +1.7 MB)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope.get("method") == "GET"
                and scope.get("path", "").rstrip("/").endswith(QUEUE_DATA_PATH)
                and not _session_is_queued(scope)):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream; charset=utf-8"),
                                    (b"cache-control", b"no-cache"),
                                    (b"content-length", str(len(SESSION_NOT_FOUND)).encode())]})
            return await send({"type": "http.response.body", "body": SESSION_NOT_FOUND})
        return await self.app(scope, receive, send)


def _session_is_queued(scope) -> bool:
    from urllib.parse import parse_qs

    session = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash", [""])[0]
    try:
        pending = scope["app"].get_blocks()._queue.pending_messages_per_session
    except (KeyError, AttributeError):  # not a Gradio app: let it answer for itself
        return True
    return bool(session) and session in pending


def middleware(json_bytes: int = MAX_JSON_BYTES, upload_bytes: int = MAX_UPLOAD_BYTES) -> Middleware:
    return Middleware(BodyLimit, default=json_bytes, upload=upload_bytes + MULTIPART_SLACK)


def launch_kwargs(json_bytes: int = MAX_JSON_BYTES, upload_bytes: int = MAX_UPLOAD_BYTES) -> dict:
    """Keyword arguments for `demo.launch(...)`: the body caps and Gradio's per-file upload cap."""
    return {"max_file_size": upload_bytes,
            "app_kwargs": {"middleware": [Middleware(PublicSurface), middleware(json_bytes, upload_bytes),
                                           Middleware(UploadQuota), Middleware(UnknownSessionStream)]}}
