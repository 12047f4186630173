"""Two visitors over HTTP: what one session does (activate a trained run, restore) never changes
what another sees, and nobody but its owner can stop a run. Spoken as a browser does (raw
`queue/join` + the SSE stream, with a chosen `session_hash`) and through gradio_client."""
from __future__ import annotations

import json
import threading
import uuid

import httpx
import numpy as np
import pytest
from synthetic import free_port
from waiting import HANG_S, SLOW_TEST_S, wait_until

from cifar_s9.data.app_data import TrainingData
from cifar_s9.data.cifar import Split

pytestmark = [pytest.mark.slow, pytest.mark.timeout(SLOW_TEST_S)]  # waits are for events (issue 23)
CAT = "assets/examples/cat.jpg"


@pytest.fixture(scope="module")
def server(weights_path, tmp_path_factory):
    import app
    from cifar_s9.paths import DEFAULT_WEIGHTS
    shipped = DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.exists() else weights_path  # the real one: ~90%
    ctx = app.configure(weights=shipped, runs_dir=tmp_path_factory.mktemp("runs"))
    rng = np.random.default_rng(0)
    imgs, labels = rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 48)
    gate = threading.Event()
    gate.set()

    def tiny():  # a few seconds of training on noise; the gate holds a run "in progress"
        gate.wait(HANG_S)  # a signal: the test opens it (and always does, in a finally)
        return TrainingData(Split(imgs[:32], labels[:32], "tr"), Split(imgs[32:], labels[32:], "te"), "tiny", True)
    ctx.jobs.load_data = tiny
    options = {**app.launch_options(), "server_name": "127.0.0.1", "server_port": free_port(),
               "prevent_thread_lock": True, "quiet": True}
    app.demo.queue(**app.QUEUE).launch(**options)
    try:
        yield app, app.demo.local_url.rstrip("/"), gate
    finally:
        app.demo.close()


def fn_index(app, name: str, owner: str) -> int:
    """The event whose handler is `owner.name` (e.g. TrainHandlers.start): what the page calls."""
    found = [i for i, d in app.demo.fns.items()
             if getattr(d.fn, "__name__", "") == name and type(getattr(d.fn, "__self__", None)).__name__ == owner]
    assert found, (name, owner)
    return found[0]


class Visitor:
    """One browser session: its own session_hash, speaking queue/join and reading the SSE stream."""

    def __init__(self, base: str):
        self.base, self.hash = base, uuid.uuid4().hex[:11]

    def upload(self, path: str) -> dict:
        with open(path, "rb") as f:
            r = httpx.post(f"{self.base}/gradio_api/upload", files={"files": (path.split("/")[-1], f)},
                           timeout=HANG_S)
        r.raise_for_status()
        return {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}, "orig_name": "cat.jpg"}

    def join(self, fn: int, data: list) -> str:
        """Queue event `fn`; its messages arrive on this session's one SSE stream."""
        r = httpx.post(f"{self.base}/gradio_api/queue/join",
                       json={"data": data, "fn_index": fn, "session_hash": self.hash, "event_data": None},
                       timeout=HANG_S)
        r.raise_for_status()
        return r.json()["event_id"]

    def call(self, fn: int, data: list, timeout: float = HANG_S) -> tuple[bool, list | str]:
        """(success, output data or error message) of the last message of event `fn`."""
        event_id = self.join(fn, data)
        with httpx.stream("GET", f"{self.base}/gradio_api/queue/data", params={"session_hash": self.hash},
                          timeout=timeout) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("event_id") != event_id or msg.get("msg") != "process_completed":
                    continue
                out = msg.get("output") or {}
                return (True, out.get("data")) if msg.get("success") else (False, out.get("error") or "")
        raise AssertionError("the stream ended without a result")


def confidences(label_output) -> dict[str, float]:
    if isinstance(label_output, list):  # raw queue output: one value per output component
        (label_output,) = label_output
    return {c["label"]: round(c["confidence"], 5) for c in label_output["confidences"]}


def test_two_sessions_see_their_own_model(server):
    app, base, gate = server
    from cifar_s9.app.session import Session
    from cifar_s9.ui.classify import ClassifyHandlers
    shipped = {k: round(v, 5) for k, v in ClassifyHandlers(app.CTX).classify(CAT, 10, Session()).items()}
    classify = fn_index(app, "classify", "ClassifyHandlers")   # /classify: (image, top-k) + session
    start, activate = fn_index(app, "start", "TrainHandlers"), fn_index(app, "activate", "TrainHandlers")
    restore, stop = fn_index(app, "restore", "HeaderHandlers"), fn_index(app, "stop", "TrainHandlers")
    mistakes = fn_index(app, "view", "MistakesHandlers")
    a, b = Visitor(base), Visitor(base)
    image_a, image_b = a.upload(CAT), b.upload(CAT)

    ok, out = a.call(start, ["default", 1, 0.05, 32, 100, None])
    assert ok and "finished 1 epochs" in out[0], out
    ok, out = a.call(activate, [None])
    assert ok and "your model" in out[1], out
    ok, a_says = a.call(classify, [image_a, 10, None])
    ok_b, b_says = b.call(classify, [image_b, 10, None])
    assert ok and ok_b
    assert confidences(b_says) == shipped              # B: still the shipped model
    assert confidences(a_says) != shipped              # A: its trained run
    _, note_a = a.call(mistakes, ["", "", "most confident first", None])
    _, note_b = b.call(mistakes, ["", "", "most confident first", None])
    acc = app.CTX.evals.get(app.CTX.models.shipped, app.CTX.test_data().split).accuracy
    assert f"**Accuracy {acc:.2%}**" in note_b[0]                 # B: the shipped model's accuracy
    if acc > 0.5:  # with the real shipped weights, A's one-epoch network on noise is far worse
        assert f"**Accuracy {acc:.2%}**" not in note_a[0]

    # gradio_client is a third visitor: the shipped model, whatever A chose
    from gradio_client import Client, handle_file
    client = Client(base, verbose=False)
    assert confidences(client.predict(handle_file(CAT), 10, api_name="/classify")) == shipped

    ok, out = a.call(restore, [None])
    assert ok and "shipped model" in out[0]
    _, a_again = a.call(classify, [image_a, 10, None])
    assert confidences(a_again) == shipped

    # a run in progress can be stopped by its owner only (like a browser, one SSE stream per
    # session: A's start is only queued here; A's stop call below reads A's stream)
    gate.clear()
    try:
        a.join(start, ["default", 1, 0.05, 32, 100, None])
        wait_until(lambda: app.CTX.jobs.busy, "A's run never took the slot")
        ok, out = b.call(stop, [])
        assert ok and "another visitor" in out[0]
        assert not app.CTX.jobs.current.stop_event.is_set()  # B's request changed nothing
        ok, out = a.call(stop, [])
        assert ok and "Stopping" in out[0] and app.CTX.jobs.current.stop_event.is_set()
    finally:
        gate.set()
    app.CTX.jobs.current.thread.join(HANG_S)
    assert not app.CTX.jobs.busy and "nothing was saved" in app.CTX.jobs.current.snapshot().message


def test_the_train_tab_shows_an_experiment_in_the_slot_to_both_visitors(server):
    app, base, _ = server
    show = fn_index(app, "show", "TrainHandlers")  # opening the Train tab: the slot line
    a, b = Visitor(base), Visitor(base)
    assert app.CTX.jobs.acquire_slot(b.hash)  # B's A/B experiment holds the one slot
    try:
        ok_a, seen_by_a = a.call(show, [None])
        ok_b, seen_by_b = b.call(show, [None])
    finally:
        app.CTX.jobs.release_slot()
    assert ok_a and ok_b
    assert "busy" in seen_by_a[0] and "experiment" in seen_by_a[0] and "another visitor" in seen_by_a[0]
    assert "**your** A/B experiment" in seen_by_b[0]
    ok, free = a.call(show, [None])
    assert ok and "slot free" in free[0]


def first_output(visitor: Visitor, fn: int, data: list) -> list:
    """The first output event `fn` streams to `visitor`; then the stream closes, as when a page
    goes away (Gradio stops the event's generator: what it started must not depend on it)."""
    event_id = visitor.join(fn, data)
    with httpx.stream("GET", f"{visitor.base}/gradio_api/queue/data", params={"session_hash": visitor.hash},
                      timeout=HANG_S) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if msg.get("event_id") == event_id and msg.get("msg") in ("process_generating",
                                                                         "process_completed"):
                    assert msg.get("success", True), msg
                    return msg["output"]["data"]
    raise AssertionError("the stream ended without an output")


def test_forged_run_tokens_over_http_neither_extend_attach_nor_stop(server):
    """A run outlives its page; a reload (a new session with the browser's token) re-attaches;
    another session sending forged tokens to the heartbeat, attach and stop changes nothing."""
    app, base, gate = server
    start, attach = fn_index(app, "start", "TrainHandlers"), fn_index(app, "attach", "TrainHandlers")
    tick, stop = fn_index(app, "tick", "TrainHandlers"), fn_index(app, "stop", "TrainHandlers")
    a, b = Visitor(base), Visitor(base)
    gate.clear()
    try:
        token = first_output(a, start, ["default", 1, 0.05, 32, 100, None])[-1]  # A's page closes here (the token: the last output)
        job = app.CTX.jobs.current
        assert isinstance(token, str) and job.has_token(token) and app.CTX.jobs.busy
        seen = job.seen_at
        near = token[:-1] + ("A" if token[-1] != "A" else "B")
        for forged in [near, token.lower() if token.lower() != token else near, "", None, 7,
                       {"token": token[:8]}, [token[:8]], "x" * 20_000]:
            ok, out = b.call(tick, [forged])
            assert ok and "another visitor" in out[0], out
            ok, out = b.call(attach, [forged, None])
            assert ok and "another visitor" in out[4] and "⏳" not in json.dumps(out[:4]), out
            ok, out = b.call(stop, [])
            assert ok and "another visitor" in out[0], out
        assert job.seen_at == seen and job.owners == [a.hash] and not job.stop_event.is_set()
        assert token not in json.dumps(b.call(tick, [None])[1])  # nobody else is ever shown it

        ok, out = a.call(tick, [token])  # the owner's heartbeat does extend it
        assert ok and "**your** run" in out[0]
        assert job.seen_at > seen
        reloaded = Visitor(base)  # the same browser after a reload: a new session, the kept token
        out = first_output(reloaded, attach, [token, None])
        assert "⏳" in out[0] and "**your** run" in out[4], out
        assert reloaded.hash in job.owners
        ok, out = reloaded.call(stop, [])
        assert ok and "Stopping" in out[0] and job.stop_event.is_set()
    finally:
        gate.set()
    job.thread.join(HANG_S)
    assert not app.CTX.jobs.busy


def test_the_reference_design_over_http_changes_only_the_callers_session(server):
    """The header's 'Use the reference design' over raw queue/join: hostile data changes nothing
    but the caller's own model, repeated calls load it once, a second session keeps the shipped."""
    app, base, gate = server
    if app.CTX.reference is None:
        pytest.skip("weights/seed.safetensors is not in this checkout")
    use_reference = fn_index(app, "use_reference", "HeaderHandlers")
    classify = fn_index(app, "classify", "ClassifyHandlers")
    a, b = Visitor(base), Visitor(base)
    image_a, image_b = a.upload(CAT), b.upload(CAT)
    ok_b, shipped = b.call(classify, [image_b, 10, None])
    for hostile in ([None], ["../../etc/passwd"], [{"model": "x" * 10_000}], []):
        a.call(use_reference, hostile)  # the only input is the server-side session: junk is ignored or refused
    loaded = len(app.CTX.models)
    for _ in range(5):
        ok, out = a.call(use_reference, [None])
        assert ok and "reference design" in out[0], out
    assert len(app.CTX.models) == loaded  # the same file is one cached model, not five
    ok, a_says = a.call(classify, [image_a, 10, None])
    ok_b2, b_says = b.call(classify, [image_b, 10, None])
    assert ok and ok_b and ok_b2
    assert confidences(b_says) == confidences(shipped) and confidences(a_says) != confidences(shipped)
    assert str(app.CTX.reference.parent) not in json.dumps(out)  # the banner names the file, never its folder


def test_the_comparison_over_http_refuses_junk_and_changes_no_model(server):
    """Classify's 'Compare with the reference design' over raw queue/join: /compare and the page's
    own event. None is the default; wrong types, huge numbers and long text get one short readable
    error each; the reference is loaded once, never changed, and nobody's model choice moves."""
    app, base, _ = server
    if app.CTX.reference is None:
        pytest.skip("weights/seed.safetensors is not in this checkout")
    import torch
    compare = fn_index(app, "compare", "ClassifyHandlers")       # /compare: image + 5 settings + session
    page_view = fn_index(app, "view", "ClassifyHandlers")        # the page's classify of a new image
    compare_view = fn_index(app, "compare_view", "ClassifyHandlers")  # the page's comparison after it
    classify = fn_index(app, "classify", "ClassifyHandlers")
    a, b = Visitor(base), Visitor(base)
    image_a, image_b = a.upload(CAT), b.upload(CAT)
    _, shipped = b.call(classify, [image_b, 10, None])
    ok, out = a.call(compare, [image_a, None, None, None, None, None, None])  # every default
    assert ok and len(out) == 7, out
    assert "**Your model**" in out[1] and "**Reference design**" in out[4]
    assert [c["label"] for c in out[2]["confidences"]] == [c["label"] for c in shipped[0]["confidences"][:3]]
    reference = app.CTX.reference_model().model
    weights = {k: v.clone() for k, v in reference.state_dict().items()}
    loaded = len(app.CTX.models)
    good = [image_a, 3, "GradCAM", "C4", "predicted", 0.5, None]
    hostile = {1: ["3.5", 0, 11, 1e308, -(2**63), [3], {"k": 3}, True],
               2: ["Nope", 5, ["GradCAM"], "x" * 20_000],
               3: ["C9", "../../etc/passwd", 4, "C4" * 10_000],
               4: ["zebra", 99, -1, ["cat"], "9" * 600_000],
               5: ["half", 2, -0.1, 1e308, [0.5], {"o": 1}]}
    for i, values in hostile.items():
        for value in values:
            data = list(good)
            data[i] = value
            ok, out = a.call(compare, data)
            assert not ok and out, (i, str(value)[:40], str(out)[:200])
            assert str(app.CTX.reference.parent) not in out, (i, out[:200])
            # the app's own refusals are one short sentence (Gradio's dropdown check, before the
            # handler, quotes whatever it was sent)
            assert len(out) < 400 or "not in the list of choices" in out, (i, out[:200])
    ok, out = a.call(compare, [None, *good[1:]])
    assert not ok and "give an image" in out
    ok, _ = a.call(page_view, [image_a, 3, "GradCAM", "C4", "predicted", 0.5, None])
    assert ok
    for on in (True, "yes", None, 7):  # only the checkbox's True computes; junk hides the section
        ok, out = a.call(compare_view, [on, 3, "GradCAM", "C4", "predicted", 0.5, None])
        assert ok and out[0]["visible"] is (on is True), (on, out)
        if on is True:
            assert "**Reference design**" in out[5]
    assert len(app.CTX.models) == loaded  # the same shared network every time, not a copy per call
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in weights.items())
    ok_a, a_says = a.call(classify, [image_a, 10, None])
    ok_b, b_says = b.call(classify, [image_b, 10, None])
    assert ok_a and ok_b and confidences(a_says) == confidences(b_says) == confidences(shipped)


def test_which_map_to_trust_over_http_is_bounded_and_answers_for_the_callers_model(server):
    """/faithfulness over raw queue/join: over-budget plans and junk types are refused in words,
    a request beyond the view's seats is refused (not queued), and each session's answer carries
    the test-sample ranking of its own model; the served network keeps no hook."""
    app, base, gate = server
    from cifar_s9.analysis.gradcam import hooks_left
    trust = fn_index(app, "faithfulness", "InsideHandlers")
    classify = fn_index(app, "classify", "ClassifyHandlers")
    a, b = Visitor(base), Visitor(base)
    image_a, image_b = a.upload(CAT), b.upload(CAT)
    ok, shipped = b.call(classify, [image_b, 10, None])
    for hostile, words in ((["all", "C1,C2,C3,C4,C1.conv1,C2.conv1"], "45 maps; at most 40"),
                           (["9" * 5000, None], "at most 64"), ([["GradCAM"] * 1000, None], "at most 64"),
                           # the API's hidden text boxes turn other JSON into its text
                           ([{"$gt": ""}, None], "unknown method"), ([None, [["C4"]]], "unknown layer"),
                           (["GradCAM", "C4; rm -rf /"], "unknown layer"), ([1e308, -(2**63)], "unknown method")):
        ok, out = a.call(trust, [image_a, *hostile, None])
        assert not ok and words in out, (hostile[0] if len(str(hostile)) < 200 else "long", out)
    handlers = app.demo.fns[trust].fn.__self__  # the app's own seats, held here as two visitors would
    with handlers.trust_seats.taken(), handlers.trust_seats.taken():
        ok, out = a.call(trust, [image_a, "GradCAM", "C4", None])
        assert not ok and "being scored right now" in out, out
    ok, (words, data) = a.call(trust, [image_a, "GradCAM", "C4", None])
    assert ok and "Higher = removing the pixels" in words and len(data["ranking"]) == 4
    if app.CTX.reference is not None and data["sample"] is not None:  # the shipped ranking exists
        assert b.call(fn_index(app, "use_reference", "HeaderHandlers"), [None])[0]
        ok_b, (_, data_b) = b.call(trust, [image_b, "GradCAM", "C4", None])
        assert ok_b and data_b["sample"] is not None and data_b["sample"]["data"] == data["sample"]["data"]
        assert data_b["sample"]["ranking"] != data["sample"]["ranking"]  # the reference design's own
        ok, again = a.call(trust, [image_a, "GradCAM", "C4", None])
        assert ok and again[1]["sample"]["ranking"] == data["sample"]["ranking"]  # A: still the shipped
    ok, a_says = a.call(classify, [image_a, 10, None])
    assert ok and confidences(a_says) == confidences(shipped)
    assert hooks_left(app.CTX.models.shipped.model) == 0
