"""The app's handlers, called as plain functions (no server)."""
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from cifar_s9.augment import AugmentConfig
from cifar_s9.data import CLASSES
from cifar_s9.jobs import Snapshot

CAT = "assets/examples/cat.jpg"


@pytest.fixture(scope="module")
def app(weights_path, tmp_path_factory):
    import os
    os.environ.pop("CIFAR_S9_DATA_DIR", None)
    import app as app_module
    app_module.configure(weights=weights_path, runs_dir=tmp_path_factory.mktemp("runs"))
    return app_module


def defaults(app):
    return app.reset_augment()


def test_demo_is_built_with_named_endpoints(app):
    names = {d.api_name for d in app.demo.fns.values() if d.api_visibility == "public"}
    assert {"classify", "explain", "augment_preview"} <= names
    assert "start_training" not in names


def test_classify_and_view(app):
    top = app.classify(CAT, 3)
    assert len(top) == 3 and set(top) <= set(CLASSES)
    assert app.network_view(CAT).shape == (256, 256, 3)
    assert app.network_view(None) is None


def test_explain_and_caption(app):
    out = app.explain(CAT, "GradCAM++", "C3.conv2", "dog", 0.3)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    assert "why not dog" in app.explain_caption(CAT, "GradCAM", "C4", "dog") or \
        "the prediction" in app.explain_caption(CAT, "GradCAM", "C4", "dog")
    assert "ignores the class" in app.explain_caption(CAT, "EigenCAM", "C4", "predicted")


@pytest.mark.parametrize("bad", [None, b"nonsense", "/no/such.png"])
def test_bad_images_become_gr_errors(app, bad):
    with pytest.raises(gr.Error):
        app.classify(bad)
    with pytest.raises(gr.Error):
        app.explain(bad)


def test_bad_explain_settings_become_gr_errors(app):
    with pytest.raises(gr.Error, match="unknown layer"):
        app.explain(CAT, "GradCAM", "C9")
    with pytest.raises(gr.Error, match="unknown class"):
        app.explain(CAT, "GradCAM", "C4", "unicorn")


def test_augment_preview_and_details(app):
    grid = app.augment_preview(CAT, *defaults(app), 5, 0)
    assert len(grid) == 6 and grid[0][1] == "original"
    status, applied, code = app.augment_details(CAT, *defaults(app), 5, 0)
    assert status.startswith("✅") and len(applied) == 5 and "A.CoarseDropout" in code
    values = defaults(app)
    values[app.AUG_FIELDS.index("hole_width_min")] = 20  # > hole_width_max
    status, applied, _ = app.augment_details(CAT, *values, 5, 0)
    assert "Invalid settings" in status and "hole_width_min" in status and applied is None
    with pytest.raises(gr.Error, match="hole_width_min"):
        app.augment_preview(CAT, *values, 5, 0)
    assert app.augment_details(None, *defaults(app), 5, 0)[0] == "Choose a sample image."


def test_reroll_and_send_to_train(app):
    assert app.reroll(0) != 0 and app.reroll(0) == app.reroll(0)
    values = defaults(app)
    values[app.AUG_FIELDS.index("dropout_p")] = 1.0
    state, shown = app.send_to_train(*values)
    assert state == shown and state["dropout_p"] == 1.0
    values[app.AUG_FIELDS.index("holes_min")] = 9
    with pytest.raises(gr.Error, match="holes_min"):
        app.send_to_train(*values)


def test_train_request_and_progress(app):
    req = app.train_request("default", 2, 0.1, 128, 2000, AugmentConfig(dropout_p=1.0).to_dict())
    assert req.train.subset == 2000 and req.aug.dropout_p == 1.0 and req.train.log_every == 1
    snap = Snapshot(message="epoch 1", device="CPU (2 threads)", step=5, total_steps=10, eta_s=12,
                    epochs=[{"epoch": 1, "train_loss": 2.0, "train_acc": 0.2, "test_loss": 2.1, "test_acc": 0.2}],
                    steps=[(5, 2.0)])
    text, fig = app.render_progress(snap)
    assert "50%" in text and "ETA 12 s" in text and "CPU" in text and len(fig.data) == 5


def test_start_training_streams_until_done(app, monkeypatch):
    from cifar_s9.data import Split
    from cifar_s9.service import TrainingData
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 48)
    app.STATE.jobs.load_data = lambda: TrainingData(Split(imgs[:32], labels[:32], "tr"),
                                                    Split(imgs[32:], labels[32:], "te"), "tiny", True)
    outputs = list(app.start_training("default", 1, 0.05, 32, 32, None))
    text, fig, weights, button = outputs[-1]
    assert "finished 1 epochs" in text and weights.endswith("model.safetensors")
    assert button["interactive"] is True
    message, banner = app.activate_weights(weights)
    assert weights in message and "Active model" in banner
    assert app.stop_training() == "Nothing is running."


def test_busy_message(app, monkeypatch):
    monkeypatch.setattr(app.gr, "Warning", lambda *a, **k: None)
    app.STATE.jobs._slot.acquire()  # as if another user's run held the slot
    try:
        out = list(app.start_training("default", 1, 0.05, 32, 32, None))
    finally:
        app.STATE.jobs._slot.release()
    assert len(out) == 1 and "Busy" in out[0][0]


def test_invalid_training_settings(app):
    with pytest.raises(gr.Error, match="Invalid training settings"):
        list(app.start_training("default", 1, 50.0, 32, 32, None))


def test_activate_without_checkpoint(app):
    with pytest.raises(gr.Error, match="train a model first"):
        app.activate_weights(None)


def test_mistakes_view_and_cams(app):
    note, gallery, indices, confusion, per_class = app.mistakes_view("", "", "most confident first", 20)
    assert "bundled sample" in note and "Accuracy" in note
    assert len(gallery) == len(indices) <= 20
    if gallery:
        assert " → " in gallery[0][1] and gallery[0][0].shape == (96, 96, 3)
        pred_cam, true_cam, caption = app.mistake_cams(indices, SimpleNamespace(index=0))
        assert pred_cam.shape == true_cam.shape == (256, 256, 3) and "true" in caption
    note, gallery, indices, *_ = app.mistakes_view("cat", "dog", "least confident first", 60)
    assert all(g[1].startswith("cat → dog") for g in gallery)


def test_model_tab(app):
    arch, rf_rows, rf_chart, rules, card, curves = app.model_tab()
    assert any(r[0] == "C4.conv3" for r in arch) and len(rf_rows) == 12
    assert all(r[1] == "PASS" for r in rules) and "Weights" in card


def test_concurrent_explains_through_the_handler_match_running_alone(app, tmp_path, weights_path):
    """4 users explaining different images at once each get the heatmap they get alone; no hook is
    left on the shared model afterwards."""
    import threading

    import torch
    from PIL import Image

    from cifar_s9.checkpoint import save_weights
    from cifar_s9.gradcam import hooks_left
    from cifar_s9.model import build_model
    torch.manual_seed(1)
    lively = build_model("default")  # residual branches switched on: every image gets its own map
    for block in lively.blocks:
        torch.nn.init.ones_(block.conv3[1].weight)
    save_weights(lively.eval(), tmp_path / "lively.safetensors", {})
    app.activate_weights(str(tmp_path / "lively.safetensors"))
    rng = np.random.default_rng(3)
    paths = []
    for i in range(4):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(paths[-1])
    alone = [app.explain(p, "GradCAM", "C3", "predicted", 1.0) for p in paths]
    assert not all(np.array_equal(alone[0], a) for a in alone[1:])  # the images really differ
    results, errors = {i: [] for i in range(4)}, []
    barrier = threading.Barrier(4)

    def user(i):
        try:
            barrier.wait()
            for _ in range(3):
                results[i].append(app.explain(paths[i], "GradCAM", "C3", "predicted", 1.0))
                app.classify(paths[(i + 1) % 4])  # plain forwards of the same model in between
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(4):
        assert all(np.allclose(r, alone[i]) for r in results[i])
    assert hooks_left(app.STATE.store.current.model) == 0
    app.activate_weights(str(weights_path))


def test_the_active_model_changes_only_when_a_finished_run_is_activated(app):
    from cifar_s9.data import Split
    from cifar_s9.service import TrainingData
    rng = np.random.default_rng(1)
    imgs, labels = rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 48)
    app.STATE.jobs.load_data = lambda: TrainingData(Split(imgs[:32], labels[:32], "tr"),
                                                    Split(imgs[32:], labels[32:], "te"), "tiny", True)
    before = app.STATE.store.current
    stream = app.start_training("default", 1, 0.05, 16, 32, None)
    first = next(stream)
    assert app.STATE.jobs.busy or "finished" in first[0]
    assert app.STATE.store.current is before  # running: still the old model
    *_, last = stream
    assert last[2] and app.STATE.store.current is before  # finished: still the old model
    app.activate_weights(last[2])
    assert app.STATE.store.current is not before and app.STATE.store.current.source == last[2]
