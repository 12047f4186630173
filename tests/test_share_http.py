"""Issue 28 over raw HTTP, as a page (or anyone) speaks to the app: `queue/join` with a chosen
session_hash and the page's query string on its URL, then the SSE stream.

Part 2 ("share what I see"): the page-load handlers of the lab and the Experiments tab read the
query and set the controls; hostile query strings (out of range, not numbers, repeated, huge,
broken percent-escapes, unknown names, markup) never fail the page load: the answer succeeds,
changes no control and says why in one escaped line. The share handler's link takes its base
from the request, and a forged Host header gives a relative link, never markup.

Part 3 ("take a run home"): the Train tab's download handler serves the zip of the caller's own
finished run only; another session, or hostile data in place of its input, gets no file, and
the run's folder itself is never served (only Gradio's copy in its cache).
"""
from __future__ import annotations

import json
import uuid

import httpx
import pytest
from synthetic import free_port
from waiting import HANG_S, SLOW_TEST_S

pytestmark = [pytest.mark.slow, pytest.mark.timeout(SLOW_TEST_S)]


@pytest.fixture(scope="module")
def server(weights_path, tmp_path_factory):
    import app
    from cifar_s9.data.app_data import TrainingData
    from synthetic import make_split
    ctx = app.configure(weights=weights_path, runs_dir=tmp_path_factory.mktemp("runs"))
    ctx.jobs.load_data = lambda: TrainingData(make_split(64), make_split(20, seed=1), "synthetic", False)
    options = {**app.launch_options(), "server_name": "127.0.0.1", "server_port": free_port(),
               "prevent_thread_lock": True, "quiet": True}
    app.demo.queue(**app.QUEUE).launch(**options)
    try:
        yield app, ctx, app.demo.local_url.rstrip("/")
    finally:
        app.demo.close()


def fn_index(app, name: str, module: str) -> int:
    """The (first) event whose handler is `name` defined in `module` (ui/augment_lab.py, ...)."""
    found = [i for i, d in app.demo.fns.items()
             if getattr(d.fn, "__name__", "") == name and getattr(d.fn, "__module__", "").endswith(module)]
    assert found, (name, module)
    return found[0]


class Page:
    """One browser session: what its calls carry (the page's query string, a Host header)."""

    def __init__(self, base: str):
        self.base, self.hash = base, uuid.uuid4().hex[:11]

    def call(self, fn: int, data: list, query: str = "", headers: dict | None = None):
        """(success, output data or error) of event `fn`, sent with `query` on the join URL."""
        with httpx.Client(base_url=self.base, timeout=HANG_S) as http:
            url = "/gradio_api/queue/join" + (f"?{query}" if query else "")
            r = http.post(url, json={"data": data, "fn_index": fn, "session_hash": self.hash,
                                     "event_data": None}, headers=headers or {})
            assert r.status_code == 200, r.text
            event_id = r.json()["event_id"]
            with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.hash}) as s:
                for line in s.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    msg = json.loads(line[5:])
                    if msg.get("event_id") != event_id:
                        continue
                    if msg.get("msg") == "process_completed":
                        out = msg.get("output") or {}
                        return (True, out["data"]) if msg.get("success") else (False, out.get("error"))
                    if msg.get("msg") == "unexpected_error":
                        return False, msg.get("message")
        raise AssertionError("the stream ended without an answer")


def is_skip(value) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and set(value) <= {"__type__"}


def lab_fns(app):
    return fn_index(app, "open_link", "augment_lab"), fn_index(app, "share", "augment_lab")


def test_row_a_link_sets_the_lab_over_http_and_the_share_link_follows_the_session(server):
    app, ctx, base = server
    open_link, share = lab_fns(app)
    page = Page(base)
    ok, out = page.call(open_link, [None], "tab=augment&flip_p=0.25&holes_min=2&holes_max=4&n=5&seed=9")
    assert ok, out
    from cifar_s9.app.lab import AUG_FIELDS
    tab, *controls, n, seed, note, _session = out
    by_name = dict(zip(AUG_FIELDS, controls))
    assert tab["selected"] == "augment" and n == 5 and seed == 9 and note.startswith("🔗")
    assert by_name["flip_p"] == 0.25 and by_name["holes_max"]["value"] == 4 and by_name["holes_max"]["minimum"] == 2
    # the session now holds the link's settings: its share link says so (base: this request's host)
    ok, (link, json_file) = page.call(share, [None, 5, 9], "tab=augment&flip_p=0.25")
    assert ok, link
    assert link == f"{base}/?tab=augment&flip_p=0.25&holes_min=2&holes_max=4&n=5&seed=9"
    with httpx.Client(base_url=base, timeout=HANG_S) as http:
        pipeline = http.get(json_file["url"]).json()  # the download, served from Gradio's cache
    assert pipeline["transform"]["transforms"][0] == {"__class_fullname__": "HorizontalFlip", "p": 0.25}
    # a bystander session keeps the defaults
    ok, (other, _) = Page(base).call(share, [None, 11, 0])
    assert ok and other == f"{base}/?tab=augment"


HOSTILE_QUERIES = [
    "flip_p=2", "flip_p=-1", "flip_p=nan", "flip_p=inf", "rotate_limit=1e309", "flip_p=half",
    "flip_p=", "flip_p", "holes_max=2.5", "holes_min=9&holes_max=3", "flip_p=0.1&flip_p=0.9",
    "flip_p=%ZZ", "flip_p=%00", "flip_p=%E2%80%AE1", "border_mode=%3Cscript%3Ealert(1)%3C/script%3E",
    "tab=../../etc/passwd", "n=0", "n=65", "seed=-1", "seed=99999999999999999999",
    "flip_p=" + "9" * 3000, "&".join(f"k{i}=1" for i in range(200)), "&&&===&", "a=b=c",
    "question=%3Cimg%20src=x%3E&tab=experiments", "budget=1e999&tab=experiments",
    "repeats=99&tab=experiments", "budget_mode=hours", "subset=-5", "exp_seed=x",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=range(len(HOSTILE_QUERIES)))
def test_row_a_hostile_query_never_fails_the_page_load(server, query):
    """Each page-load handler answers (success), changes no control when it refuses, and its
    note is one escaped line; the page's other load handlers are not disturbed either."""
    app, _ctx, base = server
    page = Page(base)
    lab_open, _ = lab_fns(app)
    exp_open = fn_index(app, "open_link", "experiments")
    for fn, data in ((lab_open, [None]), (exp_open, [])):
        ok, out = page.call(fn, data, query)
        assert ok, (query, out)
        note = out[-2]  # (tab, controls..., note, session) and (tab, form..., note, current)
        if isinstance(note, str) and note.startswith("⚠️"):
            assert is_skip(out[0]) or out[0].get("selected") in ("augment", "experiments")  # it opens to say why
            assert all(is_skip(v) for v in out[1:-2]) and (is_skip(out[-1]) or out[-1] is None), (query, out)
            assert "\n" not in note and len(note) < 400
        else:
            assert is_skip(note) or note.startswith("🔗"), (query, out)
            note = "" if is_skip(note) else note
        assert "<script" not in note.replace("\\<", "") and "<img" not in note.replace("\\<", "")
        assert "Traceback" not in json.dumps(out)


def test_row_a_forged_host_header_gives_a_relative_link(server):
    app, _ctx, base = server
    _, share = lab_fns(app)
    # (a port that is not a number, "h:x", is left out: Gradio's own get_root_url raises on it
    # before any handler runs, and that caller's event never completes; only its own)
    forged = [{"x-forwarded-host": h} for h in ('evil"><script>alert(1)</script>', "a b", "x" * 300,
                                                  "evil.example/<b>")] + [{"x-forwarded-proto": "javascript"}]
    for headers in forged:
        ok, out = Page(base).call(share, [None, 11, 0], headers=headers)
        assert ok, out
        assert out[0] == "?tab=augment", (headers, out[0])
    ok, out = Page(base).call(share, [None, 11, 0], headers={"x-forwarded-host": "lab.example.org",
                                                             "x-forwarded-proto": "https"})
    assert ok and out[0] == "https://lab.example.org/?tab=augment"


def test_row_share_handlers_refuse_hostile_inputs_cleanly(server):
    app, _ctx, base = server
    _, share = lab_fns(app)
    exp_share = fn_index(app, "share", "experiments")
    page = Page(base)
    # no link while n, the seed or the form is invalid (or Gradio's own Number refuses the value
    # before the handler runs: a clean error); never a server fault, and the next call works
    for n, seed in ((1e308, 0), ("9" * 600_000, 0), (-(2**63), "x"), ([[["deep"]]], {"path": 5})):
        ok, out = page.call(share, [None, n, seed])
        assert (ok and is_skip(out[0])) or (not ok and "Server error" not in str(out)), (n, seed, out)
    for form in (["no-dropout", "minutes", "nan", 1000, 0, 1], ["<b>", "x", None, None, None, None],
                 ["no-dropout", "epochs", 1e308, -1, 2**70, 9], ["../../etc/passwd"] * 6):
        ok, out = page.call(exp_share, [*form, None])
        assert (ok and is_skip(out[0])) or (not ok and "Server error" not in str(out)), (form, out)
    ok, out = page.call(share, [None, 11, 0])
    assert ok and out[0] == f"{base}/?tab=augment"
    ok, out = page.call(exp_share, ["no-dropout", "minutes", 3, 1000, 0, 1, None])
    assert ok and out[0].startswith(f"{base}/?tab=experiments&question=no-dropout")


# ---------------------------------------------------------------- part 3: the run's zip

def test_row_only_the_runs_own_session_downloads_its_zip(server, tmp_path):
    import zipfile
    app, ctx, base = server
    start, bundle = fn_index(app, "start", "ui.train"), fn_index(app, "bundle", "ui.train")
    owner, stranger = Page(base), Page(base)
    ok, out = owner.call(bundle, [None])
    assert ok and out[0]["value"] is None and out[0]["interactive"] is False  # no run yet
    ok, out = owner.call(start, ["default", 1, 0.05, 32, 32, None])
    assert ok and "finished 1 epochs" in out[0], out
    ok, out = owner.call(bundle, [None])
    assert ok and out[0]["interactive"] is True, out
    served = out[0]["value"]
    assert served["orig_name"].startswith("cifar_s9-run-") and served["orig_name"].endswith(".zip")
    assert str(ctx.jobs.runs_dir) not in served["path"]  # Gradio's copy in its cache, not the run's folder
    with httpx.Client(base_url=base, timeout=HANG_S) as http:
        r = http.get(served["url"])
        assert r.status_code == 200
        (tmp_path / "run.zip").write_bytes(r.content)
        with zipfile.ZipFile(tmp_path / "run.zip") as zf:
            assert "evaluate.py" in zf.namelist() and "model.safetensors" in zf.namelist()
        # the run's folder is never served, by any spelling of its path
        original = next(ctx.jobs.runs_dir.glob("*/cifar_s9-run-*.zip"))
        for path in (str(original), str(original.relative_to("/")), f"{served['path']}/../../{original.name}"):
            assert http.get(f"/gradio_api/file={path}").status_code in (400, 403, 404), path
    # another session, with any data in place of the session: no file
    for data in ([None], ["../../etc/passwd"], [{"run": original.parent.name}],
                 [{"path": str(original), "meta": {"_type": "gradio.FileData"}}], ["9" * 50_000]):
        ok, out = stranger.call(bundle, data)
        assert ok and out[0]["value"] is None and out[0]["interactive"] is False, (data, out)
        assert str(ctx.jobs.runs_dir) not in json.dumps(out)
