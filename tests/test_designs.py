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
