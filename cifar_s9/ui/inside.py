"""Inside tab: feature maps, a unit's receptive field on the image, occlusion and gradients
beside Grad-CAM, "why not this class?" (Grad-CAM for all ten classes) and "which map to trust?"
(every map scored by ROAD, beside the shipped test-sample ranking).

The page works on the session's current image (chosen in Classify) and model. Every number
and picture comes from `cifar_s9.analysis.inside`; this module only wires components to it.
Public API (each takes an image file; hidden inputs, so a client's values reach our checks):
/feature_maps, /receptive_field, /occlusion, /explain_all, /faithfulness.
"""
from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd

from ..data.cifar import CLASSES
from .. import paths
from ..analysis import faithfulness as faith
from ..analysis.gradcam import METHODS, layer_names
from ..analysis.inside import attribution, features, fields, render, why_not
from ..app.serving import class_index
from ..app.workload import Seats
from ..app.session import Session
from .common import AppContext, Shared, image_input, to_rgb32, user_errors
from ..errors import UserError

PREDICTED = "predicted"
MAP_LAYER = "C2"          # the first layer shown: 64 channels at 16x16, edges and colours
STRIDE_INFO = "up to the patch size (every pixel covered), within 400 occluded copies"
RF_LAYER = "C4"           # the API's receptive field: the last block's units see most of the image
NO_IMAGE = "Choose an image in the **Classify** tab first; this tab looks inside the network at it."
TRUST_AT_ONCE = 2  # of the app's 4 heavy places: "which map to trust?" takes seconds, the rest stay free
TRUST_BUSY = (f"{TRUST_AT_ONCE} other visitors' maps are being scored right now (a few seconds "
              "each); try again in a moment.")
TRUST_PROMPT = ("Press **Score the maps** to score every map for the current image (a few seconds); "
                "the test-sample ranking below is already computed.")
TRUST_INTRO = (
    "Every method draws a different map, and a map can look convincing while the network used "
    "something else. Here each map is **tested**: ROAD removes the pixels the map calls most "
    "relevant (and, separately, the least relevant ones), fills them in from their neighbours and "
    "asks the network again. " + faith.MEANING + " The **target layer** is where a CAM reads "
    "the network's evidence: C1 is early (fine detail, little meaning), C4 the last block (coarse, "
    "what the answer is made of); occlusion and integrated gradients work on the pixels directly.")
STALE = ("These channels were shown for another model, layer or image; they are being shown again "
         "for your current choice. Click a channel once they appear.")


def _or(value, default):
    """An API value left out (None, or an empty text box) means the parameter's default."""
    return default if value is None or (isinstance(value, str) and not value.strip()) else value


def _channel(value):
    """The API's channel: None, "" or "all" for the sum of all channels, else the index."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "all")):
        return None
    return value


class InsideHandlers:
    """Plain methods (tests call them without a server); `ctx` is server-wide."""

    def __init__(self, ctx: AppContext, ranking_file=paths.FAITHFULNESS):
        self.ctx = ctx
        self.ranking_file = ranking_file
        self.trust_seats = Seats(TRUST_AT_ONCE, TRUST_BUSY)  # this app's own: no global state

    def _inputs(self, image, session: Session | None):
        """(model, 32x32 RGB image): the image sent, else the session's current image."""
        source = image if image is not None else (session.image if session is not None else None)
        if source is None:
            raise UserError("No image: choose one in the Classify tab (or send one to the API).")
        return self.ctx.model(session).model, to_rgb32(source)

    # ------------------------------------------------------------ named API endpoints

    @user_errors
    def feature_maps(self, image, layer: str = MAP_LAYER, scale: str = "shared",
                     session: Session | None = None):
        """Every channel of `layer` as a picture (highest mean activation first), and the numbers:
        {"layer", "shape": [C, h, w], "order", "ranges", "activations": C x h x w}."""
        model, rgb = self._inputs(image, session)
        fm = features.feature_maps(model, rgb, _or(layer, MAP_LAYER))
        tiles = features.channel_tiles(fm, _or(scale, "shared"))
        data = {"layer": fm.layer, "shape": list(fm.shape), "order": [int(c) for c in fm.order],
                "ranges": [list(fm.value_range(c)) for c in range(fm.shape[0])],
                "activations": fm.activations.tolist()}
        return tiles, data

    @user_errors
    def receptive_field(self, image, layer: str = RF_LAYER, row=0, column=0, channel=None,
                        session: Session | None = None):
        """The unit's theoretical receptive field drawn on the image, its effective one (gradient
        magnitude), the words, and {"size", "centre", "box", "on_image", "padding_pixels",
        "central_square"} (the box may leave the image: that part is zero padding)."""
        model, rgb = self._inputs(image, session)
        field, mass = fields.effective_field(model, rgb, _or(layer, RF_LAYER), _or(row, 0),
                                             _or(column, 0), _channel(channel))
        data = {"layer": field.layer, "row": field.y, "column": field.x, "size": field.size,
                "centre": list(field.centre), "box": list(field.box), "on_image": list(field.on_image),
                "padding_pixels": field.padding_pixels,
                "central_square": fields.central_square(mass, field.centre), "fraction": fields.MOST}
        return (fields.field_picture(rgb, field), fields.gradient_picture(mass, field),
                fields.describe(field, mass), data)

    @user_errors
    def occlusion(self, image, target: str = PREDICTED, patch=attribution.PATCH,
                  stride=attribution.STRIDE, session: Session | None = None):
        """Occlusion, integrated gradients and Grad-CAM for one class, their agreement, and
        {"target", "probability", "agreement"}."""
        model, rgb = self._inputs(image, session)
        target = None if _or(target, PREDICTED) == PREDICTED else class_index(target)
        result = attribution.attributions(model, rgb, target, _or(patch, attribution.PATCH),
                                          _or(stride, attribution.STRIDE))
        agreement = {k: (None if np.isnan(v) else v) for k, v in result.agreement.items()}
        data = {"target": CLASSES[result.target], "probability": result.probability,
                "agreement": agreement, "logit_change": result.logit_change,
                "gradients_sum": float(result.gradients.sum())}
        return attribution.pictures(rgb, result), attribution.summary(result), data

    @user_errors
    def explain_all(self, image, layer: str = why_not.LAYER, session: Session | None = None):
        """Grad-CAM for each of the ten classes (class order) and {class: probability}."""
        model, rgb = self._inputs(image, session)
        maps = why_not.all_class_cams(model, rgb, _or(layer, why_not.LAYER))
        return why_not.grid(rgb, maps), {c: float(p) for c, p in zip(CLASSES, maps.probabilities)}

    @user_errors
    def faithfulness(self, image, methods: str = "all", layers: str = ",".join(faith.DEFAULT_LAYERS),
                     session: Session | None = None):
        """Every map (each CAM method at each layer, occlusion, integrated gradients, a random
        map) ROAD-scored for the predicted class, best first: the words, and {"target",
        "probability", "ranking": [{"map", "score", ...}], "sample": the shipped test-sample
        ranking of this model or null}. Methods and layers: lists or comma-separated names."""
        model, rgb = self._inputs(image, session)
        result = self._rank(model, rgb, methods, layers)
        sample = self._sample(session)
        data = faith.to_json(result)
        data["sample"] = None if sample is None else {"data": sample.data, "n": sample.n,
                                                      "ranking": sample.rows}
        return faith.summary(result), data

    def _rank(self, model, rgb, methods, layers) -> faith.Ranking:
        faith.plan(model, methods, layers)  # a refused plan is refused before a seat is taken
        with self.trust_seats.taken():
            return faith.rank_maps(model, rgb, methods, layers)

    def _sample(self, session: Session | None) -> faith.SampleRanking | None:
        active = self.ctx.model(session)
        return faith.SampleRanking.load(self.ranking_file, active.digest)

    # ------------------------------------------------------------ the page (current image)

    @user_errors
    def page_maps(self, layer: str, scale: str, session: Session):
        """A new layer, scale or image: the grid, the top channel enlarged, its centre unit's field."""
        if session.image is None:
            return (NO_IMAGE, [], [], None) + (None,) * 4 + ("",)
        model, rgb = self._inputs(None, session)
        fm = features.feature_maps(model, rgb, layer)
        channel = int(fm.order[0])
        # the tiles' order, stamped with what they show: a click is answered from the same
        # model, layer and image, or refused (issue 26.2: a stale click never mixes two models)
        shown = {"seen": self._seen(layer, session), "order": [int(c) for c in fm.order]}
        h, w = fm.shape[1:]
        unit = (h // 2, w // 2)
        return ((f"Layer **{layer}**: {fm.shape[0]} channels of {h}x{w}, highest mean activation "
                 "first. Click a channel to enlarge it; click a position in it to see what that "
                 "unit sees."), features.channel_tiles(fm, scale), shown, channel,
                render.enlarge(rgb, features.ENLARGED), *self._unit(fm, channel, scale, unit, rgb, model))

    def _seen(self, layer, session: Session) -> list:
        return [self.ctx.model(session).key, str(layer), str(session.image)]

    @user_errors
    def pick_channel(self, layer: str, scale: str, shown: dict, session: Session, evt: gr.SelectData):
        index = evt.index if isinstance(evt.index, int) and not isinstance(evt.index, bool) else -1
        order = shown.get("order") if isinstance(shown, dict) else None
        if session.image is None or not isinstance(order, list) or not 0 <= index < len(order):
            raise UserError("select one of the channels shown")
        if shown.get("seen") != self._seen(layer, session):
            raise UserError(STALE)
        model, rgb = self._inputs(None, session)
        fm = features.feature_maps(model, rgb, layer)
        channel = fm.channel(order[index])
        h, w = fm.shape[1:]
        return (channel, *self._unit(fm, channel, scale, (h // 2, w // 2), rgb, model))

    @user_errors
    def pick_unit(self, layer: str, scale: str, channel, session: Session, evt: gr.SelectData):
        if session.image is None or channel is None:
            raise UserError("choose an image and a channel first")
        model, rgb = self._inputs(None, session)
        fm = features.feature_maps(model, rgb, layer)
        h, w = fm.shape[1:]
        unit = features.unit_at(evt.index, (h * (features.ENLARGED // max(h, w)),) * 2, (h, w))
        return self._unit(fm, fm.channel(channel), scale, unit, rgb, model)

    def _unit(self, fm, channel: int, scale: str, unit: tuple[int, int], rgb, model):
        """(channel picture with the unit outlined, field on the image, gradient map, words)."""
        picture = features.channel_picture(fm, channel, scale)
        side = picture.shape[0] // fm.shape[1]
        y, x = unit
        picture = render.rectangle(picture, y * side, x * side, (y + 1) * side - 1, (x + 1) * side - 1,
                                   render.BOX, 2)
        field, mass = fields.effective_field(model, rgb, fm.layer, y, x, channel)
        words = (f"Channel **#{channel}**. " + fields.describe(field, mass) + "\n\n<small>Red box: the "
                 "unit's theoretical receptive field (hatched: outside the image, where the network sees "
                 "zero padding). Effective field: how strongly each pixel moves the unit (|gradient|); "
                 "the white square holds half of it.</small>")
        return picture, fields.field_picture(rgb, field), fields.gradient_picture(mass, field), words

    @user_errors
    def page_occlusion(self, target: str, patch, stride, session: Session):
        """(occlusion, integrated gradients, Grad-CAM pictures, the agreement in words)."""
        if session.image is None:
            return None, None, None, NO_IMAGE
        fitted = attribution.fit_stride(patch, stride)  # a stride sent before its slider followed
        pictures, summary, _ = self.occlusion(None, target, patch, fitted, session)
        if fitted != stride:
            lo, hi = attribution.stride_range(int(patch))
            summary = (f"Stride {fitted} used: a {int(patch)}-pixel patch allows strides {lo} to "
                       f"{hi}.\n\n" + summary)
        return (*(p for p, _ in pictures), summary)

    @user_errors
    def page_explain_all(self, layer: str, session: Session):
        """(the ten Grad-CAMs as one 2x5 picture, a sentence)."""
        if session.image is None:
            return None, NO_IMAGE
        model, rgb = self._inputs(None, session)
        maps = why_not.all_class_cams(model, rgb, layer)
        top = maps.predicted
        return why_not.grid_picture(rgb, maps), (
            f"Grad-CAM at **{layer}** for every class, each labelled with its probability: where the "
            f"evidence for each class sits, so you see what would have to be there for another "
            f"answer. All ten share one colour scale (red: the strongest evidence for any class), so "
            f"a class with little evidence stays blue. The network says **{CLASSES[top]}** "
            f"({maps.probabilities[top]:.1%}, framed in red).")


    def _trust_seen(self, session: Session) -> list:
        return [self.ctx.model(session).key, str(session.image)]

    @user_errors
    def page_trust(self, methods, layers, session: Session):
        """(the ranked table, the words, what it was scored for) for the current image."""
        if session.image is None:
            return _trust_rows([]), NO_IMAGE, None
        model, rgb = self._inputs(None, session)
        # the page sends its boxes' lists: none ticked (None) is no choice, not the default
        result = self._rank(model, rgb, [] if methods is None else methods, [] if layers is None else layers)
        return (_trust_rows(faith.table(result)), faith.summary(result),
                self._trust_seen(session))

    @user_errors
    def page_trust_open(self, scored_for, session: Session):
        """The view opens (or the model changes): the test-sample ranking of this model, and the
        image's table cleared if it was scored for another image or model."""
        sample = self._sample(session)
        if sample is None:
            sample_rows, caption = _sample_rows([]), (
                "**On the test sample:** no ranking is shipped for this model (there is one for the "
                "shipped model and for the reference design); the table above scores one image.")
        else:
            sample_rows, caption = _sample_rows(sample.table()), sample.caption()
        if scored_for is not None and scored_for == self._trust_seen(session):
            return gr.skip(), gr.skip(), sample_rows, caption
        return _trust_rows([]), NO_IMAGE if session.image is None else TRUST_PROMPT, sample_rows, caption


def _trust_rows(rows: list[list]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=faith.TABLE_HEADERS)


def _sample_rows(rows: list[list]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=faith.SAMPLE_HEADERS)


def build(ctx: AppContext, shared: Shared, tab: gr.Tab) -> None:
    h = InsideHandlers(ctx)
    layers = layer_names(ctx.models.shipped.model)
    session = shared.session
    with gr.Tabs(overflow_behavior="wrap"):  # as the app's tabs: a phone shows all three, in rows
        with gr.Tab("Feature maps & receptive fields", id="inside_maps",
                    elem_id="inside_maps_view") as maps_tab:
            maps_note = gr.Markdown(NO_IMAGE, elem_id="inside_maps_note")
            with gr.Row():
                layer = gr.Dropdown(layers, value=MAP_LAYER, label="layer", min_width=140,
                                    elem_id="inside_layer")
                scale = gr.Radio(list(features.SCALES), value="shared", label="colour scale",
                                 info="one for the whole layer, or one per channel", min_width=200)
            gallery = gr.Gallery(label="channels (index, value range)", columns=8, height=320,
                                 object_fit="contain", format="png", allow_preview=False,
                                 elem_id="inside_channels")
            pictures = {}
            with gr.Row(equal_height=False):
                for key, title in (("input", "**Input** (32x32)"), ("channel", "**Channel**: click a unit"),
                                   ("field", "**Receptive field** (red)"), ("erf", "**Effective field**")):
                    with gr.Column(min_width=160):
                        gr.Markdown(title)  # above the picture: Gradio's label would cover its corner
                        pictures[key] = gr.Image(show_label=False, format="png", interactive=False,
                                                 height=220, elem_id=f"inside_{key}",
                                                 elem_classes="pixelated")
            input_pic, channel_pic, field_pic, erf_pic = pictures.values()
            words = gr.Markdown(elem_id="inside_words")
        with gr.Tab("Occlusion & gradients", id="inside_occlusion",
                    elem_id="inside_occlusion_view") as occ_tab:
            with gr.Row():
                target = gr.Dropdown([PREDICTED, *CLASSES], value=PREDICTED, label="target class",
                                     min_width=140)
                patch = gr.Slider(*attribution.PATCH_RANGE, attribution.PATCH, step=1,
                                  label="patch (pixels)", elem_id="inside_patch")
                # its range follows the patch (link_stride): only strides the server accepts
                stride = gr.Slider(*attribution.stride_range(attribution.PATCH), attribution.STRIDE,
                                   step=1, label="stride", info=STRIDE_INFO,
                                   elem_id="inside_stride")
            attr_pics = []
            with gr.Row(equal_height=False):
                for key, title in (("occlusion", "**Occlusion**: probability drop when a patch is greyed"),
                                   ("gradients", "**Integrated gradients** (positive part)"),
                                   ("gradcam", "**Grad-CAM** at C4")):
                    with gr.Column(min_width=200):
                        gr.Markdown(title)
                        attr_pics.append(gr.Image(show_label=False, format="png", interactive=False,
                                                  height=256, elem_id=f"inside_attr_{key}"))
            occ_summary = gr.Markdown(elem_id="inside_agreement")
        with gr.Tab("Why not this class?", id="inside_why", elem_id="inside_why_view") as why_tab:
            why_layer = gr.Dropdown(layers, value=why_not.LAYER, label="Grad-CAM layer", min_width=140)
            why_note = gr.Markdown(elem_id="inside_why_note")
            why_picture = gr.Image(show_label=False, format="png", interactive=False,
                                   elem_id="inside_why")
        with gr.Tab("Which map to trust?", id="inside_trust", elem_id="inside_trust_view") as trust_tab:
            gr.Markdown(TRUST_INTRO)
            with gr.Row():
                trust_methods = gr.CheckboxGroup(list(METHODS), value=list(METHODS), label="CAM methods",
                                                 min_width=300, elem_id="inside_trust_methods")
                trust_layers = gr.CheckboxGroup(
                    layers, value=list(faith.DEFAULT_LAYERS), label="target layers",
                    info=f"at most {faith.MAX_MAPS} maps: methods x layers + occlusion, "
                         "integrated gradients and a random map", min_width=300,
                    elem_id="inside_trust_layers")  # 300: a phone puts the two groups one above the other
            trust_run = gr.Button("Score the maps", variant="primary", elem_id="inside_trust_run")
            trust_note = gr.Markdown(TRUST_PROMPT, elem_id="inside_trust_note")
            trust_table = gr.Dataframe(_trust_rows([]), label="this image: best first", interactive=False,
                                       wrap=True, elem_id="inside_trust_table")
            sample_note = gr.Markdown(elem_id="inside_trust_sample_note")
            sample_table = gr.Dataframe(_sample_rows([]), label="the test sample: best mean first",
                                        interactive=False, wrap=True, elem_id="inside_trust_sample")
    order, channel = gr.State({"seen": None, "order": []}), gr.State(None)
    trust_for = gr.State(None)  # [model key, image] the table was scored for

    # the named API on a button nobody sees; hidden inputs pass a client's values untouched to
    # the package's checks (visible sliders and dropdowns would answer with Gradio's messages).
    # Each endpoint has its own inputs, whose values are its defaults: the API page shows them
    # and a client may send the image alone (None, or a left-out value, is the default too).
    with gr.Group(visible=False):
        api = gr.Button(visible=False)
        api_image = image_input(visible=False)
        hidden_text, hidden_number = (lambda v: gr.Textbox(v, visible=False)), (lambda v: gr.Number(v, visible=False))
        fm_in = [hidden_text(MAP_LAYER), hidden_text("shared")]
        rf_in = [hidden_text(RF_LAYER), hidden_number(0), hidden_number(0), hidden_number(None)]
        occ_in = [hidden_text(PREDICTED), hidden_number(attribution.PATCH), hidden_number(attribution.STRIDE)]
        all_in = [hidden_text(why_not.LAYER)]
        trust_in = [hidden_text("all"), hidden_text(",".join(faith.DEFAULT_LAYERS))]
        api_tiles = gr.Gallery(visible=False, format="png")
        api_pics = [gr.Image(visible=False, format="png") for _ in range(2)]
        api_text, api_json = gr.Markdown(visible=False), gr.JSON(visible=False)
    api.click(h.feature_maps, [api_image, *fm_in, session], [api_tiles, api_json], api_name="feature_maps")
    api.click(h.receptive_field, [api_image, *rf_in, session], [*api_pics, api_text, api_json],
              api_name="receptive_field")
    api.click(h.occlusion, [api_image, *occ_in, session], [api_tiles, api_text, api_json],
              api_name="occlusion")
    api.click(h.explain_all, [api_image, *all_in, session], [api_tiles, api_json], api_name="explain_all")
    api.click(h.faithfulness, [api_image, *trust_in, session], [api_text, api_json], api_name="faithfulness")

    # each view computes when its sub-tab opens, or when the Inside tab opens on it (the image
    # or model may have changed meanwhile): `shown` remembers the open sub-tab
    shown = gr.State("maps")
    unit_outputs = [channel_pic, field_pic, erf_pic, words]
    views = {"maps": (h.page_maps, [layer, scale],
                      [maps_note, gallery, order, channel, input_pic, *unit_outputs]),
             "occlusion": (h.page_occlusion, [target, patch, stride], [*attr_pics, occ_summary]),
             "why": (h.page_explain_all, [why_layer], [why_picture, why_note])}
    # a new patch first moves the stride slider's range (and value) to what that patch allows,
    # then the view computes with both. On .change, not .release: a typed patch is released
    # before its new value is sent
    patch_moved = patch.change(link_stride, [patch, stride], [stride], api_visibility="private",
                               trigger_mode="always_last")
    for name, sub_tab, changes in (("maps", maps_tab, [layer.input, scale.input]),
                                   ("occlusion", occ_tab, [target.input, stride.release]),
                                   ("why", why_tab, [why_layer.input])):
        fn, inputs, outputs = views[name]
        sub_tab.select(lambda name=name: name, None, shown, api_visibility="private")
        gr.on([sub_tab.select, *changes], fn, [*inputs, session], outputs, api_visibility="private",
              trigger_mode="always_last")
        tab.select(_if_shown(name, fn, len(outputs)), [shown, *inputs, session], outputs,
                   api_visibility="private", trigger_mode="always_last")
        # the session's model changed (activate, restore): the open view shows the new model
        shared.refreshers.append((_if_shown(name, fn, len(outputs), quiet=True), [shown, *inputs, session],
                                  outputs))
    # "which map to trust?" scores on a click only (seconds of work); opening it shows the shipped
    # test-sample ranking, and clears a table scored for another image or model
    trust_outputs = [trust_table, trust_note, sample_table, sample_note]
    trust_tab.select(lambda: "trust", None, shown, api_visibility="private")
    trust_tab.select(h.page_trust_open, [trust_for, session], trust_outputs, api_visibility="private")
    tab.select(_if_shown("trust", h.page_trust_open, len(trust_outputs)), [shown, trust_for, session],
               trust_outputs, api_visibility="private")
    shared.refreshers.append((_if_shown("trust", h.page_trust_open, len(trust_outputs), quiet=True),
                              [shown, trust_for, session], trust_outputs))
    trust_run.click(h.page_trust, [trust_methods, trust_layers, session], [trust_table, trust_note, trust_for],
                    api_visibility="private", trigger_mode="once")
    patch_moved.then(h.page_occlusion, [target, patch, stride, session], [*attr_pics, occ_summary],
                     api_visibility="private", trigger_mode="always_last")
    gallery.select(h.pick_channel, [layer, scale, order, session], [channel, *unit_outputs],
                   api_visibility="private")
    channel_pic.select(h.pick_unit, [layer, scale, channel, session], unit_outputs,
                       api_visibility="private")


def link_stride(patch, stride):
    """The stride slider for a new patch: its range is what the patch allows, its value the
    nearest allowed one (a slider value Gradio sends is within its range, so never refused)."""
    try:
        lo, hi = attribution.stride_range(int(attribution.whole(patch, "patch", *attribution.PATCH_RANGE)))
    except ValueError:
        return gr.skip()
    if lo == hi:  # one stride only (a 2-pixel patch): Gradio needs minimum < maximum, so show it fixed
        return gr.update(minimum=lo - 1, maximum=hi, value=hi, interactive=False,
                         info=f"a {int(patch)}-pixel patch allows stride {hi} only")
    return gr.update(minimum=lo, maximum=hi, value=attribution.fit_stride(patch, stride), interactive=True,
                     info=STRIDE_INFO)


def _if_shown(name: str, fn, n_outputs: int, quiet: bool = False):
    """`fn` when sub-tab `name` is the open one, else leave its outputs as they are; `quiet`: an
    error also leaves them (a refresh nobody asked for shows no message)."""
    def run(shown, *args):
        skip = tuple(gr.skip() for _ in range(n_outputs))
        if shown != name:
            return skip
        try:
            return fn(*args)
        except gr.Error:
            if quiet:
                return skip
            raise
    return run
