"""The Experiments tab: the slot it shares with the Train tab, owners, hostile UI values, the
handlers as plain functions, and a raw-HTTP hostile call per endpoint."""
from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest
from rawhttp import fn_indices, join_and_wait
from synthetic import free_port, make_split
from waiting import HANG_S, SLOW_TEST_S, wait_until

from cifar_s9.app import experiment_view as view
from cifar_s9 import paths
from cifar_s9.experiments import tracker
from cifar_s9.data.augment import AugmentConfig
from cifar_s9.app.experiment_jobs import Experiments, check_app_budget
from cifar_s9.experiments.runner import ExperimentData, no_dropout_question
from cifar_s9.app.jobs import Busy, NotOwner, TrainingJobs, TrainRequest
from cifar_s9.train.recipes import LAB_TRAIN
from cifar_s9.data.app_data import TrainingData
from cifar_s9.train.trainer import TrainConfig

# tests here wait for real training on a possibly busy machine: for the event, never a fixed time
pytestmark = pytest.mark.timeout(SLOW_TEST_S)

TINY = dict(train=replace(LAB_TRAIN, batch_size=16, threads=1), subset=32, epochs=1, minutes=None)


def tiny_data() -> ExperimentData:
    return ExperimentData(make_split(96), make_split(20, seed=1), "synthetic", True)


@pytest.fixture
def slot(tmp_path):
    jobs = TrainingJobs(tmp_path / "runs", lambda: TrainingData(make_split(48), make_split(20, seed=1),
                                                                 "synthetic", True))
    return jobs, Experiments(jobs, tiny_data)


def wait_done(job, timeout=HANG_S):
    end = time.monotonic() + timeout
    while not job.snapshot().finished and time.monotonic() < end:
        job.wait(-1, 0.5)
    assert job.snapshot().finished, f"the job did not finish in {timeout:.0f} s"


def test_an_experiment_holds_the_one_training_slot(slot):
    jobs, experiments = slot
    job = experiments.start(no_dropout_question(AugmentConfig(), **TINY), "alice")
    with pytest.raises(Busy):
        jobs.start(TrainRequest(train=TrainConfig(epochs=1, batch_size=16, subset=32)), "bob")
    with pytest.raises(Busy):
        experiments.start(no_dropout_question(AugmentConfig(), **TINY), "bob")
    note = experiments.slot_note("bob")  # the slot's one status line, as the Train tab shows it
    assert "another visitor" in note and "experiment" in note and " of 2 runs done" in note
    wait_done(job)
    snap = job.snapshot()
    assert snap.state == "done" and [q["state"] for q in snap.queue] == ["done", "done"]
    assert set(snap.curves) == {"no Coarse Dropout (seed 0)", "current settings (seed 0)"}
    assert snap.result.complete and not jobs.busy  # released
    assert "slot free" in experiments.slot_note("bob")
    # the arms are in the tracker, visible to their owner only
    mine = {r.config.get("arm") for r in tracker.visible_runs("alice")}
    assert {"no Coarse Dropout", "current settings"} <= mine
    assert not any(r.config.get("owner") == tracker.owner_tag("alice") for r in tracker.visible_runs("bob"))


def test_only_the_owner_can_stop_an_experiment(slot):
    _, experiments = slot
    job = experiments.start(no_dropout_question(AugmentConfig(), **{**TINY, "epochs": 3}), "alice")
    with pytest.raises(NotOwner):
        experiments.stop("bob")
    assert experiments.stop("alice")
    wait_done(job)
    assert job.snapshot().state in ("stopped", "done")
    assert experiments.stop("alice") is False  # nothing running any more


def test_app_budget_limits():
    with pytest.raises(ValueError, match="60"):
        check_app_budget(no_dropout_question(AugmentConfig(), minutes=20.0, repeats=2))
    with pytest.raises(ValueError, match="200"):
        check_app_budget(no_dropout_question(AugmentConfig(), epochs=150, minutes=None))
    assert check_app_budget(no_dropout_question(AugmentConfig(), minutes=3.0)).minutes == 3.0


def test_a_train_tab_run_is_tracked_with_its_owner(slot):
    jobs, _ = slot
    job = jobs.start(TrainRequest(train=TrainConfig(epochs=1, batch_size=16, subset=32, threads=1),
                                  eval_images=10), "carol")
    wait_done(job)
    run = next(r for r in tracker.visible_runs("carol") if r.config.get("owner") == tracker.owner_tag("carol"))
    assert run.config["source"] == "app" and run.final["epochs"] == 1 and run.checkpoint_exists
    assert tracker.owner_tag("carol") != "carol"  # the session id itself is never stored


GOOD = dict(question="no-dropout", current_aug=None, budget_mode="epochs", budget=2, subset=100, seed=0, repeats=1)


@pytest.mark.parametrize("change, message", [
    ({"question": "rm -rf"}, "question"),
    ({"question": None}, "question"),
    ({"budget_mode": "hours"}, "budget"),
    ({"budget": math.nan}, "epochs per arm"),
    ({"budget": "ten"}, "epochs per arm"),
    ({"budget": 2.5}, "whole number"),
    ({"budget": 10**9}, "epochs per arm"),
    ({"budget_mode": "minutes", "budget": math.inf}, "minutes"),
    ({"budget_mode": "minutes", "budget": -1}, "minutes must be"),
    ({"subset": 0}, "training images"),
    ({"subset": 10**12}, "training images"),
    ({"seed": -1}, "seed"),
    ({"repeats": 99}, "seeds per arm"),
    ({"current_aug": "not a dict"}, "JSON object"),
    ({"current_aug": {"dropout_p": 7}}, "dropout_p"),
    ({"current_aug": {"holes_max": "lots"}}, "holes_max"),
])
def test_hostile_ui_values_are_refused_with_the_field_named(change, message):
    with pytest.raises(ValueError, match=message):
        view.config_from_ui(**{**GOOD, **change})


def test_good_ui_values_make_the_question():
    cfg = view.config_from_ui(**{**GOOD, "current_aug": {"dropout_p": 0.3}})
    assert cfg.arms[1].aug.dropout_p == 0.3 and cfg.arms[0].aug.dropout_p == 0.0 and cfg.epochs == 2


def test_curves_figure_overlays_arms_with_one_colour_each():
    curves = {"A (seed 0)": {"epoch": [1, 2], "train_loss": [2.0, 1.5], "val_acc": [0.2, None]},
              "A (seed 1)": {"epoch": [1], "train_loss": [2.1], "val_acc": [0.25]},
              "B <script> (seed 0)": {"epoch": [1, 2], "train_loss": [2.2, 1.4], "val_acc": [0.3, 0.4]}}
    fig = view.curves_figure(curves)
    assert len(fig.data) == 6
    assert fig.data[0].line.color == fig.data[2].line.color != fig.data[4].line.color
    assert [t.showlegend for t in fig.data] == [True, False, False, False, True, False]
    assert list(fig.data[1].y) == [0.2]  # missing points are dropped, not drawn as 0
    assert "<script>" not in json.dumps(fig.to_plotly_json(), default=str)


def _request(session: str):
    return SimpleNamespace(session_hash=session)


def test_handlers_as_plain_functions(tmp_path):
    from cifar_s9.app.session import Session
    from cifar_s9.ui.experiments import ExperimentHandlers

    jobs = TrainingJobs(tmp_path / "runs", lambda: None)
    h = ExperimentHandlers(SimpleNamespace(jobs=jobs, experiments=Experiments(jobs, tiny_data)))
    status = h.status(None, _request("dave"))
    assert "No experiment from you yet" in status[0] and status[-1] == -1
    with pytest.raises(gr.Error, match="epochs per arm"):
        h.start("no-dropout", "epochs", "NaN", 64, 0, 1, Session(), _request("dave"))
    assert not jobs.busy
    lab = Session(aug=AugmentConfig(dropout_p=0.9))  # the visitor's lab settings are "current"
    assert "⏳" in h.start("no-dropout", "epochs", 1, 64, 0, 1, lab, _request("dave"))
    assert h.manager().mine("dave").config.arms[1].aug.dropout_p == 0.9
    with pytest.raises(gr.Error, match="busy"):
        h.start("no-dropout", "epochs", 1, 64, 0, 1, Session(), _request("erin"))
    with pytest.raises(gr.Error, match="another visitor"):
        h.stop(_request("erin"))
    wait_done(h.manager().mine("dave"))
    text, queue, fig, table, words, version = h.status(None, _request("dave"))
    assert len(queue) == 2 and [r[0] for r in table] == ["no Coarse Dropout", "current settings"]
    assert "mean nothing" in words and len(fig.data) == 4
    again = h.status(version, _request("dave"))
    assert isinstance(again[2], type(gr.skip()))  # nothing new: not redrawn
    # another visitor sees neither the result nor the runs
    other = h.status(None, _request("erin"))
    assert other[1] == [] and other[3] == []
    rows, *_ = h.runs(_request("dave"))
    names = [r[0] for r in rows if r[1] in ("no Coarse Dropout", "current settings")]
    assert len(names) >= 2
    assert len(h.overlay(names[0], names[1], _request("dave")).data) == 4
    with pytest.raises(gr.Error, match="choose two runs"):
        h.overlay(names[0], names[1], _request("erin"))
    with pytest.raises(gr.Error, match="choose two runs"):
        h.overlay("../../etc/passwd", None, _request("dave"))


# ---------------------------------------------------------------- raw HTTP, hidden handlers too

@pytest.fixture(scope="module")
def served(weights_path, tmp_path_factory):
    import os

    import app

    os.environ.pop("CIFAR_S9_DATA_DIR", None)  # experiments run on the bundled sample
    app.configure(weights=weights_path, runs_dir=tmp_path_factory.mktemp("runs"))
    options = {**app.launch_options(), "server_name": "127.0.0.1", "server_port": free_port(),
               "prevent_thread_lock": True, "quiet": True}
    app.demo.queue(**app.QUEUE).launch(**options)
    try:
        yield app.demo.local_url.rstrip("/")
    finally:
        app.demo.close()


def raw_call(base: str, api_name: str, data: list, session: str = "hostile0001") -> dict:
    """The final message of `api_name` called over raw queue/join (fn_index from /config)."""
    with httpx.Client(base_url=base, timeout=HANG_S) as http:
        return join_and_wait(http, fn_indices(http)[api_name], data, session)


HOSTILE = {
    # question, budget mode, budget, subset, seed, repeats, session (state)
    # (an epoch count beyond gr.Number's maximum is refused by Gradio itself, before our handler)
    "experiment_start": [["no-dropout", "epochs", 2.5, 64, 0, 1, None], "whole number"],
    "experiment_status": [[{"__class__": "x"}], None],
    "experiment_stop": [[], None],
    "runs": [[], None],
    # Gradio's dropdown refuses a name outside its choices; the handler's own check (another
    # visitor's run, a made-up name) is in test_handlers_as_plain_functions
    "runs_overlay": [["../../../../etc/passwd", {"a": 1}], "not in the list of choices"],
}


@pytest.mark.slow
@pytest.mark.parametrize("api_name", sorted(HOSTILE))
def test_raw_http_hostile_input_per_endpoint(served, api_name):
    data, message = HOSTILE[api_name]
    msg = raw_call(served, api_name, data)
    if message is None:  # harmless for these endpoints: answers for this session only
        assert msg["success"], msg
    else:
        assert not msg["success"] and message in json.dumps(msg["output"]), msg
    # no server path leaks, and the app keeps serving
    text = json.dumps(msg)
    assert "/tmp/" not in text and str(paths.HOME) not in text
    assert httpx.get(f"{served}/config").status_code == 200


@pytest.mark.slow
def test_raw_http_start_from_another_session_cannot_stop_it(served):
    started = raw_call(served, "experiment_start", ["no-dropout", "epochs", 2, 64, 0, 1, None], "owner00001")
    assert started["success"], started
    refused = raw_call(served, "experiment_stop", [], "intruder001")
    assert not refused["success"] and "another visitor" in json.dumps(refused["output"])
    assert raw_call(served, "experiment_stop", [], "owner00001")["success"]
    # let the stopped experiment end before the server closes: a training thread still running
    # at interpreter exit aborts the process
    wait_until(lambda: "slot free" in json.dumps(raw_call(served, "experiment_status", [None],
                                                              "owner00001")["output"]),
               "the stopped experiment never released the slot", every=0.5)


# ---------------------------------------------------------------- the tab's texts (issue 26.5)

def test_current_settings_say_whether_coarse_dropout_is_on():
    on = view.settings_summary(AugmentConfig())
    assert "Coarse Dropout **on**" in on and "p = 0.5" in on and "8x8 px" in on
    off = view.settings_summary(AugmentConfig(dropout_p=0.0))
    assert "Coarse Dropout **off**" in off


@pytest.mark.parametrize("mode, budget, repeats, expected", [
    ("minutes", 3, 1, "about **6 min** of training"),
    ("minutes", 5, 2, "about **20 min**"),
    ("epochs", 10, 2, "40 epochs in all"),
    ("minutes", math.nan, 1, "minutes per arm must be"),
    ("epochs", "ten", 1, "epochs per arm"),
    ("minutes", 3, 99, "seeds per arm"),
    ("minutes", -1, 1, "must be positive"),
])
def test_the_plan_states_the_total_before_run(mode, budget, repeats, expected):
    assert expected in view.plan_text(mode, budget, repeats, limit_s=15 * 60)


def test_the_plan_warns_when_it_exceeds_the_slots_limit():
    assert "more than the shared slot's limit of 15 min" in view.plan_text("minutes", 5, 2, limit_s=15 * 60)
    assert "limit" not in view.plan_text("minutes", 3, 1, limit_s=15 * 60)
    assert view.plan_text("hours", 3, 1) == "" and "<" not in view.plan_text("minutes", "<b>", 1)


def test_the_result_explains_its_tests_and_warns_first(slot):
    _, experiments = slot
    job = experiments.start(no_dropout_question(AugmentConfig(), **TINY), "frank")
    wait_done(job)
    words = view.result_markdown(job.snapshot().result)
    assert words.startswith("⚠️") and "McNemar's test looks only at the images exactly one arm" in words
    assert "mid-p" in words and "below" not in words.split("\n\n")[0]


def test_an_experiment_outlives_a_reload_and_its_token_goes_to_its_owner_only(slot):
    from cifar_s9.ui.experiments import ExperimentHandlers

    jobs, experiments = slot
    h = ExperimentHandlers(SimpleNamespace(jobs=jobs, experiments=experiments))
    job = experiments.start(no_dropout_question(AugmentConfig(), **{**TINY, "epochs": 3}), "grace")
    assert h.token(_request("grace")) == job.token
    assert isinstance(h.token(_request("heidi")), type(gr.skip()))  # never another session's token
    assert jobs.attach("not-" + job.token, "heidi") is None and experiments.mine("heidi") is None
    assert jobs.attach(job.token, "grace-reloaded") is job  # the same browser after a reload
    assert experiments.mine("grace-reloaded") is job and "**your** A/B" in experiments.slot_note("grace-reloaded")
    with pytest.raises(NotOwner):
        experiments.stop("heidi")
    assert experiments.stop("grace-reloaded")
    wait_done(job)


# ---------------------------------------------------------------- the measured grid (issue 28.4)

def test_the_grid_handler_shows_words_and_a_heatmap_only_when_measured(tmp_path):
    from cifar_s9.experiments import grid as g
    from cifar_s9.ui.experiments import ExperimentHandlers

    ctx = SimpleNamespace(cutout_grid=tmp_path / "grid.json")
    text, plot = ExperimentHandlers(ctx).grid()
    assert "not measured yet" in text and plot.visible is False and str(tmp_path) not in text
    off = {"cell": "off", "holes": 0, "size": 0, "epochs": 40, "train_images": 43_000, "eval_images": 8,
           "accuracy": 0.5, "ci": [0.2, 0.8], "correct_packbits_hex": "f0"}
    on = {**off, "cell": "1x8px", "holes": 1, "size": 8, "accuracy": 0.75, "correct_packbits_hex": "fc"}
    ctx.cutout_grid.write_text(json.dumps(g.summarize([off, on])))
    text, plot = ExperimentHandlers(ctx).grid()
    assert "1 hole of 8 px gave +25.0 points" in text and plot.visible is True
    assert plot.value is not None


def grid_fn_index(http: httpx.Client) -> int:
    """The hidden handler that fills the grid's words (elem_id grid_words), from /config."""
    config = http.get("/config").json()
    words = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "grid_words")
    return next(d["id"] for d in config["dependencies"] if words in d["outputs"])


@pytest.mark.slow
@pytest.mark.parametrize("data", [[], ["../../etc/passwd"], [{"path": "/etc/passwd"}] * 3, ["x" * 10_000]])
def test_raw_http_the_grid_handler_takes_nothing_from_the_request(served, data):
    import time

    with httpx.Client(base_url=served, timeout=HANG_S) as http:
        fn = grid_fn_index(http)
        cpu0 = time.process_time()
        msg = join_and_wait(http, fn, data, "gridprobe01")
        cpu = time.process_time() - cpu0  # the app runs in this process: server and client
        other = join_and_wait(http, fn, [], "gridprobe02")  # a second session sees the same
    text = json.dumps(msg)
    assert msg["success"], msg  # it has no inputs: whatever is sent changes nothing
    assert other["output"]["data"][0] == msg["output"]["data"][0]
    assert cpu < 5.0, cpu  # a small file read and a figure: milliseconds, bounded by MAX_BYTES
    # the committed grid file's state: absent, partly measured, or measured
    assert any(state in text for state in ("not measured yet", "only partly measured", "gave")), text[:300]
    assert "/tmp/" not in text and str(paths.HOME) not in text and "passwd" not in text
    assert httpx.get(f"{served}/config").status_code == 200
