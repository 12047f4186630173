"""Experiments tab: A/B runs of augmentation settings in the one training slot, compared honestly.

Arms use this visitor's Augmentation lab settings (`session.aug`). The arms run one after another
in the app's single training slot (the Train tab's); only the visitor who started an experiment
sees its curves and result and can stop it, and "Past runs" lists only their runs and the command
line's. The computations live in `experiment_view` and `experiment_jobs` (tested there); the
manager is the app's (`ctx.experiments`, in the training slot `ctx.jobs`). The start hands the
page the experiment's run token (kept in the browser: a reloaded page re-attaches, and its
heartbeat keeps the experiment alive; see ui/train.py). A link holds the form and the lab's
settings (`app.links`): the page reads its address on load and fills the form, and the "link to
this experiment" box follows the form.
Endpoints: /experiment_start, /experiment_status, /experiment_stop, /runs, /runs_overlay.
"""
from __future__ import annotations

import gradio as gr

from ..app import experiment_view as view
from ..app import grid_view
from ..app import links, redact, workload
from ..app.experiment_jobs import Experiments
from ..app.jobs import Busy, NotOwner
from ..app.session import Session
from .common import AppContext, Shared, owner, page_base, query_pairs, user_errors
from ..errors import UserError

POLL_S = 2.0


class ExperimentHandlers:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def manager(self) -> Experiments:
        return self.ctx.experiments

    @user_errors
    def start(self, question, budget_mode, budget, subset, seed, repeats, session: Session,
              request: gr.Request = None) -> str:
        """Start an A/B in the training slot; returns the status line (poll /experiment_status)."""
        aug = session.aug.to_dict() if isinstance(session, Session) else None
        config = view.config_from_ui(question, aug, budget_mode, budget, subset, seed, repeats)
        manager = self.manager()
        try:
            job = manager.start(config, owner(request))
        except Busy as exc:
            raise gr.Error(str(exc), title="Busy", print_exception=False) from None
        return view.status_markdown(job.snapshot(), manager.slot_note(job.owner))

    def status(self, seen=None, request: gr.Request = None):
        """(status, queue, curves, result table, result text, version) of this visitor's latest
        experiment; the figure and tables are redrawn only when it moved on since `seen`. A
        poll from the experiment's owner counts as its heartbeat (an API client has no page)."""
        manager = self.manager()
        who = owner(request)
        self.ctx.jobs.seen(who)  # its owner is still watching (a page or an API client polling)
        job = manager.mine(who)
        note = manager.slot_note(who)
        if job is None:
            return view.status_markdown(None, note), [], view.curves_figure({}), [], "", -1
        version = job.version
        snap = job.snapshot()
        status = redact.scrub(view.status_markdown(snap, note))
        if seen == version:
            return status, gr.skip(), gr.skip(), gr.skip(), gr.skip(), version
        curves = view.result_curves(snap.result) if snap.result is not None else snap.curves
        return (status, view.queue_rows(snap), view.curves_figure(curves), view.result_rows(snap.result),
                redact.scrub(view.result_markdown(snap.result)), version)

    def grid(self):
        """The measured Coarse Dropout grid (shipped data, the same for everyone): its words, and
        its heatmap when it is measured."""
        summary, why = grid_view.load(self.ctx.cutout_grid)
        if summary is None:
            return grid_view.not_measured(why), gr.Plot(visible=False)
        return grid_view.words(summary), gr.Plot(grid_view.figure(summary), visible=True)

    def current(self, session: Session) -> str:
        """What "current settings" holds for this visitor (their lab's augmentation)."""
        return view.settings_summary(session.aug if isinstance(session, Session) else Session().aug)

    def plan(self, budget_mode, budget, repeats) -> str:
        """The total asked for, before Run, against the shared slot's time limit."""
        return view.plan_text(budget_mode, budget, repeats, limit_s=self.ctx.jobs.policy.max_hold_s)

    def token(self, request: gr.Request = None):
        """The run token of the experiment this session just started, for its browser to keep;
        nothing for any other session (a token is only ever handed to an owner)."""
        job = self.manager().mine(owner(request))
        return job.token if job is not None and not job.snapshot().finished else gr.skip()

    def open_link(self, request: gr.Request = None):
        """On page load: an experiment's form from the page's address (a shared link), and the
        tab opened if the link names it. Returns (tab, question, budget mode, budget, subset,
        seed, repeats, note, current settings); a link it cannot apply changes nothing and the
        note says why. The lab's part of the link (the arms' augmentation) is the lab's to set."""
        unchanged = [gr.skip()] * 6
        pairs = query_pairs(request)
        wanted = links.named_tab(pairs) == "experiments"
        tab = gr.Tabs(selected="experiments") if wanted else gr.skip()
        try:
            query = links.read_query(pairs)
            if not wanted and not query.has_any(links.EXPERIMENT_KEYS):
                return tab, *unchanged, gr.skip(), gr.skip()
            aug = links.decode_lab(query).aug
            form = links.decode_experiment(query, aug)
        except links.LinkError as exc:  # the tab still opens: the visitor reads why there
            return tab, *unchanged, links.refused_note(exc), gr.skip()
        note = links.applied_note("experiment settings", query)
        return (tab, *(form[k] for k in ("question", "budget_mode", "budget", "subset", "seed", "repeats")),
                note, view.settings_summary(aug))

    @user_errors
    def share(self, question, budget_mode, budget, subset, seed, repeats, session: Session,
              request: gr.Request = None):
        """The link to this experiment: the form and this visitor's lab settings (the arms use
        them); it waits while the form is not valid (the plan line says what is wrong)."""
        aug = session.aug if isinstance(session, Session) else Session().aug
        try:
            pairs = links.encode_experiment(question, budget_mode, budget, subset, seed, repeats, aug)
        except UserError:
            return gr.skip()
        return links.link(page_base(request), pairs)

    def stop(self, request: gr.Request = None) -> str:
        try:
            stopped = self.manager().stop(owner(request))
        except NotOwner as exc:
            raise gr.Error(str(exc), title="Not yours", print_exception=False) from None
        return "Stopping after the current step." if stopped else "No experiment of yours is running."

    def runs(self, request: gr.Request = None):
        rows = view.runs_rows(owner(request))
        names = [r[0] for r in rows]
        return (rows, gr.Dropdown(choices=names, value=names[1] if len(names) > 1 else None),
                gr.Dropdown(choices=names, value=names[0] if names else None))

    @user_errors
    def overlay(self, name_a, name_b, request: gr.Request = None):
        try:
            return view.overlay_figure(owner(request), name_a, name_b)
        except KeyError as exc:
            raise UserError(str(exc)) from None


def build(ctx: AppContext, shared: Shared, tab: gr.Tab) -> None:
    h = ExperimentHandlers(ctx)
    gr.Markdown("Does an augmentation setting help? Train two arms one after another with the "
                "same budget, score both on the same held-back images, and read the difference "
                "with its 95% interval and McNemar's paired test. Arms use your Augmentation lab "
                "settings.")
    with gr.Accordion("Measured once at a long budget: does Coarse Dropout help?", open=True):
        grid_words = gr.Markdown(elem_id="grid_words")
        grid_plot = gr.Plot(label="points of validation accuracy against off", visible=False,
                            elem_id="grid_plot")
    form = view.FORM_DEFAULTS
    with gr.Row():
        question = gr.Radio([(label, key) for key, label in view.QUESTION_LABELS.items()],
                            value=form["question"], label="question")
    note = gr.Markdown(elem_id="exp_link_note")  # what a shared link set (or why not)
    current = gr.Markdown(elem_id="exp_current")
    with gr.Row():
        budget_mode = gr.Radio(list(view.BUDGET_MODES), value=form["budget_mode"], label="budget per arm in")
        budget = gr.Number(form["budget"], label="minutes (or epochs) per arm", minimum=0.1, maximum=200)
        subset = gr.Number(form["subset"], label="training images", precision=0, minimum=1)
        seed = gr.Number(form["seed"], label="seed", precision=0, minimum=0)
        repeats = gr.Slider(1, 5, form["repeats"], step=1, label="seeds per arm")
    plan = gr.Markdown(elem_id="exp_plan")
    link = gr.Textbox(label="link to this experiment (its form and your lab settings)", buttons=["copy"],
                      interactive=False, elem_id="exp_link")
    with gr.Row():
        start = gr.Button("Run the A/B", variant="primary")
        stop = gr.Button("Stop my experiment", variant="stop")
    status = gr.Markdown()
    queue = gr.Dataframe(headers=["#", "arm", "seed", "state"], label="queue", interactive=False, wrap=True)
    curves = gr.Plot(label="curves, both arms")
    table = gr.Dataframe(headers=view.TABLE_HEADERS, label="result", interactive=False, wrap=True,
                         elem_id="exp_result")
    words = gr.Markdown()
    with gr.Accordion("Past runs (run tracker)", open=False):
        runs_table = gr.Dataframe(headers=view.RUN_HEADERS, label="past runs", interactive=False, wrap=True,
                                  elem_id="exp_runs")
        with gr.Row():
            run_a = gr.Dropdown([], label="run A")
            run_b = gr.Dropdown([], label="run B")
            refresh = gr.Button("Refresh")
            overlay_btn = gr.Button("Overlay")
        overlay = gr.Plot(label="two past runs")
    timer = gr.Timer(POLL_S)
    seen = gr.State(None)  # the experiment version this session last drew

    start.click(h.start, [question, budget_mode, budget, subset, seed, repeats, shared.session], [status],
                api_name="experiment_start", concurrency_limit=1
                ).success(h.token, None, [shared.run_token], api_visibility="private")
    timer.tick(h.status, [seen], [status, queue, curves, table, words, seen], api_name="experiment_status",
               show_progress="hidden")
    stop.click(h.stop, None, [status], api_name="experiment_stop")
    # the result's words change when an experiment ends: its arms are new past runs
    gr.on([refresh.click, tab.select, words.change], h.runs, None, [runs_table, run_a, run_b], api_name="runs",
          trigger_mode="always_last")
    tab.select(h.current, [shared.session], [current], api_visibility="private")
    tab.select(h.grid, None, [grid_words, grid_plot], api_visibility="private", show_progress="hidden")
    # always_last: Gradio's default ("once") drops a change that comes while the previous plan is
    # still being answered, so on a busy machine the line kept the plan of the last-but-one value
    gr.on([tab.select, budget_mode.change, budget.change, repeats.change], h.plan, [budget_mode, budget, repeats],
          [plan], api_visibility="private", show_progress="hidden", trigger_mode="always_last")
    form_inputs = [question, budget_mode, budget, subset, seed, repeats]
    shared.demo.load(h.open_link, None, [shared.tabs, *form_inputs, note, current], api_visibility="private")
    # A link opens with every field changed at once, and a Radio fires its change while Gradio is
    # still writing the next fields, so the first request carries the defaults of the fields after
    # it. always_last holds back repeats of one trigger only; requests from different fields run side
    # by side and the stale one could be answered last. One at a time, in the order sent (the queue
    # is first come, first served), the last answer is the one with every field.
    gr.on([tab.select, *(c.change for c in form_inputs)], h.share, [*form_inputs, shared.session], [link],
          api_visibility="private", show_progress="hidden", trigger_mode="always_last",
          concurrency_limit=1, concurrency_id=workload.IN_ORDER_GROUP)
    overlay_btn.click(h.overlay, [run_a, run_b], [overlay], api_name="runs_overlay")
