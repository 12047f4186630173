"""Classify tab: the current image, what the network sees, its prediction and a Grad-CAM.

The image chosen here (upload, paste, webcam or an example) becomes the session's current image,
which the other tabs use too. "Compare with the reference design" (off by default) sets the
session's model and the reference design side by side for that image. Public API: /classify,
/explain and /compare (wired to a hidden trigger, so the page itself makes one request per change
and shows one message per bad input).
"""
from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr
import numpy as np

from .. import paths
from ..analysis import gradcam
from ..analysis.ood import Calibration
from ..data import images
from ..app import compare as designs, texts
from ..data.cifar import CLASSES
from ..app.serving import class_index, heatmap, probabilities, top_k
from ..app.session import Session
from ..app.uinput import number, whole_number
from ..errors import UserError
from .common import SMOOTH_FORMAT, AppContext, Shared, image_input, to_rgb32, user_errors

PREDICTED = "predicted"
FIRST_EXAMPLE = "ship"  # what the page shows classified when it opens
TOP_K = 3        # classes listed by default
OPACITY = 0.5    # Grad-CAM over the image


class ClassifyHandlers:
    """Plain functions of their inputs (tests call them directly); `ctx` is server-wide."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    @user_errors
    def classify(self, image, k: int = TOP_K, session: Session | None = None) -> dict[str, float]:
        """Top-k class probabilities for one image of any size and mode."""
        model = self.ctx.model(session).model
        k = TOP_K if k is None else k  # an API value left out is the default
        return top_k(probabilities(model, to_rgb32(image)), whole_number(k, "top-k", 1, len(CLASSES)))

    @user_errors
    def explain(self, image, method: str = gradcam.DEFAULT_METHOD, layer: str = gradcam.DEFAULT_LAYER,
                target: str = PREDICTED, opacity: float = OPACITY, session: Session | None = None) -> np.ndarray:
        """Grad-CAM overlay (256x256 RGB, colour bar at the right) for the predicted or `target` class."""
        if image is None:
            return None
        # an API value left out (None) is the parameter's default
        method = gradcam.DEFAULT_METHOD if method is None else method
        layer = gradcam.DEFAULT_LAYER if layer is None else layer
        target = PREDICTED if target is None else target
        opacity = OPACITY if opacity is None else opacity
        opacity = gradcam.checked_opacity(number(opacity, "opacity"))  # before any work
        model = self.ctx.model(session).model
        rgb = to_rgb32(image)
        return gradcam.shown(rgb, heatmap(model, rgb, method, layer, class_index(target)), opacity)

    @user_errors
    def explain_caption(self, image, method: str, layer: str, target: str,
                        session: Session | None = None) -> str:
        if image is None:
            return ""
        probs = probabilities(self.ctx.model(session).model, to_rgb32(image))
        return texts.explain_caption(probs, method, layer, class_index(target),
                                     method in gradcam.CLASS_AGNOSTIC)

    @user_errors
    def view(self, image, k, method, layer, target, opacity, session: Session):
        """Everything the tab shows for a new image, in one request (one message if it is bad);
        the image becomes the session's current image."""
        if image is None:
            return session.with_image(None), None, None, "", None, ""
        rgb = to_rgb32(image)
        model = self.ctx.model(session).model
        probs = probabilities(model, rgb)
        label = top_k(probs, whole_number(k, "top-k", 1, len(CLASSES)))
        cam = self.explain(image, method, layer, target, opacity, session)
        caption = texts.explain_caption(probs, method, layer, class_index(target),
                                        method in gradcam.CLASS_AGNOSTIC)
        return (session.with_image(str(image)), images.upscale(rgb, 256), label,
                self.note(image, probs, session), cam, caption)

    @user_errors
    def compare(self, image, k: int = TOP_K, method: str = gradcam.DEFAULT_METHOD,
                layer: str = gradcam.DEFAULT_LAYER, target: str = PREDICTED, opacity: float = OPACITY,
                session: Session | None = None):
        """The image through this session's model and the reference design (the shipped model
        when the session uses the reference), with the same Grad-CAM settings: a note, then for
        each design its title (name and test accuracy), top-k classes and Grad-CAM overlay."""
        if image is None:
            raise UserError("give an image to compare the two designs on")
        k = whole_number(TOP_K if k is None else k, "top-k", 1, len(CLASSES))
        cam = designs.CamSettings.parse(method, layer, PREDICTED if target is None else target,
                                        OPACITY if opacity is None else opacity)
        reference = self.ctx.reference_model()  # shared and read-only; the session keeps its model
        result = designs.compare(self.ctx.model(session), reference, self.ctx.models.shipped,
                                 to_rgb32(image), k, cam, self.ctx.measured)
        return (result.note, result.yours.title, result.yours.top, result.yours.cam,
                result.other.title, result.other.top, result.other.cam)

    @user_errors
    def compare_view(self, on, k, method, layer, target, opacity, session: Session | None):
        """The page's comparison for the session's current image: shown and filled when `on`,
        hidden (nothing computed) when off."""
        if on is not True:
            return gr.update(visible=False), *[gr.skip()] * 7
        if session is None or session.image is None:
            return gr.update(visible=True), "Choose an image above to compare the two designs on.", *[None] * 6
        return gr.update(visible=True), *self.compare(session.image, k, method, layer, target, opacity, session)

    def note(self, image, probs, session: Session | None) -> str:
        """The words under the prediction: the crop's and the size's warnings, the calibrated
        out-of-distribution check (for the weights it was measured on)."""
        return texts.classify_note(probs, _picture_size(image),
                                   _calibration(self.ctx.model(session).card.get("weights_sha256")))

    def refresh(self, k, method, layer, target, opacity, session: Session):
        """After the session's model changed: the same image through the new model."""
        try:
            return self.view(session.image, k, method, layer, target, opacity, session)[2:]
        except gr.Error:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()


def build(ctx: AppContext, shared: Shared, tab: gr.Tab) -> None:
    h = ClassifyHandlers(ctx)
    layers = gradcam.layer_names(ctx.models.shipped.model)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=260):
            image_in = image_input(label="Your image (any size)", height=260,
                                   sources=["upload", "webcam", "clipboard"], elem_id="input_image")
            # thumbnails under the upload box: one click classifies a CIFAR-10 test image
            examples = gr.Examples(examples=[[p] for p in shared.examples], inputs=[image_in], examples_per_page=10,
                                   label="CIFAR-10 test examples (click one)", elem_id="examples")
            topk = gr.Slider(1, 10, TOP_K, step=1, label="top-k")
        with gr.Column(scale=1, min_width=260):
            view = gr.Image(label="What the network sees (32x32, enlarged)", format="png",
                            interactive=False, height=260, elem_classes="pixelated", elem_id="network_view")
            label = gr.Label(label="Prediction", num_top_classes=10, elem_id="prediction")
            note = gr.Markdown(elem_id="classify_note")
        with gr.Column(scale=1, min_width=260):
            gr.Markdown("**Grad-CAM**: where the evidence is (colour bar: blue low, red high)")
            cam = gr.Image(label="Grad-CAM", show_label=False, format=SMOOTH_FORMAT, interactive=False,
                           height=260, elem_id="cam")
            cam_caption = gr.Markdown()
            with gr.Row():
                method = gr.Dropdown(list(gradcam.METHODS), value=gradcam.DEFAULT_METHOD, label="method")
                layer = gr.Dropdown(layers, value=gradcam.DEFAULT_LAYER, label="target layer")
            with gr.Row():
                target = gr.Dropdown([PREDICTED, *CLASSES], value=PREDICTED, label="target class")
                opacity = gr.Slider(0, 1, OPACITY, step=0.05, label="opacity")
    compare_on, compare_box, compared = _compare_section(ctx)
    session = shared.session
    settings = [topk, method, layer, target, opacity]
    # the named API: a button nobody can see or click; clients call these by name (wired first,
    # so the names are not taken by the page's own private events on the same functions)
    api = gr.Button(visible=False, elem_id="classify_api")
    # numbers as hidden gr.Number (valued with the defaults the API page shows): a gr.Slider
    # cannot take the None that means "the default" (Gradio's own check fails on it)
    api_k, api_opacity = gr.Number(TOP_K, visible=False), gr.Number(OPACITY, visible=False)
    api.click(h.classify, [image_in, api_k, session], [label], api_name="classify")
    api.click(h.explain, [image_in, method, layer, target, api_opacity, session], [cam], api_name="explain")
    api.click(h.compare, [image_in, api_k, method, layer, target, api_opacity, session], compared,
              api_name="compare")
    # One view per new picture. Not `change`: Gradio sends two when a visitor drops a picture onto
    # one already in the box (two messages for one bad file). `input` comes once for every upload,
    # paste, capture or removal by the visitor; an example's click fills the box without it.
    # The comparison follows (once the view succeeded: one message per bad file)
    compare_inputs, compare_outputs = [compare_on, *settings, session], [compare_box, *compared]
    for new_picture in (image_in.input, examples.load_input_event.then):
        new_picture(h.view, [image_in, *settings, session], [session, view, label, note, cam, cam_caption],
                    api_visibility="private", trigger_mode="always_last"
                    ).success(h.compare_view, compare_inputs, compare_outputs, api_visibility="private")
    # every setting too; off, it answers at once without running a network
    gr.on([compare_on.change, topk.release, method.change, layer.change, target.change, opacity.release],
          h.compare_view, compare_inputs, compare_outputs, api_visibility="private",
          trigger_mode="always_last")
    topk.release(h.classify, [image_in, topk, session], [label], api_visibility="private")
    gr.on([method.change, layer.change, target.change, opacity.release], h.explain,
          [image_in, method, layer, target, opacity, session], [cam], api_visibility="private",
          trigger_mode="always_last")
    gr.on([method.change, layer.change, target.change], h.explain_caption,
          [image_in, method, layer, target, session], [cam_caption], api_visibility="private",
          trigger_mode="always_last")
    # the page opens on an example already classified, the upload box empty (for the visitor's own)
    if shared.examples:
        first = next((p for p in shared.examples if Path(p).stem == FIRST_EXAMPLE), shared.examples[0])
        shared.demo.load(functools.partial(h.view, first), [*settings, session],
                         [session, view, label, note, cam, cam_caption], api_visibility="private")
    shared.refreshers.append((h.refresh, [*settings, session], [label, note, cam, cam_caption]))
    shared.refreshers.append((h.compare_view, compare_inputs, compare_outputs))


def _compare_section(ctx: AppContext):
    """The checkbox (hidden when the reference design is not shipped) and, under it, the two
    designs side by side: (checkbox, the section, its outputs: note, then title, top classes
    and Grad-CAM of your model and of the other design)."""
    compare_on = gr.Checkbox(False, label="Compare with the reference design", elem_id="compare_on",
                             visible=ctx.reference is not None,
                             info="The same image and Grad-CAM settings through the course's reference "
                                  "design, beside your model (one more forward pass and Grad-CAM).")
    with gr.Column(visible=False, elem_id="compare") as box:
        compare_note = gr.Markdown(elem_id="compare_note")
        outputs = [compare_note]
        with gr.Row(equal_height=False, elem_id="compare_row"):
            for side in ("yours", "other"):
                with gr.Column(min_width=280, elem_id=f"compare_{side}"):
                    title = gr.Markdown(elem_classes="compare-title")
                    with gr.Row(equal_height=False, elem_classes="compare-pair"):
                        top = gr.Label(show_label=False, num_top_classes=10, min_width=200,
                                       elem_classes="compare-top")
                        picture = gr.Image(show_label=False, format=SMOOTH_FORMAT, interactive=False, height=220,
                                           min_width=200, elem_classes="compare-cam")
                    outputs += [title, top, picture]
    return compare_on, box, outputs


def _picture_size(image) -> tuple[int, int] | None:
    """(width, height) of the visitor's picture from its header (None if it is not a file)."""
    if not isinstance(image, str):
        return None
    with images.open_image(image) as im:
        return im.size


@functools.lru_cache(maxsize=8)
def _calibration(weights_sha256: str | None) -> Calibration | None:
    return Calibration.load(paths.OOD_CALIBRATION, weights_sha256)
