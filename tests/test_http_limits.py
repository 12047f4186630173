"""Request-body caps (issue 13): refused before the body is read, JSON and uploads alike."""
from __future__ import annotations

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.testclient import TestClient
from synthetic import FakeClock

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
    surface, mw, quota, _ = kwargs["app_kwargs"]["middleware"]
    assert surface.cls is http_limits.PublicSurface and mw.cls is BodyLimit
    assert quota.cls is http_limits.UploadQuota


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


def quota_app(ledger):
    app, calls = make_app(upload=10_000)
    app.add_middleware(http_limits.UploadQuota, ledger=ledger)
    return app, calls


def test_an_address_over_its_upload_quota_is_refused_and_others_are_not():
    clock = FakeClock()
    ledger = http_limits.UploadLedger(max_bytes=10_000, max_files=100, window_s=600, clock=clock)
    app, calls = quota_app(ledger)
    client = TestClient(app)
    attacker, victim = {"x-forwarded-for": "10.0.0.1"}, {"x-forwarded-for": "10.0.0.2"}
    for _ in range(2):
        assert client.post("/gradio_api/upload", content=b"u" * 4000, headers=attacker).status_code == 200
    refused = client.post("/gradio_api/upload", content=b"u" * 4000, headers=attacker)
    assert refused.status_code == 429 and "Upload quota" in refused.text
    assert calls.count("upload") == 2  # refused before the body reached the app
    assert client.post("/gradio_api/upload", content=b"u" * 4000, headers=victim).status_code == 200
    clock.now = 601  # the window has passed
    assert client.post("/gradio_api/upload", content=b"u" * 4000, headers=attacker).status_code == 200


def test_a_streamed_upload_is_charged_what_it_sent_and_files_are_counted():
    clock = FakeClock()
    ledger = http_limits.UploadLedger(max_bytes=10_000, max_files=3, window_s=600, clock=clock)
    client = TestClient(quota_app(ledger)[0])
    who = {"x-forwarded-for": "10.0.0.3"}
    sent = client.post("/gradio_api/upload", content=iter([b"s" * 3000] * 3), headers=who)
    assert sent.status_code == 200 and sent.json() == {"n": 9000}
    assert ledger.refusal("10.0.0.3", 2000) is not None  # 9,000 charged although none was declared
    assert client.post("/gradio_api/upload", content=b"x", headers=who).status_code == 200
    assert client.post("/gradio_api/upload", content=b"x", headers=who).status_code == 200
    assert "3 files" in client.post("/gradio_api/upload", content=b"x", headers=who).text
    assert client.post("/gradio_api/queue/join", json={"data": []}, headers=who).status_code == 200


def test_the_ledger_forgets_the_oldest_address_past_its_bound():
    ledger = http_limits.UploadLedger(max_bytes=10, max_files=10, window_s=600, max_addresses=2)
    ledger.charge("a", 10)
    ledger.charge("b", 10)
    ledger.charge("c", 10)
    assert ledger.refusal("a", 1) is None and ledger.refusal("c", 1) is not None


def test_an_unknown_session_polling_the_queue_writes_no_traceback_over_raw_http(caplog):
    """A launched Gradio app: `queue/data` for a session with nothing queued used to log a 5.8 KB
    traceback per request; now it gets Gradio's own 'session not found' event and the log stays
    quiet, while a real call still streams."""
    import logging

    import gradio as gr
    import requests
    from gradio_client import Client

    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(lambda text: text.upper(), box, box, api_name="shout")
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", **http_limits.launch_kwargs())
    try:
        with caplog.at_level(logging.ERROR):
            for _ in range(3):
                r = requests.get(demo.local_url + "gradio_api/queue/data",
                                 params={"session_hash": "no-such-session"}, timeout=60)
                assert r.status_code == 200 and '"session_not_found":true' in r.text
        assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
        assert Client(demo.local_url, verbose=False).predict("hi", api_name="/shout") == "HI"
    finally:
        demo.close()
