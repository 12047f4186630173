"""What every tab module shares: the server-wide context, the shared components, the error
adapter and the guarded image input. Read `cifar_s9/ui/__init__.py` first."""
from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np

from .. import paths
from ..data import images
from ..app import links, redact, texts, uploads
from ..data.app_data import EvalData, load_test_data
from ..app.experiment_jobs import Experiments
from ..app.jobs import TrainingJobs
from ..app.serving import ActiveModel, EvaluationCache, ModelCache, ModelChoice
from ..app.session import Session
from ..errors import UserError


REFERENCE_LABEL = "reference design (seed.safetensors)"
# Smooth pictures (Grad-CAM overlays) travel as JPEG: 0.6 ms to encode against 33 ms for PNG on
# this CPU, the largest cost of an explain request after the network; pixel art (the network's
# 32x32 view, feature maps) stays PNG, where JPEG would smear the pixel edges.
SMOOTH_FORMAT = "jpeg"


@dataclass
class AppContext:
    """Server-wide objects, shared by every session: the loaded models (a bounded cache), the
    evaluation cache, the one training slot (`jobs`, which also runs the Train tab's runs), the
    experiments run in it, and the data settings. Built by `app.configure`."""
    models: ModelCache
    evals: EvaluationCache
    jobs: TrainingJobs
    experiments: Experiments
    data_dir: str | None = None
    reference: Path | None = None    # the reference design's weights, shipped beside ours
    cutout_grid: Path = paths.CUTOUT_GRID  # the measured Coarse Dropout grid the Experiments tab shows
    _test: EvalData | None = field(default=None, repr=False)
    _reference_choice: ModelChoice | None = field(default=None, repr=False)
    _test_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def model(self, session: Session | None) -> ActiveModel:
        """The model this session chose (the shipped one unless it activated another)."""
        return self.models.get(session.model if session is not None else None)

    def switch_to(self, session: Session, choice: ModelChoice, whose: str) -> tuple[str, str, Session]:
        """This session now uses `choice` (`whose`: "your trained model"): the confirmation line,
        the banner and the new session; other sessions keep theirs."""
        session = session.with_model(choice)
        active = self.model(session)
        gr.Info(f"Your session now uses {whose}; other visitors keep theirs.")
        return (f"✅ This session's active model is now **{texts.md_escape(choice.label)}**.",
                texts.banner(active.source, active.card, active.warning, False, self.measured(active)),
                session)

    def reference_choice(self, owner: str | None = None) -> ModelChoice:
        """The reference design as a ModelChoice (held for `owner`); UserError when not shipped."""
        if self.reference is None or not Path(self.reference).is_file():
            raise UserError("the reference design is not shipped with this app")
        self._reference_choice = self.models.add(self.reference, REFERENCE_LABEL, owner=owner)
        return self._reference_choice

    def reference_model(self) -> ActiveModel:
        """The reference design as every session may read it: one shared, read-only network in
        the model cache (loaded once, reloaded if evicted), held by nobody; nobody's model choice
        changes. UserError when it is not shipped."""
        if self.reference is None:
            raise UserError("the reference design is not shipped with this app")
        choice = self._reference_choice or self.reference_choice()
        active = self.models.get(choice)
        if active.key != choice.key:  # the cache forgot its file: the shipped stand-in is no reference
            active = self.models.get(self.reference_choice())
        return active

    def designs(self) -> dict[str, tuple]:
        """{name: (model, card)} of the shipped designs: ours and, if shipped, the reference."""
        shipped = self.models.shipped
        out = {"ours": (shipped.model, shipped.card)}  # short names: three columns fit a phone
        try:
            ref = self.reference_model()
        except UserError:
            return out
        out["reference"] = (ref.model, ref.card)
        return out

    def measured(self, active: ActiveModel) -> tuple[float, int, bool] | None:
        """(accuracy, images, full test set?) of the app's own evaluation of `active`, the one
        the Mistakes tab shows, if it is done; never starts one (the banner answers at once)."""
        test = self._test
        if test is None or not self.evals.cached(active, test.split):
            return None
        ev = self.evals.get(active, test.split)
        return ev.accuracy, ev.n, test.full

    def warm_up(self) -> threading.Thread:
        """Evaluate the shipped model on the test set in the background (and on disk), so the
        first visitor's Mistakes tab answers at once."""
        def run():
            try:
                self.evals.get(self.models.shipped, self.test_data().split)
            except Exception as exc:  # a failed warm-up only means the first visitor waits
                print(f"cifar_s9: warm-up skipped ({type(exc).__name__})")
        thread = threading.Thread(target=run, name="cifar_s9-warm-up", daemon=True)
        thread.start()
        return thread

    def test_data(self) -> EvalData:
        with self._test_lock:  # loaded once, on the first Mistakes view
            if self._test is None:
                self._test = load_test_data(self.data_dir)
            return self._test


@dataclass
class Shared:
    """Components created by app.py before the tabs, for every tab to read or update.

    `session` is the gr.State holding this visitor's `Session`; pass it in `inputs=` to read the
    model, current image or augmentation settings, and in `outputs=` to change them.
    """
    demo: gr.Blocks
    session: gr.State
    banner: gr.Markdown
    examples: list[str]
    tabs: gr.Tabs | None = None  # `gr.Tabs(selected=<tab id>)` as an output switches tabs
    # the token of this browser's latest training-slot job (kept across reloads) and the page's
    # heartbeat, which ticks on every tab (components inside a tab exist only once it is opened)
    run_token: gr.BrowserState | None = None
    ticker: gr.Timer | None = None
    # (fn, inputs, outputs) run after the session's model changes (activate, restore), so a tab
    # shows the new model's answer without a click; app.py chains them after `model_events`
    refreshers: list = field(default_factory=list)
    model_events: list = field(default_factory=list)


log = logging.getLogger("cifar_s9.app")
SERVER_FAULT = ("Something went wrong on the server (it has been logged). Try again, or with other "
                "input; the app goes on serving.")


def user_errors(fn):
    """The app's one error boundary. A `UserError` (a bad image, setting or number: the
    visitor's to fix) reaches the visitor as one readable gr.Error and stays out of the log.
    Anything else is the server's fault: it goes to the log with its traceback, and the visitor
    sees only `SERVER_FAULT`, never its message, a server path or a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except UserError as exc:
            raise gr.Error(redact.scrub(exc), title="Cannot do that", print_exception=False) from None
        except Exception:
            log.exception("handler %s failed", getattr(fn, "__qualname__", fn))
            raise gr.Error(SERVER_FAULT, title="Server error", print_exception=False) from None
    return wrapper


# ---------------------------------------------------------------- image inputs

def image_input(**kwargs) -> gr.Image:
    """Every image input of the app: a gr.Image (type="filepath") guarded by
    `uploads.guard_image`: only a file in Gradio's upload folder (or a data: URL whose bytes and
    header were checked first), within the byte and pixel limits; anything else is one gr.Error
    with no server path, and the handler never runs. Do not catch its errors."""
    return uploads.guard_image(gr.Image(type="filepath", image_mode=None, **kwargs))


def uploaded_file(path) -> Path:
    """A file a visitor uploaded (gr.File): inside Gradio's upload folder, else ValueError."""
    try:
        return uploads.confine(path, [uploads.upload_folder()])
    except images.ImageInputError:
        raise UserError("upload the file first (other server files are never read)") from None


def query_pairs(request: gr.Request | None) -> list[tuple[str, str]]:
    """The (name, value) pairs of the page's address, repeats kept (Gradio's page sends them with
    each of its calls); [] for a direct call. `app.links.read_query` judges them."""
    params = getattr(request, "query_params", None) if request is not None else None
    if hasattr(params, "multi_items"):
        return list(params.multi_items())
    try:  # a request Gradio rebuilt from a copy holds a plain mapping
        return list(dict(params).items()) if params is not None else []
    except (TypeError, ValueError):
        return []


def page_base(request: gr.Request | None) -> str:
    """The page's own address, for the links it shows (see `app.links.page_base`)."""
    if request is None:
        return ""
    headers = getattr(request, "headers", None)
    return links.page_base(getattr(request, "url", ""), dict(headers) if headers is not None else {})


def owner(request: gr.Request | None) -> str:
    """Who owns a training run: the visitor's session; a direct call (tests, scripts) is "local"."""
    return getattr(request, "session_hash", None) or "local"


@functools.lru_cache(maxsize=64)
def _rgb32_cached(path: str, mtime: float, size: int) -> np.ndarray:
    return images.load_rgb32(path)


def to_rgb32(image) -> np.ndarray:
    """The 32x32 RGB view of a path that Gradio handed over (cached by path and mtime, so the
    tabs do not decode the same upload again), or of anything `images.load_rgb32` accepts."""
    if isinstance(image, (str, Path)) and Path(image).is_file():
        st = Path(image).stat()
        return _rgb32_cached(str(image), st.st_mtime, st.st_size)
    return images.load_rgb32(image)
