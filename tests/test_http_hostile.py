"""The app under attack, over raw HTTP (issue 13): one launched app, spoken to as a browser or a
script would, with `POST /gradio_api/queue/join` and the SSE stream `GET /gradio_api/queue/data`.

Each hole of issue 13 is one row (`test_row_*`); `test_every_fn_index_survives_hostile_payloads`
then calls every `fn_index` listed in `/config` with hostile payloads. After each, a valid
classify still works and the shipped model still gives the same answer to a bystander session.
The harness reads `/config` and finds handlers by what they take and what triggers them (the
button labels "Start", "Stop", "activate"/"use this model"), never by a hard-coded index.

The last three rows needed the rebuilt app (branch `app`: per-session models, activation from
the run's own folder, no paths in UI texts); they failed on `main` and on this branch before
`app` was merged into it.
"""
from __future__ import annotations

import json
import os
import re
import resource
import threading
import uuid
from pathlib import Path

import httpx
import pytest
import torch
from hostile import bmp_of_bytes, blocks_config, data_url, png_bomb, safetensors_with_config, small_png
from synthetic import free_port, make_dataset_dir
from waiting import HANG_S, SLOW_TEST_S, wait_until

# a busy machine makes training and the queue slow, never wrong: every wait is for the event
# itself, under a deadline only a hang reaches (issue 23)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(SLOW_TEST_S)]

ROOT = Path(__file__).resolve().parent.parent
CALL_TIMEOUT = HANG_S  # a call that takes this long hangs; a slow one just takes longer
SHIPPED = ROOT / "weights" / "default.safetensors"
ACTIVATE = r"activ|use this model"  # the label of the button that makes a run the active model


# ================================================================ a raw HTTP client

class Refused(Exception):
    """The server refused the request at the HTTP level (status code in `status`)."""

    def __init__(self, status: int, text: str):
        super().__init__(f"HTTP {status}: {text[:200]}")
        self.status, self.text = status, text


class Session:
    """One visitor: a session hash, `queue/join` to submit, one SSE reader for all its events."""

    def __init__(self, client: httpx.Client):
        self.client, self.hash = client, uuid.uuid4().hex[:12]
        self.messages: dict[str, list[dict]] = {}
        self.done: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def submit(self, fn_index: int, data: list, event_data=None, trigger_id=None) -> str:
        r = self.client.post("/gradio_api/queue/join", json={
            "data": data, "fn_index": fn_index, "session_hash": self.hash, "event_data": event_data,
            "trigger_id": trigger_id})
        if r.status_code != 200:
            raise Refused(r.status_code, r.text)
        event_id = r.json()["event_id"]
        with self._lock:
            self.messages.setdefault(event_id, [])
            self.done.setdefault(event_id, threading.Event())
            if self._reader is None or not self._reader.is_alive():
                self._reader = threading.Thread(target=self._read, daemon=True)
                self._reader.start()
        return event_id

    def _read(self) -> None:
        while True:
            with self.client.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.hash},
                                    timeout=httpx.Timeout(CALL_TIMEOUT, read=CALL_TIMEOUT)) as r:
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    msg = json.loads(line[5:])
                    event_id = msg.get("event_id")
                    with self._lock:
                        # kept even before `submit` has noted the id: a quick handler (Stop) can
                        # answer on this stream before its join's reply is read
                        if event_id is not None:
                            self.messages.setdefault(event_id, []).append(msg)
                            if msg.get("msg") in ("process_completed", "unexpected_error"):
                                self.done.setdefault(event_id, threading.Event()).set()
                    if msg.get("msg") == "close_stream":
                        break
            with self._lock:  # an event submitted while the stream was closing: read again
                if all(e.is_set() for e in self.done.values()):
                    self._reader = None
                    return

    def result(self, event_id: str, timeout: float = CALL_TIMEOUT) -> "Result":
        assert self.done[event_id].wait(timeout), f"event {event_id} did not complete in {timeout} s"
        with self._lock:
            return Result(list(self.messages[event_id]))

    def call(self, fn_index: int, data: list, event_data=None, timeout: float = CALL_TIMEOUT) -> "Result":
        return self.result(self.submit(fn_index, data, event_data), timeout)


class Result:
    def __init__(self, messages: list[dict]):
        self.messages = messages
        final = messages[-1]
        self.success = bool(final.get("success")) and final.get("msg") == "process_completed"
        output = final.get("output") or {}
        self.data = output.get("data")
        self.error = output.get("error") or final.get("message") or ""
        self.title = final.get("title") or ""

    def texts(self) -> list[str]:
        """Every string a visitor could read in the messages: outputs, errors, logs (gr.Info and
        gr.Warning); Gradio's own file references (path/url of FileData) are left out."""
        found: list[str] = []

        def walk(x, key=None):
            if isinstance(x, dict):
                is_file = (x.get("meta") or {}).get("_type") == "gradio.FileData"
                for k, v in x.items():
                    if not (is_file and k in ("path", "url")):
                        walk(v, k)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
            elif isinstance(x, str) and key not in ("event_id", "msg"):
                found.append(x)

        walk(self.messages)
        return found


class App:
    """The launched app as the tests see it: its URL, its /config and what the harness found."""

    def __init__(self, module, url: str, runs_dir: Path, data_dir: Path):
        self.module, self.url, self.runs_dir, self.data_dir = module, url, runs_dir, data_dir
        self.client = httpx.Client(base_url=url, timeout=CALL_TIMEOUT)
        self.config = self.client.get("/config").json()
        self.components = {c["id"]: c for c in self.config["components"]}
        self.fns = [d for d in self.config["dependencies"] if d.get("backend_fn", True)]

    def session(self) -> Session:
        return Session(self.client)

    def types(self, fn: dict) -> list[str]:
        return [self.components[i]["type"] for i in fn["inputs"]]

    def defaults(self, fn: dict) -> list:
        return [self.components[i].get("props", {}).get("value") for i in fn["inputs"]]

    def upload(self, data: bytes, name: str) -> str:
        r = self.client.post("/gradio_api/upload", files={"files": (name, data)})
        if r.status_code != 200:
            raise Refused(r.status_code, r.text)
        return r.json()[0]

    def fn_by_api_name(self, name: str) -> dict:
        return next(d for d in self.fns if d.get("api_name") == name)

    def fn_by_button(self, label: str) -> dict:
        """The handler a button triggers, found by the button's label (a regular expression)."""
        for d in self.fns:
            for target_id, event in d.get("targets", []):
                c = self.components.get(target_id, {})
                if c.get("type") == "button" and event == "click" and \
                        re.search(label, str(c.get("props", {}).get("value", "")), re.I):
                    return d
        raise LookupError(f"no button matching {label!r}")

    def image_fns(self) -> list[dict]:
        return [d for d in self.fns if "image" in self.types(d)]


def file_payload(path: str, name: str = "image.png", meta: bool = True) -> dict:
    d = {"path": path, "orig_name": name}
    if meta:
        d["meta"] = {"_type": "gradio.FileData"}
    return d


def rss_mb() -> float:
    """This process's resident memory now (the app runs in it), in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class PeakGrowth:
    """Peak resident-memory growth of this process (the server runs in it) while the block runs,
    sampled every 5 ms: a decoded bomb or a buffered body shows up even if freed at once."""

    def __enter__(self):
        self.start, self.peak, self._stop = rss_mb(), 0.0, threading.Event()

        def sample():
            while not self._stop.wait(0.005):
                self.peak = max(self.peak, rss_mb())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def mb(self) -> float:
        return self.peak - self.start


# ================================================================ the app, launched once

@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import app as module  # the app module, as `python app.py` runs it

    data_dir = make_dataset_dir(tmp_path_factory.mktemp("data"), train_per_class=20, test_per_class=2)
    runs_dir = tmp_path_factory.mktemp("runs")
    module.configure(weights=SHIPPED, data_dir=str(data_dir), runs_dir=runs_dir)
    port = free_port()
    options = {**module.launch_options(), "server_name": "127.0.0.1", "server_port": port,
               "prevent_thread_lock": True, "quiet": True}
    module.demo.queue(**module.QUEUE).launch(**options)
    try:
        yield App(module, f"http://127.0.0.1:{port}", runs_dir, data_dir)
    finally:
        module.demo.close()


@pytest.fixture(scope="module")
def probe(app):
    """A valid image uploaded once, and the shipped model's answer for it (the baseline)."""
    path = app.upload(small_png((0, 130, 200)), "probe.png")
    answer = classify(app, app.session(), file_payload(path, "probe.png"))
    assert answer.success, answer.error
    return path, answer.data[0]


def classify(app: App, session: Session, image) -> Result:
    fn = app.fn_by_api_name("classify")
    data = app.defaults(fn)
    data[app.types(fn).index("image")] = image
    return session.call(fn["id"], data)


def assert_still_serving(app: App, probe) -> None:
    """A fresh session's valid classify works and the shipped model gives the baseline answer."""
    path, baseline = probe
    answer = classify(app, app.session(), file_payload(path, "probe.png"))
    assert answer.success, f"a valid classify failed afterwards: {answer.error}"
    assert answer.data[0]["label"] == baseline["label"]
    got = {c["label"]: c["confidence"] for c in answer.data[0]["confidences"]}
    want = {c["label"]: c["confidence"] for c in baseline["confidences"]}
    assert got == pytest.approx(want, abs=1e-6), "another session changed the model this one sees"


def server_paths(app: App) -> list[str]:
    """Absolute server paths a visitor must never read (Gradio's own cache folder aside)."""
    return [p for p in {str(ROOT), str(app.runs_dir), str(app.data_dir), str(Path.home()) + "/"}
            if len(p) > 2]


def assert_no_server_path(app: App, texts) -> None:
    for text in texts:
        for path in server_paths(app):
            assert path not in text, f"a server path reached the visitor: {text[:300]!r}"


def image_fn_data(app: App, fn: dict, image) -> list:
    data = app.defaults(fn)
    for i, t in enumerate(app.types(fn)):
        if t == "image":
            data[i] = image
    return data


# ================================================================ rows: one per hole of issue 13

def test_row_server_path_without_meta_is_not_read(app, probe):
    """Hole 2: `{"path": <server file>}` without `meta` made /classify, /explain and the network
    view read any server image, and the errors told which paths exist."""
    real = str(ROOT / "assets" / "examples" / "cat.jpg")
    assert Path(real).is_file()
    session = app.session()
    for fn in app.image_fns():
        for payload in ({"path": real}, {"path": real, "orig_name": "cat.jpg"}):
            result = session.call(fn["id"], image_fn_data(app, fn, payload))
            assert not result.success, f"fn {fn['id']} ({fn.get('api_name')}) read a server file"
            assert_no_server_path(app, result.texts())
    # no existence oracle: a real and an absent server path get the same answer
    fn = app.fn_by_api_name("classify")
    answers = {session.call(fn["id"], image_fn_data(app, fn, {"path": p})).error
               for p in (real, str(ROOT / "assets" / "examples" / "absent.jpg"), "/etc/hostname")}
    assert len(answers) == 1, answers
    assert_still_serving(app, probe)


def test_row_traversal_and_symlink_out_of_the_upload_folder(app, probe):
    """Hole 2, variants: ".." out of the upload folder, with and without `meta`."""
    uploaded = Path(app.upload(small_png(), "x.png"))
    target = ROOT / "assets" / "examples" / "dog.jpg"
    up = "/".join([".."] * len(uploaded.parent.parts))
    traversal = str(uploaded.parent / up / target.relative_to("/"))
    assert Path(os.path.normpath(traversal)) == target
    link = uploaded.parent / "link.jpg"  # as if a symlink had got into the upload folder
    link.symlink_to(target)
    session = app.session()
    fn = app.fn_by_api_name("classify")
    try:
        for path in (traversal, str(link)):
            for meta in (True, False):
                result = session.call(fn["id"], image_fn_data(app, fn, file_payload(path, "dog.jpg", meta)))
                assert not result.success, f"read {path} (meta={meta})"
                assert_no_server_path(app, result.texts())
    finally:
        link.unlink()
    assert_still_serving(app, probe)


def test_row_data_url_bomb_is_refused_from_its_header(app, probe):
    """Hole 3: a 140 KB PNG declaring 144 megapixels, sent as a data: URL, took 14 s and +1.24 GB
    before refusal. It must be refused from its header, without allocating its pixels (times:
    bench/hostile_payloads.py)."""
    bomb = png_bomb()
    fn = app.fn_by_api_name("classify")
    session = app.session()
    with PeakGrowth() as grown:
        result = session.call(fn["id"], image_fn_data(app, fn, {"url": data_url(bomb), "orig_name": "bomb.png",
                                                                 "meta": {"_type": "gradio.FileData"}}),
)
    assert not result.success
    assert "megapixels" in result.error
    assert grown.mb < 100, f"the server grew by {grown.mb:.0f} MB (144 MB of pixels were decoded?)"
    assert_still_serving(app, probe)


def test_row_27_mb_bmp_is_refused_every_way(app, probe):
    """Hole 3: a 27 MB BMP as a data: URL was accepted. Refused as a data: URL (the JSON body
    cap) and as an upload (the file cap)."""
    bmp = bmp_of_bytes()
    fn = app.fn_by_api_name("classify")
    session = app.session()
    try:
        result = session.call(fn["id"], image_fn_data(app, fn, {"url": data_url(bmp, "image/bmp"),
                                                                 "meta": {"_type": "gradio.FileData"}}))
        assert not result.success, "a 27 MB BMP sent as a data: URL was accepted"
    except Refused as exc:
        assert exc.status == 413
    with pytest.raises(Refused) as info:
        app.upload(bmp, "big.bmp")
    assert info.value.status == 413
    assert_still_serving(app, probe)


def test_row_oversized_json_body_is_refused_unread(app, probe):
    """Hole: a 200 MB JSON body to queue/join was accepted (+500 MB). It must be refused from its
    declared length, and a chunked one as it streams, without the server buffering it."""
    chunk = b"x" * 2**20

    def body(n_mb: int):
        yield b'{"data": ["'
        for _ in range(n_mb):
            yield chunk
        yield b'"], "fn_index": 0, "session_hash": "big"}'

    declared = 11 + 200 * 2**20 + 41
    for headers in ({"content-type": "application/json", "content-length": str(declared)},
                    {"content-type": "application/json"}):  # the second: chunked, no length
        with PeakGrowth() as grown:
            try:
                r = httpx.post(app.url + "/gradio_api/queue/join", content=body(200), headers=headers,
                               timeout=CALL_TIMEOUT)
                status = r.status_code
            except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
                status = 413  # the server answered and closed while the body was still being sent
        assert status == 413, f"a 200 MB body got HTTP {status}"
        assert grown.mb < 100, f"the server grew by {grown.mb:.0f} MB"
    assert_still_serving(app, probe)


def test_row_20000_block_checkpoint_is_refused_in_milliseconds(app, probe):
    """Hole: a 4.8 MB checkpoint declaring 20,000 blocks was refused only after 2 minutes and
    1.8 GB. Whatever handler takes a file must refuse it from the declared config, building
    nothing. (Times are measured by bench/hostile_payloads.py, not asserted here.)"""
    path = app.upload(safetensors_with_config(blocks_config(20_000)), "model.safetensors")
    session = app.session()
    for fn in [d for d in app.fns if "file" in app.types(d)]:
        data = [file_payload(path, "model.safetensors") if t == "file" else v
                for t, v in zip(app.types(fn), app.defaults(fn))]
        with PeakGrowth() as grown:
            result = session.call(fn["id"], data)  # 2 minutes before the fix (times: bench/)
        # refused from the header's size, before the JSON is even parsed (it was "declares
        # 20000 blocks" once the whole config had been read)
        assert not result.success and "records a model config of 1,780,012 characters" in result.error
        assert grown.mb < 100, f"the server grew by {grown.mb:.0f} MB"
    assert_still_serving(app, probe)


def run_training(app: App, session: Session, epochs: int) -> str:
    fn = app.fn_by_button(r"^\W*start\b")
    data = app.defaults(fn)
    for i, (t, c) in enumerate(zip(app.types(fn), fn["inputs"])):
        label = str(app.components[c].get("props", {}).get("label", ""))
        if t == "slider" and "epoch" in label:
            data[i] = epochs
        elif "batch" in label:
            data[i] = 32
        elif "subset" in label or "training images" in label:
            data[i] = 200
    return session.submit(fn["id"], data)


def stop(app: App, session: Session) -> Result:
    fn = app.fn_by_button(r"^\W*stop\b")
    return session.call(fn["id"], app.defaults(fn))


def wait_for(session: Session, event_id: str, pattern: str, timeout: float = HANG_S) -> None:
    wait_until(lambda: any(re.search(pattern, t) for m in list(session.messages[event_id])
                           for t in Result([m]).texts()), f"the progress never said {pattern!r}", timeout)


def activate_with(app: App, session: Session, final: Result) -> Result:
    """Call the activate handler as the page would after a run: with the run's file output, if
    the app shows one (the rebuilt app keeps the run in session state instead)."""
    activate = app.fn_by_button(ACTIVATE)
    files = [o for o in (final.data or []) if isinstance(o, dict) and "path" in o]
    data = [files[0] if (t == "file" and files) else v
            for t, v in zip(app.types(activate), app.defaults(activate))]
    return session.call(activate["id"], data)


def epochs_done(session: Session, event_id: str) -> int:
    """The last "epoch N/M done" the run's progress stream showed."""
    found = [int(m) for msg in list(session.messages[event_id]) for t in Result([msg]).texts()
             for m in re.findall(r"epoch (\d+)/\d+ done", t)]
    return max(found, default=0)


def test_row_only_the_session_that_started_a_run_can_stop_it(app, probe):
    """Hole: the stop handler from a second session_hash stopped another session's run. After a
    stranger's stop, the run must go on to finish another epoch."""
    owner, stranger = app.session(), app.session()
    event = run_training(app, owner, epochs=50)
    wait_for(owner, event, r"training|epoch \d|step \d")
    at_stop = epochs_done(owner, event)
    answer = stop(app, stranger)
    assert_no_server_path(app, answer.texts())

    def another_epoch() -> bool:
        assert not owner.done[event].is_set(), "a second session stopped the run"
        return epochs_done(owner, event) > at_stop

    wait_until(another_epoch, "the run made no progress after the stranger's stop")
    stop(app, owner)
    final = owner.result(event)
    assert final.success, final.error
    assert any("stop" in t.lower() for t in final.texts())
    assert_still_serving(app, probe)


def test_row_a_run_stopped_before_its_first_epoch_cannot_be_activated(app, probe):
    """Hole: every start/stop left an 800 KB run folder, and an untrained 0-epoch run could be
    activated (and then served to everyone)."""
    owner = app.session()
    before = {p.name for p in app.runs_dir.iterdir()}
    event = run_training(app, owner, epochs=50)
    wait_for(owner, event, r"training")
    stop(app, owner)
    final = owner.result(event)
    assert final.success, final.error
    if any(re.search(r"epoch [1-9]\d*/", t) for t in final.texts()):
        pytest.skip("the first epoch ended before the stop arrived (machine too fast for this row)")
    left = {p.name for p in app.runs_dir.iterdir()} - before
    assert not any((app.runs_dir / name / "model.safetensors").exists() for name in left), \
        "a 0-epoch run left a checkpoint"
    result = activate_with(app, owner, final)
    assert not result.success, "an untrained 0-epoch run was activated"
    assert_still_serving(app, probe)


def test_row_no_server_path_in_config(app):
    """Hole: /config named server paths. Only Gradio's own cache folder may appear in it, nor in
    the API description routes."""
    texts = [json.dumps(app.config)]
    for route in ("/gradio_api/info", "/gradio_api/openapi.json", "/manifest.json"):
        r = app.client.get(route)
        texts.append(r.text)
    assert_no_server_path(app, texts)


def test_row_file_routes_serve_only_gradios_cache(app, probe):
    """The other routes that take a path: `/gradio_api/file=` serves Gradio's cache only, with
    no traversal out of it; the proxy route fetches nothing for a visitor."""
    uploaded = Path(probe[0])
    up = "/".join([".."] * len(uploaded.parent.parts))
    for target in (SHIPPED, ROOT / "app.py", ROOT / "assets" / "examples" / "cat.jpg", Path("/etc/passwd")):
        for path in (str(target), f"{uploaded.parent}/{up}{target}", str(target.relative_to(target.anchor))):
            r = app.client.get(f"/gradio_api/file={path}")
            assert r.status_code in (400, 403, 404), f"/file={path} answered {r.status_code}"
    assert app.client.get(f"/gradio_api/file={uploaded}").status_code == 200  # an upload is served
    r = app.client.get("/gradio_api/proxy=http://169.254.169.254/latest/meta-data/")
    assert r.status_code >= 400


# ================================================================ every fn_index, hostile payloads

def hostile_payloads(app: App, uploaded_png: str) -> dict[str, object]:
    """Values that go in place of a handler's inputs: server paths, traversal, bombs, web
    addresses (the app's own /config, to try a request forgery), wrong types, oversized text."""
    real = str(ROOT / "assets" / "examples" / "cat.jpg")
    up = "/".join([".."] * len(Path(uploaded_png).parent.parts))
    return {
        "server path, no meta": {"path": real},
        "server path, meta": file_payload(real, "cat.jpg"),
        "weights file": file_payload(str(SHIPPED), "default.safetensors"),
        "traversal": file_payload(str(Path(uploaded_png).parent / up / real.lstrip("/")), "cat.jpg"),
        "data: URL bomb": {"url": data_url(png_bomb()), "meta": {"_type": "gradio.FileData"}},
        "web address": file_payload(app.url + "/config", "config.png"),
        "number": 1e308,
        "negative": -(2**63),
        "text": "../../etc/passwd",
        "nested": [[[[[[["deep"]]]]]]],
        "object": {"path": 5, "url": ["x"], "meta": "no"},
        "oversized text": "9" * 600_000,
    }


def test_every_fn_index_survives_hostile_payloads(app, probe):
    """Every handler listed in /config (public, private or undocumented), each input replaced by
    each hostile payload: the server answers (success or a clean error), never reads a server
    file for an image, never shows a server path, and keeps serving the shipped model."""
    uploaded = app.upload(small_png(), "fuzz.png")
    payloads = hostile_payloads(app, uploaded)
    session = app.session()
    start_fn = app.fn_by_button(r"^\W*start\b")
    leaked, called = [], 0
    for fn in app.fns:
        if not fn["inputs"]:
            continue
        # Gradio takes a gr.State input from the session, never from the request: a handler whose
        # inputs are all State answers every payload the same way, so one payload covers it
        stateful_only = set(app.types(fn)) == {"state"}
        for name, payload in payloads.items():
            if stateful_only and name != "object":
                continue
            data = [payload] * len(fn["inputs"])
            for event_data in ([None] if not any(e == "select" for _, e in fn.get("targets", []))
                               else [None, {"index": 10**9}, {"index": "x"}]):
                try:
                    result = session.call(fn["id"], data, event_data=event_data)
                except Refused as exc:
                    assert exc.status in (400, 413, 422), exc
                    continue
                called += 1
                if fn["id"] == start_fn["id"]:
                    assert not result.success or "busy" in " ".join(result.texts()).lower()
                if "image" in app.types(fn) and "path" in name:
                    assert not result.success, f"fn {fn['id']} accepted {name}"
                if name == "web address" and {"image", "file"} & set(app.types(fn)):
                    assert not result.success and "web address" in result.error, \
                        f"fn {fn['id']} tried to fetch a web address: {result.error!r}"
                sent = json.dumps(payload)
                for text in result.texts():  # a server path the visitor did not send themselves
                    if any(p in text and p not in sent for p in server_paths(app)):
                        leaked.append((fn["id"], name, text[:200]))
        assert_still_serving(app, probe)
    assert called > 50
    assert not leaked, leaked[:5]


# ================================================================ rows that changed shared state before (run last)

def test_row_no_server_path_in_any_message(app, probe):
    """Hole: the training-finished and activate messages, the Model tab's weights line and the
    Mistakes note showed server paths. Every no-input handler (tabs, banner) and a short run."""
    session = app.session()
    texts = []
    for fn in app.fns:
        if not fn["inputs"] and not re.search(r"start|stop", str(fn.get("api_name")), re.I):
            texts += session.call(fn["id"], []).texts()
    mistakes = [d for d in app.fns if {"dropdown", "radio"} <= set(app.types(d)) and "image" not in app.types(d)]
    for fn in mistakes:
        texts += session.call(fn["id"], app.defaults(fn)).texts()
    event = run_training(app, session, epochs=1)
    final = session.result(event)
    texts += final.texts()
    texts += activate_with(app, session, final).texts()
    assert_no_server_path(app, texts)
    assert not any(re.search(r"(?<![\w:/])/(tmp|work|home|root|srv|var)/", t) for t in texts), \
        [t for t in texts if re.search(r"(?<![\w:/])/(tmp|work|home|root|srv|var)/", t)][:3]


def test_row_a_card_from_other_weights_is_refused_on_activation(app, probe):
    """Hole: weights and card were not a pair (kill -9 between the writes left new weights beside
    an old card, loaded without complaint). Activation of the run must load the run's own folder
    and refuse a card that records other weights."""
    owner = app.session()
    event = run_training(app, owner, epochs=1)
    final = owner.result(event)
    assert final.success, final.error
    cards = sorted(app.runs_dir.glob("*/model.json"), key=lambda p: p.stat().st_mtime)
    card = json.loads(cards[-1].read_text())
    card["weights_sha256"] = "0" * 64  # as if the weights had been replaced after the card
    card["accuracy"] = {"test": {"plain": 0.99}}
    cards[-1].write_text(json.dumps(card))
    result = activate_with(app, owner, final)
    assert not result.success and "does not belong to" in result.error
    assert_still_serving(app, probe)


def test_row_an_uploaded_checkpoint_never_reaches_another_session(app, probe):
    """Hole 1: upload a valid checkpoint that always answers "truck", POST the activate handler's
    fn_index with its path from session B: every other session was then served it."""
    from cifar_s9.records.checkpoint import save_weights
    from cifar_s9.model.net import build_model

    truck = build_model("default").eval()
    with torch.no_grad():
        truck.head.classifier.bias.zero_()
        truck.head.classifier.bias[9] = 1000.0  # "truck", whatever the image
    tmp = app.runs_dir.parent / "truck.safetensors"
    save_weights(truck, tmp, {})
    path = app.upload(tmp.read_bytes(), "truck.safetensors")
    attacker = app.session()
    wide = app.runs_dir.parent / "wide.safetensors"  # the 7.8M-parameter teacher: 31 MB
    save_weights(build_model("wide").eval(), wide, {})
    with pytest.raises(Refused) as info:
        app.upload(wide.read_bytes(), "wide.safetensors")
    assert info.value.status == 413
    file_fns = [d for d in app.fns if "file" in app.types(d)] or app.fns
    for fn in file_fns:
        data = [file_payload(path, "truck.safetensors") if t in ("file", "state") else v
                for t, v in zip(app.types(fn), app.defaults(fn))]
        attacker.call(fn["id"], data)
    assert_still_serving(app, probe)
