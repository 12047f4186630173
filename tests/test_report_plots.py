import numpy as np
import plotly.graph_objects as go
import pytest

from cifar_s9.analysis import plots, report
from cifar_s9.data.cifar import CLASSES


def test_architecture_rows_use_architecture_names(model):
    rows = report.architecture_rows(model)
    names = [r[0] for r in rows]
    assert "C1" in names and "C4.conv3" in names and "O.classifier" in names
    c2 = rows[names.index("C2")]
    assert c2[2] == "64 x 16 x 16"
    assert sum(r[3] for r in rows if "." not in r[0]) == model.num_params()  # blocks + O


def test_rf_and_rule_rows(model):
    rf = report.receptive_field_rows(model)
    assert len(rf) == 12 and rf[0][:6] == ["C1.conv1", 3, 1, 1, 1, 3]
    rules = report.rule_rows(model)
    assert all(r[1] == "PASS" for r in rules)


def test_card_markdown():
    md = report.card_markdown({"accuracy": {"test": {"data": "x", "n": 10, "plain": 0.5, "tta": 0.55}},
                               "params": 1234, "epochs": 3, "train_config": {"lr": 0.1}},
                              "w.safetensors", warning="careful")
    assert "50.00%" in md and "55.00%" in md and "1,234" in md and "careful" in md and '"lr": 0.1' in md
    assert report.architecture_name("blocks.3.conv1.0") == "C4.conv1.0"
    assert "stages" not in md and "| device |" not in md


def test_card_markdown_lists_each_stage_of_a_chained_card():
    stages = [{"name": "full", "epochs": 120, "wall_time_s": 7008.8, "device": "CPU"},
              {"name": "distill-gpu", "epochs": 108, "wall_time_s": 365.8, "device": "H100"}]
    md = report.card_markdown({"stages": stages, "device": "H100", "hardware": "a CPU, then a GPU"}, "w")
    assert "| stages | full: 120 epochs, 1 h 56 min on CPU<br>distill-gpu: 108 epochs, 6 min 06 s on H100 |" in md
    assert "| device (last stage) | H100 |" in md and "| hardware | a CPU, then a GPU |" in md


def test_figures():
    hist = [{"epoch": 1, "train_loss": 2.0, "test_loss": None, "train_acc": 0.1, "test_acc": None},
            {"epoch": 2, "train_loss": 1.5, "test_loss": 1.6, "train_acc": 0.3, "test_acc": 0.3}]
    fig = plots.training_curves(hist, [(1, 2.3), (2, 2.1)])
    assert isinstance(fig, go.Figure) and {t.name for t in fig.data} >= {"train loss", "test accuracy", "step loss"}
    assert len(fig.data[1].x) == 1  # the missing test loss is skipped, not plotted as 0
    cm = np.diag(np.arange(1, 11))
    cm[0, 1] = 5
    heat = plots.confusion_heatmap(cm)
    assert heat.data[0].z[0][1] == 5 / 6 and list(heat.data[0].x) == list(CLASSES)
    assert plots.confusion_heatmap(np.zeros((10, 10), int)).data[0].z.sum() == 0


def test_per_class_accuracy_bars():
    per_class = {c: i / 10 for i, c in enumerate(CLASSES)}
    per_class["cat"] = float("nan")  # a class the split lacks
    bar = plots.per_class_accuracy(per_class).data[0]
    assert list(bar.x) == list(CLASSES) and bar.y[1] == 0.1 and bar.y[9] == 0.9
    assert bar.text[1] == "10%" and bar.text[3] == "-"  # NaN is labelled "-", not "nan%"


def test_receptive_field_chart_draws_the_rule_and_the_image_size():
    from cifar_s9.model.rules import MIN_RECEPTIVE_FIELD

    fig = plots.receptive_field_chart([["C1.conv1", 3, 1, 1, 1, 3, 32], ["C1.conv2", 3, 1, 1, 1, 5, 32]])
    assert list(fig.data[0].x) == ["C1.conv1", "C1.conv2"] and list(fig.data[0].y) == [3, 5]
    assert sorted(shape.y0 for shape in fig.layout.shapes) == sorted([32, MIN_RECEPTIVE_FIELD])
    # the axis reaches above the rule's line even when every layer is below it
    assert fig.layout.yaxis.range[1] == pytest.approx(MIN_RECEPTIVE_FIELD * 1.15)
    tall = plots.receptive_field_chart([["C4.conv3", 3, 1, 1, 8, 81, 4]])
    assert tall.layout.yaxis.range[1] == pytest.approx(81 * 1.15)


def test_training_curves_break_the_line_between_stages():
    hist = [{"epoch": e, "train_loss": 1.0 / e, "test_acc": 0.5, "stage": "full" if e <= 2 else "distill"}
            for e in (1, 2, 3, 4)]
    fig = plots.training_curves(hist)
    train_loss = next(t for t in fig.data if t.name == "train loss")
    assert list(train_loss.x) == [1, 2, 2.5, 3, 4]
    assert train_loss.y[2] is None and not train_loss.connectgaps
    one_stage = plots.training_curves([{k: v for k, v in h.items() if k != "stage"} for h in hist])
    assert None not in next(t for t in one_stage.data if t.name == "train loss").y
