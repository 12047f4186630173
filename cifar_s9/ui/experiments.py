"""The Experiments tab: A/B runs of augmentation settings, compared honestly, from the app.

`tab(aug_state)` builds the tab inside the caller's `gr.Tabs()` and wires its events; the
handlers below are thin adapters over `cifar_s9.experiment_view` and `cifar_s9.experiment_jobs`
(plain functions, tested there). `configure(jobs, data_dir)` binds the tab to the app's one
training slot. Endpoints: /experiment_start, /experiment_status, /experiment_stop, /runs,
/runs_overlay.
"""
from __future__ import annotations

import gradio as gr

from .. import experiment_view as view
from ..experiment_jobs import Experiments
from ..experiments import LAB_TRAIN, experiment_data
from ..jobs import Busy, NotOwner, TrainingJobs

_EXPERIMENTS: Experiments | None = None
POLL_S = 2.0


def configure(jobs: TrainingJobs, data_dir: str | None = None) -> Experiments:
    """Bind the tab to the app's training slot (call again after the app's own configure)."""
    global _EXPERIMENTS
    _EXPERIMENTS = Experiments(jobs, lambda: experiment_data(data_dir))
    return _EXPERIMENTS


def _manager() -> Experiments:
    if _EXPERIMENTS is None:
        raise gr.Error("The Experiments tab is not configured in this app.")
    return _EXPERIMENTS


def _owner(request: gr.Request | None) -> str:
    return "local" if request is None or not request.session_hash else request.session_hash


# ---------------------------------------------------------------- handlers

def experiment_start(question, aug, budget_mode, budget, subset, seed, repeats,
                     request: gr.Request = None) -> str:
    """Start an A/B in the training slot; returns the status line (poll /experiment_status)."""
    manager = _manager()
    try:
        config = view.config_from_ui(question, aug, budget_mode, budget, subset, seed, repeats)
        job = manager.start(config, _owner(request))
    except Busy as exc:
        raise gr.Error(str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise gr.Error(f"Invalid experiment: {exc}") from None
    return view.status_markdown(job.snapshot(), manager.slot_note(job.owner))


def experiment_status(seen=None, request: gr.Request = None):
    """(status, queue rows, curves figure, result table rows, result text, version) of this
    visitor's latest experiment; another visitor's experiment shows only as a busy slot. The
    figure and table are rebuilt only when the experiment moved on since `seen`."""
    manager = _manager()
    owner = _owner(request)
    job = manager.mine(owner)
    note = manager.slot_note(owner)
    if job is None:
        return view.status_markdown(None, note), [], view.curves_figure({}), [], "", -1
    version = job.version
    snap = job.snapshot()
    if seen == version:
        return view.status_markdown(snap, note), gr.skip(), gr.skip(), gr.skip(), gr.skip(), version
    curves = view.result_curves(snap.result) if snap.result is not None else snap.curves
    return (view.status_markdown(snap, note), view.queue_rows(snap), view.curves_figure(curves),
            view.result_rows(snap.result), view.result_markdown(snap.result), version)


def experiment_stop(request: gr.Request = None) -> str:
    try:
        stopped = _manager().stop(_owner(request))
    except NotOwner as exc:
        raise gr.Error(str(exc)) from None
    return "Stopping after the current step." if stopped else "No experiment of yours is running."


def runs(request: gr.Request = None):
    rows = view.runs_rows(_owner(request))
    names = [r[0] for r in rows]
    return (rows, gr.Dropdown(choices=names, value=names[1] if len(names) > 1 else None),
            gr.Dropdown(choices=names, value=names[0] if names else None))


def runs_overlay(name_a, name_b, request: gr.Request = None):
    try:
        return view.overlay_figure(_owner(request), name_a, name_b)
    except (ValueError, KeyError) as exc:
        raise gr.Error(str(exc)) from None


# ---------------------------------------------------------------- layout

def tab(aug_state: gr.State) -> None:
    with gr.Tab("Experiments", id="experiments") as experiments_tab:
        gr.Markdown("Does an augmentation setting help? Train two arms one after another with the "
                    "same budget, score both on the same held-back images, and read the difference "
                    "with its 95% interval and McNemar's paired test. Arms use the settings you last "
                    "sent from the Augmentation lab.")
        with gr.Row():
            question = gr.Radio([(label, key) for key, label in view.QUESTION_LABELS.items()],
                                value="no-dropout", label="question")
        with gr.Row():
            budget_mode = gr.Radio(list(view.BUDGET_MODES), value="minutes", label="budget per arm in")
            budget = gr.Number(3, label="minutes (or epochs) per arm", minimum=0.1, maximum=200)
            subset = gr.Number(LAB_TRAIN.subset, label="training images", precision=0, minimum=1)
            seed = gr.Number(0, label="seed", precision=0, minimum=0)
            repeats = gr.Slider(1, 5, 1, step=1, label="seeds per arm")
        with gr.Row():
            start = gr.Button("Run the A/B", variant="primary")
            stop = gr.Button("Stop my experiment", variant="stop")
        status = gr.Markdown()
        queue = gr.Dataframe(headers=["#", "arm", "seed", "state"], label="queue", interactive=False,
                             wrap=True)
        curves = gr.Plot(label="curves, both arms")
        table = gr.Dataframe(headers=view.TABLE_HEADERS, label="result", interactive=False, wrap=True)
        words = gr.Markdown()
        with gr.Accordion("Past runs (run tracker)", open=False):
            runs_table = gr.Dataframe(headers=view.RUN_HEADERS, label="past runs", interactive=False, wrap=True)
            with gr.Row():
                run_a = gr.Dropdown([], label="run A")
                run_b = gr.Dropdown([], label="run B")
                refresh = gr.Button("Refresh")
                overlay_btn = gr.Button("Overlay")
            overlay = gr.Plot(label="two past runs")
        timer = gr.Timer(POLL_S)
        seen = gr.State(None)  # the experiment version this session last drew

        inputs = [question, aug_state, budget_mode, budget, subset, seed, repeats]
        outputs = [status, queue, curves, table, words]
        start.click(experiment_start, inputs, [status], api_name="experiment_start",
                    concurrency_limit=1)
        timer.tick(experiment_status, [seen], [*outputs, seen], api_name="experiment_status",
                   show_progress="hidden")
        stop.click(experiment_stop, None, [status], api_name="experiment_stop")
        gr.on([refresh.click, experiments_tab.select], runs, None, [runs_table, run_a, run_b], api_name="runs")
        overlay_btn.click(runs_overlay, [run_a, run_b], [overlay], api_name="runs_overlay")
