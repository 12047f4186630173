"""The two shipped designs side by side (issue 27): the comparison table, worked by hand, and the
header button that gives a session the reference design."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest
import torch

from cifar_s9.analysis.report import COMPARE_ROWS, compare_rows
from cifar_s9.app.session import Session
from cifar_s9.model.net import build_model
from cifar_s9.records.checkpoint import save_weights
from cifar_s9.ui.classify import ClassifyHandlers
from cifar_s9.ui.common import REFERENCE_LABEL
from cifar_s9.ui.header import HeaderHandlers
from cifar_s9.ui.model import ModelHandlers

A = SimpleNamespace(session_hash="visitor-a")
CARD = {"accuracy": {"test": {"plain": 0.9032, "tta": 0.9037, "n": 10_000},
                     "clean_check": {"plain": 0.91, "n": 2000}}, "epochs": 209, "wall_time_s": 18563.9}


def test_the_table_reads_each_network_and_its_card():
    headers, rows = compare_rows({"ours": (build_model("default"), CARD),
                                  "reference": (build_model("seed"), {"epochs": True})})
    assert headers == ["", "ours", "reference"] and [r[0] for r in rows] == list(COMPARE_ROWS)
    table = {r[0]: r[1:] for r in rows}
    # by hand (docs: MODEL_CARD.md's rule table; tests/test_model.py counts the parameters)
    assert table["parameters"] == ["198,250", "197,413"]
    assert table["receptive field (px)"] == ["81", "121"]
    assert table["depthwise-separable convs"] == ["8", "12"] and table["dilated convs"] == ["1", "4"]
    assert table["test accuracy"] == ["90.32%", "-"] and table["with flip TTA"] == ["90.37%", "-"]
    assert table["clean-pixel check"] == ["91.00%", "-"]
    assert table["epochs"] == ["209", "-"] and table["training time"] == ["5 h 09 min", "?"]


@pytest.fixture
def app(weights_path, tmp_path):
    import app as app_module

    ctx = app_module.configure(weights=weights_path, runs_dir=tmp_path / "runs")
    torch.manual_seed(0)
    reference = tmp_path / "seed.safetensors"
    save_weights(build_model("seed").eval(), reference, {"preset": "seed", "epochs": 50})
    ctx.reference, ctx._reference_choice = reference, None
    return SimpleNamespace(ctx=ctx, header=HeaderHandlers(ctx), model=ModelHandlers(ctx))


def test_a_session_takes_the_reference_design_and_the_model_tab_shows_both(app):
    banner, session = app.header.use_reference(Session(), A)
    assert session.model.label == REFERENCE_LABEL and "reference design" in banner
    assert app.ctx.model(session).card["preset"] == "seed"
    assert app.ctx.model(Session()).card["preset"] == "default"  # other sessions keep theirs
    table = app.model.designs()
    assert list(table.columns) == ["property", "ours", "reference"]
    assert table.iloc[0].tolist() == ["parameters", "198,250", "197,413"]


def test_without_a_shipped_reference_the_button_says_so_and_the_table_shows_ours(app):
    app.ctx.reference, app.ctx._reference_choice = None, None
    with pytest.raises(gr.Error, match="reference design is not shipped"):
        app.header.use_reference(Session(), A)
    assert list(app.model.designs().columns) == ["property", "ours"]


# ---------------------------------------------------------------- Classify: the two designs on one image

CAT = "assets/examples/cat.jpg"


def test_classify_sets_the_reference_beside_the_sessions_model_without_changing_either(app):
    classify = ClassifyHandlers(app.ctx)
    session = Session().with_image(CAT)
    loaded = len(app.ctx.models)
    note, title, top, cam, other_title, other_top, other_cam = classify.compare(CAT, 3, session=session)
    assert title.startswith("**Your model**: tiny.safetensors") and "35.00%" in title  # the fixture's card
    assert other_title.startswith(f"**Reference design**: {REFERENCE_LABEL}")
    assert top == classify.classify(CAT, 3, session)  # the Classify tab's own answer
    assert len(other_top) == 3 and cam.shape == other_cam.shape == (256, 312, 3)
    for _ in range(3):
        classify.compare(CAT, 3, session=session)
    assert len(app.ctx.models) == loaded + 1  # the reference: loaded once, shared
    assert session.model.shipped and app.ctx.model(session).card["preset"] == "default"  # its choice kept
    shown = classify.compare_view(True, 3, "GradCAM", "C4", "predicted", 0.5, session)
    assert shown[0]["visible"] is True and shown[2] == title and shown[3] == top


def test_a_session_on_the_reference_design_is_compared_with_the_shipped_model(app):
    classify = ClassifyHandlers(app.ctx)
    _, session = app.header.use_reference(Session(), A)
    note, title, top, _, other_title, other_top, _ = classify.compare(CAT, 10, session=session)
    assert "already uses the reference design" in note and "**shipped model**" in note
    assert title.startswith(f"**Your model**: {REFERENCE_LABEL}")
    assert other_title.startswith("**Shipped model**: tiny.safetensors")
    assert other_top == classify.classify(CAT, 10, Session())


def test_the_page_computes_nothing_while_the_comparison_is_off(app, monkeypatch):
    classify = ClassifyHandlers(app.ctx)
    monkeypatch.setattr(ClassifyHandlers, "compare", lambda *a, **k: pytest.fail("computed while off"))
    for off in (False, None, "yes", 1):  # only a real True (the checkbox's value) turns it on
        hidden, *rest = classify.compare_view(off, 3, "GradCAM", "C4", "predicted", 0.5, Session().with_image(CAT))
        assert hidden == {"__type__": "update", "visible": False} and len(rest) == 7
    shown, note, *empty = classify.compare_view(True, 3, "GradCAM", "C4", "predicted", 0.5, Session())
    assert shown["visible"] and "Choose an image" in note and empty == [None] * 6


def test_without_a_shipped_reference_the_comparison_refuses_cleanly(app):
    app.ctx.reference, app.ctx._reference_choice = None, None
    classify = ClassifyHandlers(app.ctx)
    with pytest.raises(gr.Error, match="reference design is not shipped"):
        classify.compare(CAT, 3, session=Session())
    with pytest.raises(gr.Error, match="reference design is not shipped"):
        classify.compare_view(True, 3, "GradCAM", "C4", "predicted", 0.5, Session().with_image(CAT))
    with pytest.raises(gr.Error, match="give an image"):
        classify.compare(None, 3, session=Session())
