"""Augmentation lab: the training augmentations on the current image, live.

The controls are generated from `AugmentConfig`'s field metadata (range, step, label, group), so
a new augmentation parameter is added in `cifar_s9/data/augment.py` only. Min/max pairs are kept in
order, visibly: the max slider's range starts at the min (the control the user moved wins). A
typed value outside a slider's range reaches the handler as typed and gets one sentence in the
status line above the grid (Gradio's own check would raise once for each event it reaches).

A link holds the settings (`app.links`): the page reads its address on load and sets the
controls (or says in one line why it cannot); the "link to these settings" box and the pipeline's
albumentations JSON follow every change.
Public API: /augment_preview (pure: image + settings in, gallery out).
"""
from __future__ import annotations

import inspect
from abc import ABCMeta
from dataclasses import fields

import gradio as gr
import numpy as np

from ..data.augment import GROUPS, AugmentConfig, min_max_pairs, validate
from ..app import links, uploads
from ..app.lab import AUG_FIELDS, augment_grid, clamp_pairs, link_pair, out_of_range, pipeline_file, snippet
from ..app.session import Session
from ..app.uinput import MAX_SEED, MAX_VIEWS, coerce_augment, whole_number
from .common import AppContext, Shared, image_input, page_base, query_pairs, to_rgb32, user_errors
from ..errors import UserError


def augment_config(*values) -> AugmentConfig:
    """Control values in AugmentConfig field order -> a validated AugmentConfig."""
    return validate(coerce_augment(dict(zip(AUG_FIELDS, values))))


def default_values() -> list:
    return [getattr(AugmentConfig(), name) for name in AUG_FIELDS]


@user_errors
def augment_preview(image, *values_n_seed) -> list[tuple[np.ndarray, str]]:
    """The original plus n augmented versions, as (image, caption) pairs for a gallery.

    Arguments: the image, then one value per AugmentConfig field (in field order), n, seed.
    """
    *values, n, seed = _pad(values_n_seed)
    grid, _ = augment_grid(to_rgb32(image), augment_config(*values), n, seed)
    return grid


def _api_signature() -> inspect.Signature:
    """augment_preview(image, flip_p=..., ..., n=11, seed=0): Gradio names the API's keyword
    arguments after the function's parameters, and these come from AugmentConfig's fields."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    names_defaults = [*zip(AUG_FIELDS, default_values()), ("n", 11), ("seed", 0)]
    return inspect.Signature([inspect.Parameter("image", kind)]
                             + [inspect.Parameter(n, kind, default=d) for n, d in names_defaults])


augment_preview.__signature__ = _api_signature()


def _pad(values: tuple) -> list:
    """API callers may leave trailing arguments out, or send None: defaults, then n=11, seed=0."""
    defaults = [*default_values(), 11, 0]
    values = [d if v is None else v for v, d in zip(values, defaults)]
    return [*values, *defaults[len(values):]][:len(defaults)]


def lab_update(image, *values_n_seed_session):
    """For the page: (grid, status, sampled parameters, code, session); never raises for a user
    mistake: the one status line says what is wrong, and the last good grid stays."""
    *values, n, seed, session = values_n_seed_session
    typed = out_of_range(dict(zip(AUG_FIELDS, values)))
    if typed:
        return gr.skip(), f"⚠️ **Cannot show this:** {typed}", None, gr.skip(), session
    values_by_name, moved = clamp_pairs(dict(zip(AUG_FIELDS, values)))
    try:
        cfg = validate(coerce_augment(values_by_name))
        n = whole_number(n, "augmented versions", 1, MAX_VIEWS)
        seed = whole_number(seed, "seed", 0, MAX_SEED)
        code = snippet(cfg, seed, n)
        if image is None:
            return gr.skip(), "Choose an image (here or on the Classify tab).", None, code, session.with_aug(cfg)
        grid, applied = augment_grid(to_rgb32(image), cfg, n, seed)
    except UserError as exc:  # InvalidAugmentConfig, ImageInputError, a bad number
        return gr.skip(), f"⚠️ **Cannot show this:** {exc}", None, gr.skip(), session
    status = f"✅ Settings valid; showing {n} draws with seed {seed}."
    if moved:
        status = f"↔️ {moved} " + status
    return grid, status, applied, code, session.with_aug(cfg).with_image(str(image))


def _as_sent(self, payload):
    return payload


# A gr.Slider whose value reaches the handler as the visitor typed it: `lab_update` says what is
# out of range once, in the status line (gr.Slider's own check raises "Value 99 is greater than
# maximum value 32." in every event the value reaches: two toasts for one typo). A class, since
# Gradio rebuilds a component from its class after each gr.update; made without running
# ComponentMeta.__new__, which would write a .pyi stub next to this module (it only wraps
# __init__ and EVENTS, which are inherited from gr.Slider ready-made). `is_template`: the page
# draws it as gr.Slider.
LabSlider = ABCMeta.__new__(type(gr.Slider), "LabSlider", (gr.Slider,),
                            {"preprocess": _as_sent, "is_template": True, "__module__": __name__,
                             "__qualname__": "LabSlider", "__doc__": "gr.Slider, unchecked"})


def clamp_partner(changed: str):
    """`.input` handler of one control of a min/max pair: moves the partner if needed and starts
    the max slider's range at the min (values out of range are left to the status line)."""
    lo, hi = next(p for p in min_max_pairs() if changed in p)

    def handler(a, b):
        linked = link_pair(lo, hi, a, b, changed)
        if linked is None:
            return gr.skip(), gr.skip()
        a, b, floor = linked
        return a, gr.update(value=b, minimum=floor)
    handler.__name__ = f"clamp_{changed}"
    return handler


def control_updates(values: dict) -> list:
    """Updates that put `values` (valid, every field) in the controls, each max slider's range
    starting at its min's value."""
    floors = {hi: link_pair(lo, hi, values[lo], values[hi], hi)[2] for lo, hi in min_max_pairs()}
    return [gr.update(value=values[name], minimum=floors[name]) if name in floors else values[name]
            for name in AUG_FIELDS]


def reset_controls() -> list:
    """Every control back to its default, and each max slider's range back to start at its min's."""
    return control_updates(dict(zip(AUG_FIELDS, default_values())))


LAB_KEYS = (*AUG_FIELDS, *links.LAB_DEFAULTS)


def open_link(session: Session, request: gr.Request = None):
    """On page load: the lab's settings in the page's address (a shared link) go into the
    controls and this session (the Train and Experiments tabs use them), and the lab opens if the
    link names it. Returns (tab, *controls, n, seed, note, session); a link it cannot apply
    changes nothing and the note says why, in one line."""
    session = session if isinstance(session, Session) else Session()
    unchanged = [gr.skip()] * (len(AUG_FIELDS) + 2)
    pairs = query_pairs(request)
    tab = gr.Tabs(selected="augment") if links.named_tab(pairs) == "augment" else gr.skip()
    try:
        query = links.read_query(pairs)
        if not query.has_any(LAB_KEYS):
            return tab, *unchanged, gr.skip(), gr.skip()
        lab = links.decode_lab(query)
    except links.LinkError as exc:  # the tab still opens: the visitor reads why there
        return tab, *unchanged, links.refused_note(exc), gr.skip()
    note = links.applied_note("augmentation settings", query)
    return (tab, *control_updates(lab.aug.to_dict()), lab.n, lab.seed, note, session.with_aug(lab.aug))


@user_errors
def share(session: Session, n, seed, request: gr.Request = None):
    """(the link to the lab with this session's settings, the pipeline's albumentations JSON
    file), after every change; the link waits while n or the seed is not valid."""
    aug = session.aug if isinstance(session, Session) else AugmentConfig()
    json_file = str(pipeline_file(aug, uploads.upload_folder()))
    try:
        n = whole_number(n, "augmented versions", 1, MAX_VIEWS)
        seed = whole_number(seed, "seed", 0, MAX_SEED)
    except UserError:
        return gr.skip(), json_file
    return links.link(page_base(request), links.encode_lab(aug, n, seed)), json_file


def reroll(seed) -> int:
    try:
        seed = whole_number(seed, "seed", 0, MAX_SEED)
    except UserError:
        seed = 0
    return int(np.random.default_rng(seed + 1).integers(0, 2**31 - 1))


def send_to_train(session: Session):
    """The Train tab always trains with the session's lab settings; this just goes there."""
    gr.Info("The Train tab uses these augmentation settings.")
    return gr.Tabs(selected="train")


def current_image(session: Session):
    """The lab shows the session's current image when the tab opens (if it has one)."""
    return session.image if session.image else gr.skip()


def build_controls() -> list:
    """One control per AugmentConfig field, grouped in accordions by the field metadata."""
    d = AugmentConfig()
    by_name = {}
    floors = {hi: lo for lo, hi in min_max_pairs()}  # a max slider starts at its min's value
    infos = {hi: f"from {lo} up" for lo, hi in min_max_pairs()}
    by_group = {g: [f for f in fields(AugmentConfig) if f.metadata.get("group") == g] for g in GROUPS}
    for group, group_fields in by_group.items():
        with gr.Accordion(group, open=group in GROUPS[:2]):
            with gr.Row():
                for f in group_fields:
                    meta = f.metadata
                    if "choices" in meta:
                        by_name[f.name] = gr.Dropdown(list(meta["choices"]), value=getattr(d, f.name),
                                                      label=meta["label"], min_width=150)
                    else:
                        lo, hi = meta["range"]
                        lo = getattr(d, floors[f.name]) if f.name in floors else lo
                        by_name[f.name] = LabSlider(lo, hi, getattr(d, f.name), step=meta["step"],
                                                    label=meta["label"], elem_id=f.name, min_width=150,
                                                    info=infos.get(f.name))
    return [by_name[name] for name in AUG_FIELDS]


def build(ctx: AppContext, shared: Shared, tab: gr.Tab) -> None:
    examples = shared.examples
    # the controls on the left, the grid on the right; the grid's column stays in view while the
    # sliders scroll (app.css: sticky; on a phone it comes first and sticks to the top)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280):
            aug_image = image_input(label="Image (the current image from Classify, or your own)",
                                    height=200, value=examples[3] if len(examples) > 3 else None,
                                    elem_id="aug_image")
            with gr.Row():
                n_views = LabSlider(1, MAX_VIEWS, 11, step=1, label="augmented versions", min_width=150)
                # no minimum= here: Gradio would refuse a negative seed with its own toast and a
                # traceback in the log; lab_update says it once in the status line instead
                seed = gr.Number(0, precision=0, label="seed", min_width=120)
            with gr.Row():
                reroll_btn = gr.Button("🎲 Re-roll", min_width=100)
                reset_btn = gr.Button("Reset to defaults", min_width=100)
            controls = build_controls()
            send_btn = gr.Button("Use these settings in the Train tab ➜", variant="primary")
        with gr.Column(scale=2, min_width=280, elem_id="aug_view"):
            link_note = gr.Markdown(elem_id="aug_link_note")  # what a shared link set (or why not)
            status = gr.Markdown(elem_id="aug_status")  # the one status line, above the grid
            grid = gr.Gallery(label="original + augmented", columns=6, height="auto", format="png",
                              object_fit="contain", elem_id="aug_grid", elem_classes="pixelated",
                              allow_preview=False)
            # in view beside the grid (the column is sticky): what the visitor sees is what they share
            link = gr.Textbox(label="link to these settings (copy it: the page opens with them)",
                              buttons=["copy"], interactive=False, elem_id="aug_link")
    with gr.Accordion("parameters sampled for each view", open=False):
        applied = gr.JSON(show_label=False)
    # the pipeline twice, beside each other: as Python to read and adapt, as albumentations' own
    # JSON to load (`A.load`)
    json_file = gr.DownloadButton("⬇️ Pipeline as albumentations JSON (A.load)", elem_id="aug_json", size="md")
    code = gr.Code(label="Python: this grid on your own picture (crop, resize, seeded pipeline)",
                   language="python")
    session = shared.session
    inputs = [aug_image, *controls, n_views, seed]
    api = gr.Button(visible=False, elem_id="augment_api")  # the named API (see classify.py)
    api.click(augment_preview, inputs, [grid], api_name="augment_preview")
    triggers = [aug_image.change, n_views.change, seed.change, *[c.change for c in controls]]
    shown = [grid, status, applied, code, session]
    gr.on(triggers, lab_update, [*inputs, session], shown, api_visibility="private", trigger_mode="always_last"
          ).then(share, [session, n_views, seed], [link, json_file], api_visibility="private")
    # the link first, then the first grid with its settings (a plain visit: the defaults)
    shared.demo.load(open_link, [session], [shared.tabs, *controls, n_views, seed, link_note, session],
                     api_visibility="private"
                     ).then(lab_update, [*inputs, session], shown, api_visibility="private"
                            ).then(share, [session, n_views, seed], [link, json_file], api_visibility="private")
    for lo, hi in min_max_pairs():
        a, b = controls[AUG_FIELDS.index(lo)], controls[AUG_FIELDS.index(hi)]
        a.input(clamp_partner(lo), [a, b], [a, b], api_visibility="private")
        b.input(clamp_partner(hi), [a, b], [a, b], api_visibility="private")
    reroll_btn.click(reroll, [seed], [seed], api_visibility="private")
    reset_btn.click(reset_controls, None, controls, api_visibility="private")
    tab.select(current_image, [session], [aug_image], api_visibility="private")
    send_btn.click(send_to_train, [session], [shared.tabs], api_visibility="private")
