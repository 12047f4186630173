"""Train tab: the one training slot shared by every visitor, its owner and progress.

A run belongs to the session that started it: only that session can stop it or make it its
own active model (loaded from the run's folder, with its card). Other visitors see that the
slot is busy (the slot line updates by itself), and keep their own model.

Runs outlive the page: the start hands the page the run's token, kept in the browser
(`gr.BrowserState`); a reloaded page presents it on load and re-attaches to the run's progress
and its Stop button. While a page is open it sends a heartbeat (the app's ticker, every
`slot.HEARTBEAT_S`) with the token; a run whose owner has no page open for the slot policy's
grace is stopped and the slot freed.

A finished run can be taken home: "Download this run" gives its owner one zip (weights, card,
augmentation pipeline, training config and an `evaluate.py`; see `records.bundle`), built from the
session's own run only, never from a name a client sent.
"""
from __future__ import annotations

from dataclasses import replace

import gradio as gr

from ..analysis import plots
from ..app import texts
from ..app import redact
from ..app.jobs import Busy, NotOwner, TrainJob, TrainRequest
from ..model.net import PRESETS
from ..app.session import Session
from ..train.recipes import APP_TRAIN
from ..app.uinput import number, whole_number
from .common import AppContext, Shared, owner, user_errors
from ..errors import UserError


def train_request(preset: str, epochs, lr, batch_size, subset, aug) -> TrainRequest:
    """UI values -> a TrainRequest: the app recipe (`recipes.APP_TRAIN`) with what the tab's
    controls set. NaN, infinity, text and fractions are refused here, the ranges by
    `TrainRequest.validated` (an empty subset field means all training images)."""
    batch_size = whole_number(batch_size, "batch_size")
    subset = None if subset in (None, "") else whole_number(subset, "subset")
    steps_per_epoch = (subset or 50_000) // max(1, batch_size)
    train = replace(APP_TRAIN, epochs=whole_number(epochs, "epochs"), lr=number(lr, "lr"),
                    batch_size=batch_size, subset=subset,
                    log_every=max(1, steps_per_epoch // 10))  # about ten loss points an epoch
    return TrainRequest(str(preset), train, aug)


def render_progress(snap) -> tuple[str, object]:
    text = texts.progress_text(snap.state, redact.scrub(snap.message), snap.fraction, snap.total_steps,
                               snap.eta_s, snap.device, redact.scrub(snap.data_note))
    return text, plots.training_curves(snap.epochs, snap.steps)


class TrainHandlers:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def slot(self, request: gr.Request | None = None) -> str:
        """Who holds the one training slot (a run or an experiment), as this visitor sees it."""
        return self.ctx.jobs.status(owner(request))

    def show(self, session: Session, request: gr.Request = None):
        """On opening the tab: who holds the slot, and the settings a run would use."""
        return self.slot(request), session.aug.to_dict()

    def tick(self, token=None, request: gr.Request = None) -> str:
        """The page's heartbeat (every HEARTBEAT_S while it is open): keeps alive only the run
        whose token this page holds (a forged or stale token extends nothing), and redraws the
        slot line, so a waiting visitor sees it change without switching tabs."""
        self.ctx.jobs.heartbeat(token)
        return self.slot(request)

    def start(self, preset, epochs, lr, batch_size, subset, session: Session, request: gr.Request = None):
        """Generator: takes the shared slot and streams progress until the run ends. Yields
        (progress, curves, checkpoint file, activate button, slot line, download button, run
        token); the token goes to the browser once, with the first progress."""
        try:
            train = train_request(preset, epochs, lr, batch_size, subset, session.aug)
            job = self.ctx.jobs.start(train, owner(request))
        except Busy as exc:
            yield f"🚦 **Busy.** {texts.md_escape(str(exc))}", gr.skip(), gr.skip(), gr.skip(), \
                self.slot(request), gr.skip(), gr.skip()
            return
        except UserError as exc:
            raise gr.Error(f"Invalid training settings: {exc}", print_exception=False) from None
        token = job.token
        for out in self._follow(job, request):
            yield (*out, token)
            token = gr.skip()

    def attach(self, token=None, request: gr.Request = None):
        """On page load: if the browser holds the token of a recent run, this session becomes
        one of its owners and the page follows it again (progress, Stop, activation). Any other
        value (none, forged, an experiment's) shows the slot line only. Yields like `_follow`."""
        job = self.ctx.jobs.attach(token, owner(request))
        if not isinstance(job, TrainJob):
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), self.slot(request), gr.skip()
            return
        yield from self._follow(job, request)

    def _follow(self, job: TrainJob, request):
        """(progress, curves, checkpoint, activate button, slot line, download button) until the
        run ends (the download is filled by `bundle` after). A page that goes away only stops
        following: the heartbeat decides about the run.

        The stream never writes the session: which run is this session's is the server's record
        (`my_run`), so a minute-long stream cannot undo, with the session it started from, a lab
        setting or model the visitor chose in another tab meanwhile, nor lose to them."""
        seen = -1
        while True:
            seen = job.wait(seen, timeout=1.0)
            snap = job.snapshot()
            text, fig = render_progress(snap)
            if snap.finished:
                usable = snap.weights is not None and snap.state in ("done", "stopped")
                yield (text, fig, snap.weights if usable else None, gr.update(interactive=usable),
                       self.slot(request), gr.skip())
                return
            yield (text, fig, None, gr.update(interactive=False), self.slot(request),
                   gr.update(value=None, interactive=False))

    def my_run(self, request: gr.Request | None) -> str | None:
        """The run this visitor's session last started or re-attached to (the slot's record)."""
        job = self.ctx.jobs.latest(owner(request), TrainJob.kind)
        return job.run_id if isinstance(job, TrainJob) else None

    @user_errors
    def bundle(self, request: gr.Request = None):
        """The download button for this session's run: its zip (see `TrainingJobs.bundle`) once it
        finished with a trained epoch; otherwise, and for anyone else's run, a disabled button."""
        run = self.my_run(request)
        try:
            path = self.ctx.jobs.bundle(run, owner(request)) if run else None
        except UserError:  # not finished, nothing saved, another visitor's: nothing to download
            path = None
        return gr.update(value=str(path) if path else None, interactive=path is not None)

    def stop(self, request: gr.Request = None) -> str:
        """Only the session that started the run can stop it."""
        try:
            stopped = self.ctx.jobs.stop(owner(request))
        except NotOwner as exc:
            return f"🚦 {exc}"
        return "⏹️ Stopping after the current step..." if stopped else "Nothing of yours is running."

    @user_errors
    def activate(self, session: Session, request: gr.Request = None):
        """Make this session's own finished run its active model: loaded from the run's folder
        (weights and card together), never from a path a client sent; `trained_weights` refuses
        other sessions' runs, unfinished runs and 0-epoch runs."""
        run = self.my_run(request)
        if run is None:
            raise UserError("train a model first: this session has no finished run to activate")
        weights = self.ctx.jobs.trained_weights(run, owner(request))
        choice = self.ctx.models.add(weights, f"run {run}", owner=owner(request))
        return self.ctx.switch_to(session, choice, "your trained model")


def build(ctx: AppContext, shared: Shared, tab: gr.Tab) -> None:
    h = TrainHandlers(ctx)
    gr.Markdown("Train a fresh network with the augmentation lab's settings. **One run at a time "
                "for all visitors**; the default small subset finishes in a minute or two on a CPU.")
    slot = gr.Markdown(elem_id="train_slot")
    with gr.Row():
        preset = gr.Dropdown(sorted(PRESETS), value="default", label="preset", min_width=120)
        epochs = gr.Slider(1, 50, APP_TRAIN.epochs, step=1, label="epochs", min_width=150)
        lr = gr.Slider(0.005, 1.0, APP_TRAIN.lr, step=0.005, label="max learning rate (OneCycle)", min_width=150)
        batch = gr.Dropdown([32, 64, 128, 256, 512], value=APP_TRAIN.batch_size, label="batch size", min_width=100)
        subset = gr.Number(APP_TRAIN.subset, precision=0,  # its range is checked (with a message) by TrainRequest
                           label="training images (subset)", min_width=120)
    with gr.Accordion("augmentation settings (from the lab)", open=False):  # keeps Start in view
        train_aug = gr.JSON(show_label=False, elem_id="train_aug")
    with gr.Row():
        start_btn = gr.Button("Start", variant="primary")
        stop_btn = gr.Button("Stop my run", variant="stop")
    progress = gr.Markdown(elem_id="train_progress")
    curves = gr.Plot(label="training curves")
    with gr.Row():
        ckpt = gr.File(label="checkpoint (.safetensors, to download)", interactive=False)
        with gr.Column(min_width=200):
            activate_btn = gr.Button("Use this model in my session", interactive=False)
            bundle_btn = gr.DownloadButton("⬇️ Download this run (.zip: weights, card, pipeline, "
                                           "evaluate.py)", interactive=False, elem_id="train_bundle")
    activate_status = gr.Markdown()

    session, token = shared.session, shared.run_token
    # Not wrapped in `spaces.GPU`: on ZeroGPU that would run this stream, the slot's lock and the
    # run's thread in the GPU worker process, away from the heartbeat, Stop and the re-attach. The
    # run reaches the GPU from the slot's thread instead, in calls of a few epochs and at most 300 s
    # each (experiments/zerogpu.py); tests/test_zerogpu.py keeps `spaces` out of the UI.
    followed = [progress, curves, ckpt, activate_btn, slot, bundle_btn]
    start_btn.click(h.start, [preset, epochs, lr, batch, subset, session], [*followed, token],
                    api_visibility="private", concurrency_limit=None
                    ).then(h.bundle, None, [bundle_btn], api_visibility="private")
    # waiting, not computing (like the stream above): outside the heavy group
    shared.demo.load(h.attach, [token], followed, api_visibility="private", concurrency_limit=None
                     ).then(h.bundle, None, [bundle_btn], api_visibility="private")
    shared.ticker.tick(h.tick, [token], [slot], api_visibility="private", concurrency_limit=None,
                       show_progress="hidden")
    stop_btn.click(h.stop, None, [progress], api_visibility="private", concurrency_limit=None)
    event = activate_btn.click(h.activate, [session], [activate_status, shared.banner, session],
                               api_visibility="private")
    shared.model_events.append(event)
    tab.select(h.show, [session], [slot, train_aug], api_visibility="private")
