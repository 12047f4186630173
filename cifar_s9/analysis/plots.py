"""Plotly figures for the app: training curves, confusion matrix, per-class accuracy, receptive field."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..data.cifar import CLASSES
from ..records.provenance import stage_starts
from ..model.rules import MIN_RECEPTIVE_FIELD
from ..train.events import upgrade_history

LAYOUT = dict(template="plotly_white", margin=dict(l=50, r=20, t=50, b=40))
# class and layer names slanted, so ten of them fit a phone's 390 px without overlapping
SLANTED = dict(tickangle=-45, automargin=True)


def training_curves(epochs: Sequence[dict], steps: Sequence[tuple[int, float]] = (),
                    title: str = "") -> go.Figure:
    """Loss and accuracy per epoch (train, and the validation or test split each epoch was scored
    on; histories of any age), and the loss per logged step."""
    epochs = upgrade_history(list(epochs), None)
    split = next((e["eval_split"] for e in epochs if e["eval_split"]), "test")
    cols = 3 if steps else 2  # a model card has no per-step losses
    # short titles (the x axes say "epoch" and "step"): three columns share a phone's 390 px
    fig = make_subplots(rows=1, cols=cols, subplot_titles=("loss", "accuracy", "step loss")[:cols])
    x = [e["epoch"] for e in epochs]
    # a fine-tuned model's card has stages (its loss may be another loss): no line across them
    starts = stage_starts(epochs)
    for key, name, col, dash in (("train_loss", "train loss", 1, None), ("eval_loss", f"{split} loss", 1, "dot"),
                                 ("train_acc", "train accuracy", 2, None),
                                 ("eval_acc", f"{split} accuracy", 2, "dot")):
        pts = [(xi, e.get(key)) for xi, e in zip(x, epochs) if e.get(key) is not None]
        if pts:
            pts = sorted(pts + [(start - 0.5, None) for start in starts])
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], name=name,
                                     mode="lines+markers" if len(pts) <= 50 else "lines",
                                     line=dict(dash=dash)), row=1, col=col)
    if steps:
        fig.add_trace(go.Scatter(x=[s for s, _ in steps], y=[v for _, v in steps], name="step loss",
                                 mode="lines", line=dict(width=1)), row=1, col=3)
    # whole-epoch ticks, at most about five of them however long the run: three charts side by
    # side on a phone leave each about 100 px
    epoch_tick = max(1, -(-max(x, default=1) // 5))
    fig.update_xaxes(title_text="epoch", dtick=epoch_tick, row=1, col=1)
    fig.update_xaxes(title_text="epoch", dtick=epoch_tick, row=1, col=2)
    if steps:
        fig.update_xaxes(title_text="step", row=1, col=3)
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_layout(height=350, title=title or None, legend=dict(orientation="h", y=-0.3),
                      **{**LAYOUT, "margin": dict(l=50, r=20, t=50, b=60)})  # legend clear of the axis titles
    return fig


def confusion_heatmap(confusion: np.ndarray, classes: Sequence[str] = CLASSES,
                      normalize: bool = True) -> go.Figure:
    """Rows: true class, columns: predicted class; colour by the row fraction, text the count."""
    counts = np.asarray(confusion)
    totals = counts.sum(1, keepdims=True)
    frac = np.divide(counts, totals, out=np.zeros(counts.shape, float), where=totals > 0)
    fig = go.Figure(go.Heatmap(
        z=frac if normalize else counts, x=list(classes), y=list(classes), colorscale="Blues",
        text=counts, texttemplate="%{text}", hovertemplate="true %{y}<br>predicted %{x}<br>"
        "%{text} images (%{z:.1%} of the row)<extra></extra>", zmin=0, zmax=1 if normalize else None))
    fig.update_yaxes(autorange="reversed", title_text="true class")
    # upright names: on a phone the ten columns are 15 px apart, too close for slanted ones
    fig.update_xaxes(title_text="predicted class", side="bottom", tickangle=-90, automargin=True,
                     tickfont=dict(size=11))
    fig.update_traces(colorbar=dict(thickness=10))
    fig.update_layout(height=480, title="confusion matrix", **LAYOUT)
    return fig


def per_class_accuracy(per_class: dict[str, float]) -> go.Figure:
    names = list(per_class)
    values = [per_class[n] for n in names]
    fig = go.Figure(go.Bar(x=names, y=values, text=[f"{v:.0%}" if np.isfinite(v) else "-" for v in values],
                           textposition="outside", marker_color="#4c78a8"))
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%", title_text="accuracy")
    fig.update_xaxes(**SLANTED)
    fig.update_layout(height=330, title="per-class accuracy", **LAYOUT)
    return fig


def receptive_field_chart(rows: Sequence[Sequence], image_size: int = 32) -> go.Figure:
    """Receptive field per layer (rows from report.receptive_field_rows), with the rule's line."""
    names = [r[0] for r in rows]
    rf = [r[5] for r in rows]
    fig = go.Figure(go.Bar(x=names, y=rf, text=rf, textposition="outside", name="receptive field",
                           marker_color="#59a14f"))
    fig.add_hline(y=MIN_RECEPTIVE_FIELD, line_dash="dash", line_color="#e15759",
                  annotation_text=f"rule: RF >= {MIN_RECEPTIVE_FIELD}", annotation_position="top left")
    fig.add_hline(y=image_size, line_dash="dot", line_color="#888",
                  annotation_text=f"image size {image_size}", annotation_position="bottom right")
    fig.update_yaxes(title_text="pixels", range=[0, max(rf + [MIN_RECEPTIVE_FIELD]) * 1.15])
    fig.update_xaxes(**SLANTED)
    fig.update_layout(height=360, title="receptive field per layer", **LAYOUT)
    return fig
