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

`launch_kwargs` also sets Gradio's own per-file `max_file_size` to the same upload cap.
"""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from ..data.images import MAX_BYTES

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


def middleware(json_bytes: int = MAX_JSON_BYTES, upload_bytes: int = MAX_UPLOAD_BYTES) -> Middleware:
    return Middleware(BodyLimit, default=json_bytes, upload=upload_bytes + MULTIPART_SLACK)


def launch_kwargs(json_bytes: int = MAX_JSON_BYTES, upload_bytes: int = MAX_UPLOAD_BYTES) -> dict:
    """Keyword arguments for `demo.launch(...)`: the body caps and Gradio's per-file upload cap."""
    return {"max_file_size": upload_bytes,
            "app_kwargs": {"middleware": [Middleware(PublicSurface), middleware(json_bytes, upload_bytes)]}}
