"""The tabs' handlers, called as plain functions (no server), and the per-session state."""
import copy
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from cifar_s9.data.augment import AugmentConfig, min_max_pairs
from cifar_s9.data.cifar import CLASSES, Split
from cifar_s9.app.jobs import Snapshot, TrainRequest
from cifar_s9.app.serving import ModelChoice
from cifar_s9.app.session import Session
from cifar_s9.data.app_data import TrainingData
from cifar_s9.ui import augment_lab
from cifar_s9.ui.classify import ClassifyHandlers
from cifar_s9.ui.header import HeaderHandlers
from cifar_s9.ui.mistakes import MistakesHandlers
from cifar_s9.ui.model import ModelHandlers
from cifar_s9.ui.train import TrainHandlers, render_progress, train_request
from waiting import HANG_S

CAT = "assets/examples/cat.jpg"
S0 = Session()
A, B = SimpleNamespace(session_hash="visitor-a"), SimpleNamespace(session_hash="visitor-b")  # gr.Request


@pytest.fixture(scope="module")
def app(weights_path, tmp_path_factory):
    import os
    os.environ.pop("CIFAR_S9_DATA_DIR", None)
    import app as app_module
    ctx = app_module.configure(weights=weights_path, runs_dir=tmp_path_factory.mktemp("runs"))
    return SimpleNamespace(module=app_module, ctx=ctx, classify=ClassifyHandlers(ctx),
                           train=TrainHandlers(ctx), mistakes=MistakesHandlers(ctx),
                           model=ModelHandlers(ctx), header=HeaderHandlers(ctx))


def tiny_data(seed=0):
    rng = np.random.default_rng(seed)
    imgs, labels = rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 48)
    return lambda: TrainingData(Split(imgs[:32], labels[:32], "tr"), Split(imgs[32:], labels[32:], "te"),
                                "tiny", True)


def train_one(app, session, request, epochs=1):
    app.ctx.jobs.load_data = tiny_data()
    *_, last = app.train.start("default", epochs, 0.05, 32, 32, session, request)
    return last


def test_demo_is_built_with_named_endpoints_only(app):
    demo = app.module.demo
    names = {d.api_name for d in demo.fns.values() if d.api_visibility == "public"}
    assert names == {"classify", "explain", "compare", "augment_preview",
                     "feature_maps", "receptive_field", "occlusion", "explain_all", "faithfulness",  # Inside tab
                     "experiment_start", "experiment_status", "experiment_stop", "runs",
                     "runs_overlay"}  # Experiments tab
    assert app.module.__doc__  # what the file is and which endpoints it names


def test_the_session_state_is_small_and_deep_copies_cheaply():
    s = Session().with_image("/tmp/gradio/x.png").with_model(ModelChoice("ab" * 16, "run x"))
    clone = copy.deepcopy(s)
    assert clone == s and clone is not s
    assert len(repr(s)) < 1200  # a key and a few settings, never a network


def test_classify_view_and_note(app):
    top = app.classify.classify(CAT, 3, S0)
    assert len(top) == 3 and set(top) <= set(CLASSES)
    session, view, label, note, cam, caption = app.classify.view(CAT, 3, "GradCAM", "C4", "predicted", 0.5, S0)
    assert session.image == CAT and S0.image is None  # a copy: the old state is untouched
    assert view.shape == (256, 256, 3) and list(label) == list(top)
    assert "ten CIFAR-10 classes" in note and "32x32" in note
    assert cam.shape[0] == 256 and cam.shape[1] > 256  # the colour bar at the right
    assert "GradCAM, XGradCAM and HiResCAM give the same map" in caption
    assert app.classify.view(None, 3, "GradCAM", "C4", "predicted", 0.5, S0)[1] is None


def test_explain_and_caption(app):
    out = app.classify.explain(CAT, "GradCAM++", "C3.conv2", "dog", 0.3, S0)
    assert out.shape[0] == 256 and out.dtype == np.uint8
    caption = app.classify.explain_caption(CAT, "GradCAM", "C3", "dog", S0)
    assert "why not dog" in caption or "the prediction" in caption
    assert "same map" not in caption  # only at C4
    assert "ignores the class" in app.classify.explain_caption(CAT, "EigenCAM", "C4", "predicted", S0)


@pytest.mark.parametrize("bad", [None, b"nonsense", "/no/such.png"])
def test_bad_images_become_gr_errors(app, bad):
    with pytest.raises(gr.Error):
        app.classify.classify(bad, 3, S0)
    with pytest.raises(gr.Error):
        app.classify.view(bad or b"x", 3, "GradCAM", "C4", "predicted", 0.5, S0)


def test_bad_explain_settings_become_gr_errors(app):
    with pytest.raises(gr.Error, match="unknown layer"):
        app.classify.explain(CAT, "GradCAM", "C9", "predicted", 0.5, S0)
    with pytest.raises(gr.Error, match="unknown class"):
        app.classify.explain(CAT, "GradCAM", "C4", "unicorn", 0.5, S0)


def test_augment_preview_and_lab_update(app):
    values = augment_lab.default_values()
    grid = augment_lab.augment_preview(CAT, *values, 5, 0)
    assert len(grid) == 6 and grid[0][1] == "original"
    assert len(augment_lab.augment_preview(CAT)) == 12  # API callers may leave the rest out
    out_grid, status, applied, code, session = augment_lab.lab_update(CAT, *values, 5, 0, S0)
    assert status.startswith("✅") and len(applied) == 5 and "seed=0" in code
    assert session.image == CAT and session.aug == AugmentConfig()
    bad = list(values)
    bad[augment_lab.AUG_FIELDS.index("dropout_p")] = 7  # out of range
    out_grid, status, applied, code, same = augment_lab.lab_update(CAT, *bad, 5, 0, session)
    assert "dropout_p" in status and applied is None and same is session  # message, no raise
    with pytest.raises(gr.Error, match="dropout_p"):
        augment_lab.augment_preview(CAT, *bad, 5, 0)
    assert augment_lab.lab_update(None, *values, 5, 0, S0)[1].startswith("Choose an image")


def test_min_above_max_is_clamped_with_one_note(app):
    values = augment_lab.default_values()
    values[augment_lab.AUG_FIELDS.index("holes_min")] = 4  # holes_max is 1
    grid, status, applied, code, session = augment_lab.lab_update(CAT, *values, 3, 0, S0)
    assert "holes_max raised to 4" in status and session.aug.holes_max == 4
    lowered, same = augment_lab.clamp_partner("holes_max")(4, 2)  # the moved max wins
    assert lowered == 2 and same["value"] == 2 and same["minimum"] == 2
    kept, raised = augment_lab.clamp_partner("holes_min")(4, 2)
    assert kept == 4 and raised["value"] == 4 and raised["minimum"] == 4  # max's range starts at 4
    wider = augment_lab.clamp_partner("holes_min")(3, 9)
    assert wider[0] == 3 and wider[1]["value"] == 9 and wider[1]["minimum"] == 3


def test_a_typed_value_out_of_range_is_one_status_line_and_moves_nothing(app):
    values = augment_lab.default_values()
    values[augment_lab.AUG_FIELDS.index("hole_height_max")] = 99  # typed in the slider's box
    grid, status, applied, code, session = augment_lab.lab_update(CAT, *values, 3, 0, S0)
    assert status == ("⚠️ **Cannot show this:** hole_height_max 99 is above its maximum 32: "
                      "choose a value from 1 to 32.")
    assert session is S0 and applied is None
    assert augment_lab.clamp_partner("hole_height_max")(8, 99) == (gr.skip(), gr.skip())
    assert augment_lab.clamp_partner("hole_height_min")(-5, 8) == (gr.skip(), gr.skip())
    slider = augment_lab.LabSlider(1, 32, 8)
    assert slider.preprocess(99) == 99 and slider.get_block_name() == "slider"  # no toast of Gradio's
    rebuilt = type(slider)(**{**slider.constructor_args, "minimum": 8})  # as gr.update does
    assert rebuilt.preprocess(99) == 99


def test_reset_starts_each_max_slider_at_its_min_again(app):
    updates = dict(zip(augment_lab.AUG_FIELDS, augment_lab.reset_controls()))
    assert updates["hole_height_max"]["minimum"] == AugmentConfig().hole_height_min
    assert updates["holes_max"]["value"] == AugmentConfig().holes_max
    assert updates["flip_p"] == AugmentConfig().flip_p


def test_controls_come_from_the_config_metadata():
    from dataclasses import fields
    with gr.Blocks():
        controls = augment_lab.build_controls()
    assert len(controls) == len(fields(AugmentConfig))
    floors = {hi: lo for lo, hi in min_max_pairs()}
    for control, f in zip(controls, fields(AugmentConfig)):
        if "range" in f.metadata:
            lo, hi = f.metadata["range"]
            if f.name in floors:  # a max slider starts at its min's value (linked pairs)
                lo = getattr(AugmentConfig(), floors[f.name])
            assert (control.minimum, control.maximum) == (lo, hi)
            assert control.label == f.metadata["label"]


def test_reroll_and_send_to_train(app):
    assert augment_lab.reroll(0) != 0 and augment_lab.reroll(0) == augment_lab.reroll(0)
    assert augment_lab.reroll(-5) == augment_lab.reroll(0)  # a bad seed does not raise


def test_train_request_and_progress():
    req = train_request("default", 2, 0.1, 128, 2000, AugmentConfig(dropout_p=1.0))
    assert req.train.subset == 2000 and req.aug.dropout_p == 1.0 and req.train.log_every == 1
    snap = Snapshot(message="epoch 1 of *.png", device="CPU (2 threads)", step=5, total_steps=10, eta_s=12,
                    epochs=[{"epoch": 1, "train_loss": 2.0, "train_acc": 0.2, "test_loss": 2.1, "test_acc": 0.2}],
                    steps=[(5, 2.0)], data_note="CIFAR-10 is not available")
    text, fig = render_progress(snap)
    assert "50%" in text and "ETA 12 s" in text and "CPU" in text and len(fig.data) == 5
    assert r"\*.png" in text  # markdown escaped: renders as *.png


def test_the_train_tab_starts_from_the_app_recipe_the_cli_trains():
    """The tab's controls replace only their own fields of `recipes.APP_TRAIN`, the config that
    `train --recipe app` uses; every other field (optimizer, smoothing, EMA...) is the recipe's."""
    from dataclasses import fields
    from cifar_s9.train.recipes import APP_TRAIN, get_recipe

    assert get_recipe("app").train is APP_TRAIN and TrainRequest().train is APP_TRAIN
    req = train_request("default", 7, 0.05, 64, 640, AugmentConfig())
    set_by_the_tab = {"epochs": 7, "lr": 0.05, "batch_size": 64, "subset": 640, "log_every": 1}
    for field in fields(APP_TRAIN):
        expected = set_by_the_tab.get(field.name, getattr(APP_TRAIN, field.name))
        assert getattr(req.train, field.name) == expected, field.name
    defaults = train_request("default", APP_TRAIN.epochs, APP_TRAIN.lr, APP_TRAIN.batch_size,
                             APP_TRAIN.subset, AugmentConfig()).train
    assert (defaults.epochs, defaults.subset, defaults.log_every) == (2, 2000, 1)  # 15 steps an epoch


def test_a_run_belongs_to_its_session(app):
    """Session A trains and activates; B keeps the shipped model and cannot stop A's run."""
    a, b = Session(), Session()
    text, fig, weights, button, slot, download, _token = train_one(app, a, A)
    assert "finished 1 epochs" in text and weights.endswith("model.safetensors")
    assert download == gr.skip()  # `bundle` fills it once the stream has ended
    run = app.train.my_run(A)  # the slot's record of A's run: no client sends its name
    assert button["interactive"] is True and run is not None and str(app.ctx.jobs.runs_dir) not in text
    assert app.train.my_run(B) is None
    assert "Nothing of yours is running" in app.train.stop(B)
    with pytest.raises(gr.Error, match="no finished run"):
        app.train.activate(a, B)  # B's session has no run, whatever state it sends
    with pytest.raises(ValueError, match="another visitor"):
        app.ctx.jobs.trained_weights(run, B.session_hash)  # and the run's name alone is not enough
    mine = app.train.bundle(A)
    assert mine["interactive"] is True and mine["value"].endswith(f"cifar_s9-run-{run}.zip")
    theirs = app.train.bundle(B)  # another visitor: nothing
    assert theirs["interactive"] is False and theirs["value"] is None
    message, banner, a = app.train.activate(a, A)
    assert "your model" in banner and run in message and not a.model.shipped
    assert app.ctx.model(a).model is not app.ctx.model(b).model
    assert app.ctx.model(b) is app.ctx.models.shipped  # the other session is untouched
    assert app.classify.classify(CAT, 10, b) == app.classify.classify(CAT, 10, Session())
    with pytest.raises(gr.Error, match="no finished run"):
        app.train.activate(b, B)
    # Mistakes listed for A's run: after restoring, a click on one of those tiles is refused
    # (its label is the run's, the caption would be the shipped model's), and the refresh lists
    # the shipped model's tiles, with its accuracy
    _, _, listed, *_ = app.mistakes.view("", "", "most confident first", a, 20)
    banner, a = app.header.restore(a)
    assert a.model.shipped and "shipped model" in banner
    if listed["indices"]:
        with pytest.raises(gr.Error, match="listed for the model you used before"):
            app.mistakes.cams(listed, a, SimpleNamespace(index=0))
    note, _, again, *_, cam_true, caption = app.mistakes.refresh("", "", "most confident first", listed, a)
    shipped = app.ctx.evals.get(app.ctx.models.shipped, app.ctx.test_data().split)
    assert again["model"] == "shipped" and f"**Accuracy {shipped.accuracy:.2%}**" in note
    assert cam_true is None and "Select an image" in caption
    assert all(isinstance(x, type(gr.skip())) for x in app.mistakes.refresh("", "", "", again, a))


def test_only_the_owner_can_stop_a_running_run(app):
    import threading
    gate = threading.Event()  # holds the run in its data loading until the stops are done
    real = tiny_data()
    # (a fixed 10 s here let the run go on, with no data, on a busy machine: issue 23)
    app.ctx.jobs.load_data = lambda: (gate.wait(HANG_S), real())[1]
    owner = Session()
    stream = app.train.start("default", 1, 0.05, 32, 32, owner, A)
    try:
        first = next(stream)
        assert app.ctx.jobs.busy and "your" in first[4]
        assert "another visitor" in app.train.stop(B) and "another visitor" in app.train.slot(B)
        assert "Stopping" in app.train.stop(A)
    finally:
        gate.set()
    *_, last = stream
    assert not app.ctx.jobs.busy and "nothing was saved" in last[0]
    with pytest.raises(gr.Error, match="no trained weights|0 epochs"):
        app.train.activate(owner, A)  # stopped at 0 epochs: nothing to activate


def test_the_run_stream_never_writes_the_session_and_a_reload_still_owns_the_run(app):
    """Before: every progress update (one a second) sent the session the run started with, so a
    lab setting or model chosen in another tab during the run was undone a second later; sending
    it once instead lost the run to a page-load handler that wrote the session after it."""
    app.ctx.jobs.load_data = tiny_data()
    outputs = list(app.train.start("default", 2, 0.05, 32, 32, Session(), A))
    assert len(outputs) >= 2 and all(len(out) == 7 for out in outputs)  # progress, then the end
    assert not any(isinstance(value, Session) for out in outputs for value in out)
    token = outputs[0][-1]
    reloaded = SimpleNamespace(session_hash="visitor-a-reloaded")
    *_, last = app.train.attach(token, reloaded)  # the same browser, a new session
    assert "finished 2 epochs" in last[0] and app.train.my_run(reloaded) == app.train.my_run(A)
    message, banner, _ = app.train.activate(Session(), reloaded)
    assert "your model" in banner


def test_busy_message(app, monkeypatch):
    assert app.ctx.jobs.acquire_slot("visitor-b", "run")  # as if another visitor's run held the slot
    try:
        out = list(app.train.start("default", 1, 0.05, 32, 32, Session()))
    finally:
        app.ctx.jobs.release_slot()
    assert len(out) == 1 and "Busy" in out[0][0]


def test_the_train_tab_shows_an_experiment_holding_the_slot(app):
    assert "slot free" in app.train.slot(A)
    assert app.ctx.jobs.acquire_slot("visitor-b")  # an A/B experiment's arms, started by B
    try:
        theirs, mine = app.train.slot(A), app.train.slot(B)
    finally:
        app.ctx.jobs.release_slot()
    assert "busy" in theirs and "experiment" in theirs and "another visitor" in theirs
    assert "**your** A/B experiment" in mine
    assert "slot free" in app.train.slot(A)


def test_invalid_training_settings(app):
    with pytest.raises(gr.Error, match="Invalid training settings"):
        list(app.train.start("default", 1, 50.0, 32, 32, Session()))


def test_mistakes_view_and_cams(app):
    note, gallery, listed, confusion, per_class, banner = app.mistakes.view("", "", "most confident first", S0, 20)
    assert "bundled sample" in note and "Accuracy" in note and f"showing {len(gallery)}" in note
    assert len(gallery) == len(listed["indices"]) <= 20 and listed["model"] == "shipped"
    accuracy = note.split("**Accuracy ")[1].split("**")[0]
    assert f": {accuracy} on a " in banner and "-image sample of the test set" in banner  # one number
    assert app.header.banner(S0) == banner  # the banner reads the same evaluation from now on
    assert gallery  # an untrained network gets most of the sample wrong
    assert "→" in gallery[0][1] and gallery[0][1].endswith("%") and gallery[0][0].shape == (96, 96, 3)
    pred_cam, true_cam, caption = app.mistakes.cams(listed, S0, SimpleNamespace(index=0))
    assert pred_cam.shape == true_cam.shape and "true" in caption
    with pytest.raises(gr.Error):
        app.mistakes.cams(listed, S0, SimpleNamespace(index=10_000))
    for hostile in ([1, 2, 3], None, {"model": "shipped", "indices": "abc"}, {"model": "shipped"}):
        with pytest.raises(gr.Error, match="select one of the images"):
            app.mistakes.cams(hostile, S0, SimpleNamespace(index=0))
    note, gallery, *_ = app.mistakes.view("cat", "dog", "least confident first", S0, 60)
    assert all(g[1].startswith("cat→dog") for g in gallery)
    assert (f"{len(gallery)} mistakes of true class cat predicted as dog" in note
            or "No mistakes of true class cat predicted as dog" in note)


def test_model_tab_and_an_uploaded_checkpoint(app, tmp_path, monkeypatch):
    arch, rf_rows, rf_chart, rules, card, curves = app.model.show(S0)
    assert any(r[0] == "C4.conv3" for r in arch) and len(rf_rows) == 12
    assert all(r[1] == "PASS" for r in rules) and "Weights" in card and str(tmp_path) not in card
    import torch

    from cifar_s9.records.checkpoint import save_weights
    from cifar_s9.model.net import build_model
    from cifar_s9.ui import model as model_ui
    torch.manual_seed(3)
    path = tmp_path / "mine.safetensors"
    save_weights(build_model("default").eval(), path, {"epochs": 1})
    with pytest.raises(gr.Error, match="upload the file first"):
        app.model.use_upload(str(path), S0)  # not in Gradio's upload folder: refused
    monkeypatch.setattr(model_ui, "uploaded_file", lambda p: Path(p))  # as if uploaded
    message, banner, mine = app.model.use_upload(str(path), S0)
    assert "upload mine.safetensors" in message and not mine.model.shipped and S0.model.shipped
    wide = tmp_path / "wide.safetensors"
    save_weights(build_model("wide").eval(), wide, {})
    with pytest.raises(gr.Error, match="MB|parameters"):
        app.model.use_upload(str(wide), S0)  # refused from its size and declared config, before building
    from cifar_s9.model.net import BlockSpec, ConvSpec, ModelConfig, Net
    plain = BlockSpec((ConvSpec(8), ConvSpec(8), ConvSpec(8)))  # no dilation, nothing separable
    small = tmp_path / "small.safetensors"
    save_weights(Net(ModelConfig(blocks=(plain,) * 4)).eval(), small, {})
    with pytest.raises(gr.Error, match="rules .*dilated"):
        app.model.use_upload(str(small), S0)  # loads, but is not a network of this project's kind


def test_banner_for_each_session(app):
    assert "shipped model" in app.header.banner(S0)


# ---------------------------------------------------------------- links (issue 28.2)

def page(query: str = "", host: str = "127.0.0.1:7860"):
    """A gr.Request as a page's call arrives: the page's query on the queue's URL."""
    from starlette.datastructures import Headers, QueryParams
    return SimpleNamespace(session_hash="visitor-a", query_params=QueryParams(query),
                           url=f"http://{host}/gradio_api/queue/join?{query}", headers=Headers({"host": host}))


def test_a_link_sets_the_lab_controls_and_the_session(app):
    tab, *controls, n, seed, note, session = augment_lab.open_link(
        S0, page("tab=augment&flip_p=0.25&holes_min=3&holes_max=5&border_mode=wrap&n=4&seed=9&utm=x"))
    assert tab.selected == "augment" and n == 4 and seed == 9
    by_name = dict(zip(augment_lab.AUG_FIELDS, controls))
    assert by_name["flip_p"] == 0.25 and by_name["border_mode"] == "wrap" and by_name["holes_min"] == 3
    assert by_name["holes_max"]["value"] == 5 and by_name["holes_max"]["minimum"] == 3  # its range starts at 3
    assert session.aug == AugmentConfig(flip_p=0.25, holes_min=3, holes_max=5, border_mode="wrap")
    assert note.startswith("🔗") and "utm" in note
    plain = augment_lab.open_link(S0, page(""))  # a plain visit changes nothing
    assert all(v == gr.skip() for v in plain)


@pytest.mark.parametrize("query", ["flip_p=2", "flip_p=nan", "holes_min=5&holes_max=2", "seed=-1",
                                   "flip_p=1&flip_p=0", "tab=nowhere", "border_mode=%3Cscript%3E",
                                   "x=" + "9" * 5000])
def test_a_hostile_link_changes_nothing_in_the_lab_and_says_why_once(app, query):
    tab, *controls, n, seed, note, session = augment_lab.open_link(S0, page(query))
    assert all(v == gr.skip() for v in (tab, *controls, n, seed, session))
    assert note.startswith("⚠️ **This link's settings were not applied:**") and note.count("\n") == 0
    assert "<script>" not in note.replace("\\<", "")
    assert augment_lab.open_link("not a session", page(query))[-2] == note  # any state: no raise
    opened = augment_lab.open_link(S0, page("tab=augment&" + query))
    assert opened[0].selected == "augment" and opened[-2].startswith("⚠️")  # the tab opens, to say why there


def test_share_gives_the_link_and_albumentations_json(app):
    import json
    session = S0.with_aug(AugmentConfig(flip_p=0.25))
    link, json_file = augment_lab.share(session, 5, 7, page())
    assert link == "http://127.0.0.1:7860/?tab=augment&flip_p=0.25&n=5&seed=7"
    assert json.loads(Path(json_file).read_text())["transform"]["transforms"][0] == \
        {"__class_fullname__": "HorizontalFlip", "p": 0.25}
    assert augment_lab.share(session, 5, 7, page())[1] == json_file  # one file per setting
    forged, _ = augment_lab.share(session, 5, 7, page(host='evil"><b>'))
    assert forged == "?tab=augment&flip_p=0.25&n=5&seed=7"  # a forged Host: a relative link
    waiting, still = augment_lab.share(session, "x", 7, None)
    assert waiting == gr.skip() and still == json_file


def test_an_experiment_link_fills_the_form_and_the_link_follows_it(app):
    from cifar_s9.ui.experiments import ExperimentHandlers
    h = ExperimentHandlers(app.ctx)
    tab, *form, note, current = h.open_link(page("tab=experiments&question=recipe-default&budget_mode=epochs"
                                                  "&budget=4&repeats=2&dropout_p=0"))
    assert tab.selected == "experiments" and form == ["recipe-default", "epochs", 4, 1000, 0, 2]
    assert note.startswith("🔗") and "Coarse Dropout **off**" in current
    link = h.share(*form, S0.with_aug(AugmentConfig(dropout_p=0.0)), page())
    assert link == ("http://127.0.0.1:7860/?tab=experiments&question=recipe-default&budget_mode=epochs"
                    "&budget=4&subset=1000&exp_seed=0&repeats=2&dropout_p=0")
    refused = h.open_link(page("tab=experiments&repeats=99"))
    assert refused[0].selected == "experiments"  # the tab opens, to say why there
    assert all(v == gr.skip() for v in (*refused[1:7], refused[8])) and "repeats" in refused[7]
    assert all(v == gr.skip() for v in h.open_link(page("tab=augment&flip_p=0.3")))  # the lab's link
    assert h.share("no-dropout", "minutes", -1, 1000, 0, 1, S0, page()) == gr.skip()  # waits for a valid form
