"""The measured Coarse Dropout grid (issue 28.4) as the Experiments tab shows it: a heatmap of
each setting's change in validation accuracy against "off", with its interval, and the same in
words, beside the visitor's own short runs.

The grid is shipped data (`training/cutout_grid/grid.json`, written by
`python -m cifar_s9.experiments.grid summary`), the same for every visitor; until it is
measured the tab says so and how to measure it, and draws nothing.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import plotly.graph_objects as go

from ..analysis.plots import LAYOUT
from ..experiments import grid

MAX_BYTES = 2_000_000   # a summary of a few cells is a few KB; anything larger is not ours
MEASURE = ("`python -m cifar_s9.experiments.grid run --data-dir DIR` (five settings of about 1.6 hours "
           "on one CPU core each, over as many sittings as it takes; two runs at once use two cores), then `python -m cifar_s9.experiments.grid summary`")


def load(path: Path) -> tuple[dict | None, str]:
    """(summary, "") for a readable grid file with at least the "off" cell and one other; else
    (None, why not, in words)."""
    path = Path(path)
    if not path.is_file():
        return None, "not measured yet"
    if path.stat().st_size > MAX_BYTES:
        return None, "not shown: its file is too large to be a grid summary"
    try:
        summary = json.loads(path.read_text())
        rows = [r for r in summary["rows"] if _whole_row(r)]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "not shown: its file could not be read"
    if not any(r["holes"] == 0 for r in rows) or not any("diff_points" in r for r in rows):
        return None, "only partly measured (it needs \"off\" and at least one setting)"
    return {**summary, "rows": rows}, ""


def _whole_row(row) -> bool:
    """A row `grid.summarize` writes: the off cell, or a setting with its paired difference."""
    if not isinstance(row, dict):
        return False
    counts = ("holes", "size", "epochs", "train_images", "eval_images")
    if not all(isinstance(row.get(k), int) and row[k] >= 0 for k in counts) or not _is_number(row.get("accuracy")):
        return False
    if row["holes"] == 0:
        return True
    ci = row.get("diff_ci_points")
    return (_is_number(row.get("diff_points")) and isinstance(ci, list) and len(ci) == 2
            and all(_is_number(v) for v in ci) and _is_number(row.get("p_value")))


def figure(summary: dict) -> go.Figure:
    """Holes (rows) x hole size (columns); colour: points of validation accuracy against off (red
    worse, blue better, white no change), on a scale as wide as the widest 95% interval; each
    cell's text: the change and its interval."""
    rows = [r for r in summary["rows"] if r["holes"] > 0]
    holes = sorted({int(r["holes"]) for r in rows})
    sizes = sorted({int(r["size"]) for r in rows})
    z = [[None] * len(sizes) for _ in holes]
    text = [[""] * len(sizes) for _ in holes]
    for r in rows:
        i, j = holes.index(int(r["holes"])), sizes.index(int(r["size"]))
        lo, hi = r["diff_ci_points"]
        z[i][j] = float(r["diff_points"])
        text[i][j] = f"{r['diff_points']:+.1f}<br>[{lo:+.1f}, {hi:+.1f}]"
    # the scale spans the widest interval, not the largest estimate: a change whose interval
    # contains 0 then shows pale, instead of the darkest colour on the scale
    reach = max([abs(v) for r in rows for v in r["diff_ci_points"]] + [0.5])
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"{s} px" for s in sizes], y=[f"{h} hole{'s' if h > 1 else ''}" for h in holes],
        text=text, texttemplate="%{text}", colorscale="RdBu", zmid=0, zmin=-reach, zmax=reach,
        colorbar=dict(title=dict(text="points"), thickness=12),
        hovertemplate="%{y} of %{x}: %{z:+.2f} points against off<extra></extra>"))
    fig.update_xaxes(title_text="hole size", type="category")
    fig.update_yaxes(title_text="holes", type="category")
    # no title: the plot's label says what it shows (a phone has no room for both); the top
    # margin leaves the label room above the cells
    fig.update_layout(**{**LAYOUT, "margin": dict(l=50, r=20, t=45, b=40)}, height=300)
    return fig


def words(summary: dict) -> str:
    """Where the figures come from, then one line per setting (`grid.sentence`), best first."""
    rows = summary["rows"]
    off = next(r for r in rows if r.get("holes") == 0)
    others = sorted((r for r in rows if r["holes"] > 0), key=lambda r: -r["diff_points"])
    lines = [f"**Measured once, at a budget no visitor can run here**: {off['epochs']} epochs on "
             f"{off['train_images']:,} training images a setting, every setting scored on the same "
             f"{off['eval_images']:,} validation images and compared with off image by image "
             "(paired 95% interval, McNemar's test). An interval that contains 0 means no "
             "difference was detected.", "", f"**{grid.verdict(rows)}**", "", f"- {grid.sentence(off)}"]
    lines += [f"- {grid.sentence(r)}" for r in others]
    return "\n".join(lines)


def not_measured(why: str) -> str:
    return (f"The long-budget Coarse Dropout grid is {why}. It is measured with {MEASURE}; "
            "until then only your own runs below answer the question.")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
