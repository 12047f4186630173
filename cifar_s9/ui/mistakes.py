"""Mistakes tab: the session's model on the test set: accuracy, confusion matrix, and the
misclassified images with Grad-CAMs for the predicted and the true class.

The tiles shown are stamped with the model that listed them (`listed`: {"model", "indices"}):
a model change (activate, restore, upload) lists them again for the new model, and a click on a
tile listed by another model is refused, so a tile's label and its caption always come from
one model (issue 26.2)."""
from __future__ import annotations

import gradio as gr

from ..analysis import gradcam, plots
from ..data import images
from ..app import texts
from ..data.cifar import CLASSES
from ..analysis.evaluate import mistakes
from ..app.serving import class_index
from ..app.session import Session
from .common import SMOOTH_FORMAT, AppContext, Shared, user_errors
from ..errors import UserError

SORTS = {"most confident first": "confidence_desc", "least confident first": "confidence_asc"}
NOT_LISTED = {"model": None, "indices": []}
PICK = "Select an image to see its Grad-CAMs: the evidence for the predicted class and for the true class."
STALE = ("These tiles were listed for the model you used before; they are being listed again "
         "for your current model. Click a tile once the new list shows.")


class MistakesHandlers:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def evaluation(self, session: Session, progress=None):
        data = self.ctx.test_data()
        active = self.ctx.model(session)
        report = None
        if progress is not None and not self.ctx.evals.cached(active, data.split):
            def report(done, total):
                progress(done / total, desc=f"evaluating {done:,}/{total:,} test images")
        return data, active, self.ctx.evals.get(active, data.split, report)

    @user_errors
    def view(self, true_name: str, predicted_name: str, sort: str, session: Session,
             limit: int = 60, progress=gr.Progress()):
        """(note, tiles, what they list, confusion, per-class accuracy, banner): the banner
        then shows this evaluation's accuracy, the same number as the note."""
        data, active, ev = self.evaluation(session, progress)
        t, p = class_index(true_name or None), class_index(predicted_name or None)
        matching = mistakes(ev, t, p, SORTS.get(sort, "confidence_desc"))
        found = matching[:int(limit)]
        gallery = [(images.upscale(data.split.images[m.index], 96),
                    texts.gallery_caption(m.true, m.predicted, m.confidence)) for m in found]
        note = texts.mistakes_note(data.note, ev.accuracy, ev.n, int((ev.predictions != ev.labels).sum()),
                                   len(matching), len(found),
                                   texts.filter_words(true_name or None, predicted_name or None),
                                   active.warning, full=data.full, model=active.source)
        banner = texts.banner(active.source, active.card, active.warning, session.model.shipped,
                              (ev.accuracy, ev.n, data.full))
        listed = {"model": active.key, "indices": [m.index for m in found]}
        return (note, gallery, listed, plots.confusion_heatmap(ev.confusion),
                plots.per_class_accuracy(ev.per_class_accuracy), banner)

    def refresh(self, true_name: str, predicted_name: str, sort: str, listed, session: Session,
                progress=gr.Progress()):
        """After the session's model changed: list the tiles again if this tab listed some for
        another model (and clear the Grad-CAMs); a tab never opened stays as it is."""
        skip = (gr.skip(),) * 9
        before = listed.get("model") if isinstance(listed, dict) else None
        if before is None or before == self.ctx.model(session).key:
            return skip
        try:
            return (*self.view(true_name, predicted_name, sort, session, progress=progress),
                    None, None, PICK)
        except gr.Error:  # a refresh nobody asked for shows no message
            return skip

    @user_errors
    def cams(self, listed: dict, session: Session, evt: gr.SelectData,
             method: str = gradcam.DEFAULT_METHOD):
        indices = listed.get("indices") if isinstance(listed, dict) else None
        if not isinstance(indices, list) or not isinstance(evt.index, int) or isinstance(evt.index, bool) \
                or not 0 <= evt.index < len(indices):
            raise UserError("select one of the images shown")
        data, active, ev = self.evaluation(session)
        if listed.get("model") != active.key:
            raise UserError(STALE)
        index = indices[evt.index]
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < ev.n:
            raise UserError("select one of the images shown")
        rgb = data.split.images[index]
        pred, true = int(ev.predictions[index]), int(ev.labels[index])
        out = [gradcam.with_colorbar(gradcam.overlay(
            rgb, gradcam.explain(active.model, rgb, method, gradcam.DEFAULT_LAYER, c))) for c in (pred, true)]
        caption = (f"Test image #{index}: true **{CLASSES[true]}** ({ev.probabilities[index, true]:.1%}), "
                   f"predicted **{CLASSES[pred]}** ({ev.probabilities[index, pred]:.1%}).")
        return out[0], out[1], caption


def build(ctx: AppContext, shared: Shared, tab: gr.Tab) -> None:
    h = MistakesHandlers(ctx)
    note = gr.Markdown("Open this tab to evaluate your session's model on the test set.",
                       elem_id="mistakes_note")
    with gr.Row():
        true_f = gr.Dropdown(["", *CLASSES], value="", label="true class (any)", min_width=140)
        pred_f = gr.Dropdown(["", *CLASSES], value="", label="predicted class (any)", min_width=140)
        sort = gr.Radio(list(SORTS), value="most confident first", label="sort", min_width=200)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            gallery = gr.Gallery(label="misclassified: true→predicted confidence", columns=6, height=440,
                                 format="png", allow_preview=False, elem_id="mistake_gallery")
        with gr.Column(scale=2, min_width=300):
            caption = gr.Markdown(PICK, elem_id="mistakes_caption")
            with gr.Row():
                cam_pred = gr.Image(label="predicted class", format=SMOOTH_FORMAT, height=200, interactive=False)
                cam_true = gr.Image(label="true class", format=SMOOTH_FORMAT, height=200, interactive=False)
    listed = gr.State(NOT_LISTED)
    with gr.Row():
        confusion = gr.Plot(label="confusion matrix", elem_id="confusion")
        per_class = gr.Plot(label="per-class accuracy")
    outputs = [note, gallery, listed, confusion, per_class, shared.banner]
    inputs = [true_f, pred_f, sort, shared.session]
    gr.on([tab.select, true_f.input, pred_f.input, sort.input], h.view, inputs, outputs,
          api_visibility="private", show_progress="full", trigger_mode="always_last")
    gallery.select(h.cams, [listed, shared.session], [cam_pred, cam_true, caption],
                   api_visibility="private")
    shared.refreshers.append((h.refresh, [true_f, pred_f, sort, listed, shared.session],
                              [*outputs, cam_pred, cam_true, caption]))
