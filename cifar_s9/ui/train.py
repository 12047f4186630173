"""Train tab: the one training slot shared by every visitor, its owner and progress.

A run belongs to the session that started it: only that session can stop it or make it its
own active model (loaded from the run's folder, with its card). Other visitors see that the
slot is busy, and keep their own model.
"""
from __future__ import annotations

import re

import gradio as gr

from .. import plots, texts
from ..checkpoint import CheckpointError, read_card
from ..jobs import Busy, TrainRequest
from ..model import PRESETS
from ..session import Session
from ..train import TrainConfig
from ..uinput import number, whole_number
from .common import AppContext, Shared, user_errors

RUN_NAME = re.compile(r"^[0-9A-Za-z_.-]+$")


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
    text = texts.progress_text(snap.state, snap.message, snap.fraction, snap.total_steps, snap.eta_s,
                               snap.device, snap.data_note)
    return text, plots.training_curves(snap.epochs, snap.steps)


class TrainHandlers:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def own_job(self, session: Session):
        """The running or last job, if this session started it; else None."""
        job = self.ctx.jobs.current
        if job is None or session.run is None or job.out_dir.name != session.run:
            return None
        return job

    def slot(self, session: Session) -> str:
        job = self.ctx.jobs.current
        busy = self.ctx.jobs.busy
        message = job.snapshot().message if (busy and job is not None) else None
        return texts.slot_status(busy, self.own_job(session) is not None, message)

    def show(self, session: Session):
        """On opening the tab: who holds the slot, and the settings a run would use."""
        return self.slot(session), session.aug.to_dict()

    def start(self, preset, epochs, lr, batch_size, subset, session: Session):
        """Generator: takes the shared slot and streams progress until the run ends.
        Yields (progress, curves, checkpoint file, activate button, slot line, session)."""
        try:
            request = train_request(preset, epochs, lr, batch_size, subset, session.aug)
            job = self.ctx.jobs.start(request)
        except Busy as exc:
            yield f"🚦 **Busy.** {texts.md_escape(str(exc))}", gr.skip(), gr.skip(), gr.skip(), \
                self.slot(session), session
            return
        except ValueError as exc:
            raise gr.Error(f"Invalid training settings: {exc}", print_exception=False) from None
        session = session.with_run(job.out_dir.name)
        seen = -1
        try:
            while True:
                seen = job.wait(seen, timeout=1.0)
                snap = job.snapshot()
                text, fig = render_progress(snap)
                if snap.finished:
                    usable = snap.weights is not None and snap.state in ("done", "stopped")
                    yield (text, fig, snap.weights if usable else None, gr.update(interactive=usable),
                           self.slot(session), session)
                    return
                yield text, fig, None, gr.update(interactive=False), self.slot(session), session
        except GeneratorExit:  # the page went away: its run must not hold the shared slot
            job.stop()
            raise

    def stop(self, session: Session) -> str:
        job = self.own_job(session)
        if job is None:
            if self.ctx.jobs.busy:
                return "The running training belongs to another visitor; only they can stop it."
            return "Nothing of yours is running."
        if job.snapshot().finished:
            return "Your run has already finished."
        job.stop()
        return "⏹️ Stopping after the current step..."

    @user_errors
    def activate(self, session: Session):
        """Make this session's own finished run its active model: loaded from the run's folder
        (weights and card together), never from a path a client sent."""
        if session.run is None or not RUN_NAME.match(session.run):
            raise ValueError("train a model first: this session has no finished run to activate")
        weights = self.ctx.jobs.runs_dir / session.run / "model.safetensors"
        if not weights.is_file():
            raise ValueError("this session's run has no saved checkpoint (still running, failed, "
                             "or cleaned up)")
        card = read_card(weights)
        if int(card.get("epochs") or 0) < 1:
            raise CheckpointError("this run stopped before finishing one epoch: its network is "
                                  "untrained, so it cannot be activated")
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
        subset = gr.Number(2000, precision=0, minimum=100, maximum=50_000,
                           label="training images (subset)", min_width=120)
    train_aug = gr.JSON(label="augmentation (from the lab)", open=False)
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
    stop_btn.click(h.stop, [session], [progress], api_visibility="private", concurrency_limit=None)
    event = activate_btn.click(h.activate, [session], [activate_status, shared.banner, session],
                               api_visibility="private")
    shared.model_events.append(event)
    tab.select(h.show, [session], [slot, train_aug], api_visibility="private")
