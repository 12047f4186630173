"""Request-body caps (issue 13): refused before the body is read, JSON and uploads alike."""
from __future__ import annotations

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.testclient import TestClient

from cifar_s9.app import http_limits
from cifar_s9.app.http_limits import BodyLimit, limit_for


class Body(BaseModel):
    data: list


def make_app(default=1000, upload=5000):
    calls = []
    app = FastAPI(middleware=[http_limits.Middleware(BodyLimit, default=default, upload=upload)])

    @app.post("/gradio_api/queue/join")
    async def join(body: Body):  # FastAPI parses the JSON body, as Gradio's queue/join does
        calls.append("join")
        return {"n": len(body.data)}

    @app.post("/gradio_api/upload")
    async def upload(request: __import__("fastapi").Request):
        calls.append("upload")
        n = 0
        async for chunk in request.stream():
            n += len(chunk)
        return {"n": n}

    @app.get("/config")
    async def config():
        return {"ok": True}

    return app, calls


def test_small_bodies_pass_and_large_ones_are_refused_unread():
    app, calls = make_app()
    client = TestClient(app)
    assert client.post("/gradio_api/queue/join", json={"data": [1, 2]}).json() == {"n": 2}
    big = client.post("/gradio_api/queue/join", json={"data": ["x" * 2000]})
    assert big.status_code == 413 and "limit is 1,000 bytes" in big.text
    assert calls == ["join"]  # the handler never ran for the large body
    assert client.post("/gradio_api/upload", content=b"u" * 4000).json() == {"n": 4000}
    assert client.post("/gradio_api/upload", content=b"u" * 6000).status_code == 413
    assert client.get("/config").json() == {"ok": True}


def test_a_body_without_content_length_is_counted_as_it_streams():
    app, calls = make_app()
    client = TestClient(app)
    pulled = []

    def chunks():  # no Content-Length: sent chunked
        for i in range(100):
            pulled.append(i)
            yield b'{"data": ["' + b"x" * 400 if i == 0 else b"x" * 400

    response = client.post("/gradio_api/queue/join", content=chunks(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and "join" not in calls
    response = client.post("/gradio_api/upload", content=(b"u" * 1000 for _ in range(10)))
    assert response.status_code == 413 and "upload" in calls


@pytest.mark.parametrize("value", [b"abc", b"-5", b"1e9"])
def test_malformed_content_length_is_refused(value):
    app, _ = make_app()
    import anyio

    sent = []

    async def run():
        async def receive():
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/gradio_api/queue/join",
                 "headers": [(b"content-length", value)]}
        await BodyLimit(app, 1000, 5000)(scope, receive, send)

    anyio.run(run)
    assert sent[0]["status"] == 400


def test_limits_by_path():
    assert limit_for("/gradio_api/upload") > limit_for("/gradio_api/queue/join") == http_limits.MAX_JSON_BYTES
    assert limit_for("/myapp/gradio_api/upload/") == limit_for("/gradio_api/upload")
    assert limit_for("/gradio_api/upload_progress") == http_limits.MAX_JSON_BYTES


def test_launch_kwargs_install_the_middleware_and_the_file_cap():
    kwargs = http_limits.launch_kwargs()
    assert kwargs["max_file_size"] == http_limits.MAX_UPLOAD_BYTES == 20 * 2**20
    surface, mw = kwargs["app_kwargs"]["middleware"]
    assert surface.cls is http_limits.PublicSurface and mw.cls is BodyLimit


def surface_client():
    app = FastAPI(middleware=[http_limits.Middleware(http_limits.PublicSurface)])

    @app.get("/file")
    async def file():
        return __import__("fastapi").Response(b"<script>alert(1)</script>", media_type="text/plain")

    for route in ("/monitoring", "/monitoring/summary", "/gradio_api/monitoring"):
        app.get(route)(lambda: {"dashboard": "open"})
    return TestClient(app)


def test_every_response_says_nosniff_and_monitoring_is_hidden():
    client = surface_client()
    r = client.get("/file")
    assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    for path in ("/monitoring", "/monitoring/", "/monitoring/summary", "/gradio_api/monitoring"):
        r = client.get(path)
        assert r.status_code == 404 and "dashboard" not in r.text, path
        assert r.headers["x-content-type-options"] == "nosniff"
