"""What the Experiments tab shows, as plain functions: UI values -> an `ExperimentConfig` (every
value checked as hostile), overlaid curves, the result table and its sentences, the queue, the
runs list. Nothing here knows about Gradio."""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..experiments import tracker
from ..data.augment import AugmentConfig
from .experiment_jobs import ExperimentSnapshot
from ..experiments.runner import LAB_TRAIN, QUESTIONS, ExperimentConfig, ExperimentResult
from ..analysis.plots import LAYOUT
from .uinput import coerce_augment, number, whole_number
from ..errors import UserError

QUESTION_LABELS = {"no-dropout": "current settings vs no Coarse Dropout",
                   "recipe-default": "current settings vs the full recipe's default"}
BUDGET_MODES = ("minutes", "epochs")
# what the tab's form starts with (and what a link leaves out means)
FORM_DEFAULTS = {"question": "no-dropout", "budget_mode": "minutes", "budget": 3,
                 "subset": LAB_TRAIN.subset, "seed": 0, "repeats": 1}
STATE_ICON = {"waiting": "·", "running": "⏳", "done": "✅", "stopped": "⏹️", "failed": "❌"}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _escape(text: str) -> str:
    return str(text).replace("<", "&lt;").replace(">", "&gt;")


def config_from_ui(question, current_aug, budget_mode, budget, subset, seed, repeats) -> ExperimentConfig:
    """UI values -> ExperimentConfig; ValueError naming the field for anything out of place."""
    if question not in QUESTIONS:
        raise UserError(f"question must be one of {sorted(QUESTIONS)}, got {_escape(question)!r}")
    if current_aug is not None and not isinstance(current_aug, dict):
        raise UserError("the current augmentation settings must be a JSON object")
    aug = coerce_augment(current_aug or {}) if current_aug else AugmentConfig()
    if budget_mode not in BUDGET_MODES:
        raise UserError(f"budget must be in {BUDGET_MODES}, got {_escape(budget_mode)!r}")
    if budget_mode == "minutes":
        minutes, epochs = number(budget, "minutes per arm"), None
    else:
        minutes, epochs = None, whole_number(budget, "epochs per arm", 1, 200)
    config = QUESTIONS[question](
        aug, subset=whole_number(subset, "training images", 1, 50_000),
        seed=whole_number(seed, "seed", 0, 2**31 - 1), repeats=whole_number(repeats, "seeds per arm", 1, 5),
        minutes=minutes, epochs=epochs)
    return config.validated()


def settings_summary(aug: AugmentConfig) -> str:
    """What "current settings" means for this visitor: the lab's augmentation in words, so the
    question "vs no Coarse Dropout" says what the Coarse Dropout arm has."""
    if aug.dropout_p > 0:
        holes = (f"{aug.holes_min}" if aug.holes_min == aug.holes_max else f"{aug.holes_min}-{aug.holes_max}")
        size = lambda lo, hi: f"{lo}" if lo == hi else f"{lo}-{hi}"  # noqa: E731
        dropout = (f"Coarse Dropout **on** (p = {aug.dropout_p:g}, {holes} hole(s) of "
                   f"{size(aug.hole_height_min, aug.hole_height_max)}x{size(aug.hole_width_min, aug.hole_width_max)} px)")
    else:
        dropout = "Coarse Dropout **off** (p = 0: both arms of the first question are the same)"
    others = [f"flip p = {aug.flip_p:g}", f"affine p = {aug.affine_p:g}"]
    others += [f"{name} p = {value:g}" for name, value in
               (("JPEG", aug.jpeg_p), ("sharpen", aug.sharpen_p), ("colour jitter", aug.color_p)) if value > 0]
    return (f"**Current settings** (your Augmentation lab's): {dropout}; {', '.join(others)}. "
            "Change them in the lab; they are read when you press Run.")


def plan_text(budget_mode, budget, repeats, arms: int = 2, limit_s: float | None = None) -> str:
    """The total the visitor asks for, before they press Run: arms x seeds x budget, and whether
    it fits the shared slot's time limit. Any value the form may hold (hostile too) gives a line."""
    try:
        runs = arms * whole_number(repeats, "seeds per arm", 1, 5)
        if budget_mode == "minutes":
            if not number(budget, "minutes per arm") > 0:
                raise UserError(f"minutes per arm must be positive, got {budget}")
            total = runs * number(budget, "minutes per arm")
            line = (f"**Plan:** {arms} arms x {runs // arms} seed(s) x {number(budget, 'minutes'):g} min = "
                    f"about **{total:g} min** of training, plus a minute or so of set-up and scoring.")
            over = limit_s is not None and total * 60 > limit_s
        elif budget_mode == "epochs":
            epochs = whole_number(budget, "epochs per arm", 1, 200)
            line = (f"**Plan:** {arms} arms x {runs // arms} seed(s) x {epochs} epochs = {runs * epochs} "
                    "epochs in all; the status line shows the time left once the first epoch is timed.")
            over = False
        else:
            return ""
    except UserError as exc:
        return f"**Plan:** {_escape(exc)}"
    if over:
        line += (f" ⚠️ That is more than the shared slot's limit of {limit_s / 60:g} min: the runs "
                 "still going at the limit are stopped, and only the finished arms are compared.")
    return line


# ---------------------------------------------------------------- curves

def curves_figure(curves: dict[str, dict], title: str = "") -> go.Figure:
    """Train loss and validation accuracy per epoch, one colour per arm (seeds share it)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("train loss", "validation accuracy"))  # short: phones
    arms = list(dict.fromkeys(label.rsplit(" (seed", 1)[0] for label in curves))
    for label, c in curves.items():
        arm = label.rsplit(" (seed", 1)[0]
        colour = PALETTE[arms.index(arm) % len(PALETTE)]
        first = label == next(k for k in curves if k.rsplit(" (seed", 1)[0] == arm)
        for col, key in ((1, "train_loss"), (2, "val_acc")):
            pts = [(e, v) for e, v in zip(c.get("epoch", []), c.get(key, [])) if v is not None]
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                     name=_escape(arm), legendgroup=_escape(arm), showlegend=first and col == 1,
                                     line=dict(color=colour), hovertext=_escape(label)), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(tickformat=".0%", range=[0, 1], row=1, col=2)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_layout(**LAYOUT, height=360, title=_escape(title),
                      legend=dict(orientation="h", yanchor="bottom", y=-0.35, x=0))
    return fig


def result_curves(result: ExperimentResult) -> dict[str, dict]:
    return {f"{r.arm} (seed {r.seed})": {"epoch": [h["epoch"] for h in r.history],
                                         "train_loss": [h["train_loss"] for h in r.history],
                                         "val_acc": [h["eval_acc"] for h in r.history]}
            for r in result.runs}


# ---------------------------------------------------------------- table and words

# the answer first: a phone shows the first three columns without scrolling (issue 26.9)
TABLE_HEADERS = ["arm", "accuracy", "95% CI", "seeds", "epochs", "images scored", "images/s"]


def result_rows(result: ExperimentResult | None) -> list[list]:
    if result is None:
        return []
    return [[row["arm"], f"{100 * row['accuracy']:.1f}%",
             f"{100 * row['ci_low']:.1f}–{100 * row['ci_high']:.1f}%", row["seeds"], row["epochs"],
             row["images"], f"{row['images_per_s']:.0f}"] for row in result.table()]


TESTS_EXPLAINED = ("How to read this: both arms are scored on the same held-back images. McNemar's "
                   "test looks only at the images exactly one arm got right: if the arms were equally "
                   "good those would split like coin flips, and p is the chance of a split at least this "
                   "uneven by luck alone (below 0.05: unlikely to be luck). The mid-p is the same test "
                   "made less cautious for small counts; the 95% interval is the range of accuracy "
                   "differences the data allow.")


def result_markdown(result: ExperimentResult | None) -> str:
    """The verdicts and what they rest on. The warnings come first: they qualify every number
    of the result (the table above and the lines below)."""
    if result is None:
        return ""
    lines = [f"⚠️ {_escape(w)}" for w in result.warnings()]
    lines += [f"**{_escape(v)}**" for v in result.verdicts()]
    for arm in result.config.arms[1:]:
        a, b = result.runs_of(result.config.arms[0].name), result.runs_of(arm.name)
        if a and b:
            d = result.paired(a[0].arm, b[0].arm)
            lines.append(f"Images only {_escape(a[0].arm)} got right: {d.only_a}; only {_escape(arm.name)}: "
                         f"{d.only_b}; both: {d.both}; neither: {d.neither} (McNemar exact p = "
                         f"{d.p_value:.3g}, mid-p {d.mid_p:.3g}).")
            lines.append(TESTS_EXPLAINED)
    if result.data_note:
        lines.append(f"_{_escape(result.data_note)}_")
    if result.device:
        lines.append(f"Device: {_escape(result.device)}; {result.planned_epochs} epochs per arm.")
    return "\n\n".join(lines)


def queue_rows(snap: ExperimentSnapshot | None) -> list[list]:
    if snap is None:
        return []
    return [[i + 1, _escape(q["arm"]), q["seed"], f"{STATE_ICON.get(q['state'], '')} {q['state']}"]
            for i, q in enumerate(snap.queue)]


def status_markdown(snap: ExperimentSnapshot | None, slot_note: str) -> str:
    if snap is None:
        return f"No experiment from you yet. {slot_note}"
    icon = {"running": "⏳", "done": "✅", "stopped": "⏹️", "failed": "❌"}.get(snap.state, "")
    return f"{icon} **{_escape(snap.message)}**\n\n{slot_note}"


# ---------------------------------------------------------------- past runs

RUN_HEADERS = ["run", "arm / preset", "source", "accuracy", "epochs", "checkpoint kept"]


def runs_rows(session: str | None, limit: int = 50) -> list[list]:
    rows = []
    for r in tracker.visible_runs(session, limit):
        acc = r.final.get("accuracy")
        rows.append([r.name, r.config.get("arm") or r.config.get("preset") or "", r.config.get("source", ""),
                     f"{100 * acc:.1f}%" if isinstance(acc, (int, float)) and math.isfinite(acc) else "",
                     int(r.final["epochs"]) if "epochs" in r.final else "",
                     "yes" if r.checkpoint_exists else "pruned"])
    return rows


def overlay_figure(session: str | None, name_a: str, name_b: str) -> go.Figure:
    """Any two of the runs this visitor may see, overlaid; ValueError for any other name."""
    visible = {r.name for r in tracker.visible_runs(session)}
    for name in (name_a, name_b):
        if not isinstance(name, str) or name not in visible:
            raise UserError("choose two runs from the list of past runs")
    curves = tracker.overlay(name_a, name_b)
    return curves_figure({name: {"epoch": c["epoch"], "train_loss": c["train_loss"], "val_acc": c["val_acc"]}
                          for name, c in curves.items()}, "two past runs")

