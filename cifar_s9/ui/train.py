"""Train tab: the one training slot shared by every visitor, its owner and progress.

A run belongs to the session that started it: only that session can stop it or make it its
own active model (loaded from the run's folder, with its card). Other visitors see that the
slot is busy, and keep their own model.
"""
from __future__ import annotations

import gradio as gr

from ..analysis import plots
from ..app import texts
from ..app import redact
from ..app.jobs import Busy, NotOwner, TrainRequest
from ..model.net import PRESETS
from ..app.session import Session
from ..train.trainer import TrainConfig
from ..app.uinput import number, whole_number
from .common import AppContext, Shared, owner, user_errors


def train_request(preset: str, epochs, lr, batch_size, subset, aug) -> TrainRequest:
    """UI values -> a TrainRequest; NaN, infinity, text and fractions are refused here, the ranges
    by `TrainRequest.validated` (an empty subset field means all training images)."""
    batch_size = whole_number(batch_size, "batch_size")
    subset = None if subset in (None, "") else whole_number(subset, "subset")
    train = TrainConfig(epochs=whole_number(epochs, "epochs"), lr=number(lr, "lr"),
                        batch_size=batch_size, subset=subset, label_smoothing=0.1,
                        log_every=max(1, (subset or 50_000) // max(1, batch_size) // 10))
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
        jobs = self.ctx.jobs
        holder, limit = jobs.holder, jobs.policy.describe()
        if holder is None:
            return texts.slot_status(False, False, limit=limit)
        kind, who = holder
        job = jobs.current
        message = redact.scrub(job.snapshot().message) if kind == "run" and job is not None else None
        return texts.slot_status(True, who == owner(request), message, kind, jobs.hold_left_s())

    def show(self, session: Session, request: gr.Request = None):
        """On opening the tab: who holds the slot, and the settings a run would use."""
        return self.slot(request), session.aug.to_dict()

    def start(self, preset, epochs, lr, batch_size, subset, session: Session, request: gr.Request = None):
        """Generator: takes the shared slot and streams progress until the run ends.
        Yields (progress, curves, checkpoint file, activate button, slot line, session)."""
        try:
            train = train_request(preset, epochs, lr, batch_size, subset, session.aug)
            job = self.ctx.jobs.start(train, owner(request))
        except Busy as exc:
            yield f"🚦 **Busy.** {texts.md_escape(str(exc))}", gr.skip(), gr.skip(), gr.skip(), \
                self.slot(request), session
            return
        except ValueError as exc:
            raise gr.Error(f"Invalid training settings: {exc}", print_exception=False) from None
        session = session.with_run(job.run_id)
        seen = -1
        try:
            while True:
                seen = job.wait(seen, timeout=1.0)
                snap = job.snapshot()
                text, fig = render_progress(snap)
                if snap.finished:
                    usable = snap.weights is not None and snap.state in ("done", "stopped")
                    yield (text, fig, snap.weights if usable else None, gr.update(interactive=usable),
                           self.slot(request), session)
                    return
                yield text, fig, None, gr.update(interactive=False), self.slot(request), session
        except GeneratorExit:  # the page went away: its run must not hold the shared slot
            job.stop()
            raise

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
        if session.run is None:
            raise ValueError("train a model first: this session has no finished run to activate")
        weights = self.ctx.jobs.trained_weights(session.run, owner(request))
        choice = self.ctx.models.add(weights, f"run {session.run}")
        session = session.with_model(choice)
        active = self.ctx.model(session)
        gr.Info("Your session now uses your trained model; other visitors keep theirs.")
        return (f"✅ This session's active model is now **{choice.label}**.",
                texts.banner(active.source, active.card, active.warning, False), session)


def build(ctx: AppContext, shared: Shared, tab: gr.Tab) -> None:
    h = TrainHandlers(ctx)
    gr.Markdown("Train a fresh network with the augmentation lab's settings. **One run at a time "
                "for all visitors**; the default small subset finishes in a minute or two on a CPU.")
    slot = gr.Markdown(elem_id="train_slot")
    with gr.Row():
        preset = gr.Dropdown(sorted(PRESETS), value="default", label="preset", min_width=120)
        epochs = gr.Slider(1, 50, 2, step=1, label="epochs", min_width=150)
        lr = gr.Slider(0.005, 1.0, 0.1, step=0.005, label="max learning rate (OneCycle)", min_width=150)
        batch = gr.Dropdown([32, 64, 128, 256, 512], value=128, label="batch size", min_width=100)
        subset = gr.Number(2000, precision=0,  # its range is checked (with a message) by TrainRequest
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
        activate_btn = gr.Button("Use this model in my session", interactive=False)
    activate_status = gr.Markdown()

    session = shared.session
    start_fn = h.start
    try:  # on Hugging Face ZeroGPU, a GPU is attached only inside functions wrapped like this
        import spaces
        start_fn = spaces.GPU(duration=600)(start_fn)
    except ImportError:
        pass
    start_btn.click(start_fn, [preset, epochs, lr, batch, subset, session],
                    [progress, curves, ckpt, activate_btn, slot, session], api_visibility="private",
                    concurrency_limit=None)
    stop_btn.click(h.stop, None, [progress], api_visibility="private", concurrency_limit=None)
    event = activate_btn.click(h.activate, [session], [activate_status, shared.banner, session],
                               api_visibility="private")
    shared.model_events.append(event)
    tab.select(h.show, [session], [slot, train_aug], api_visibility="private")
