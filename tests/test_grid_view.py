"""The Coarse Dropout grid as the Experiments tab shows it (issue 28.4): a summary file read
with care, its heatmap (the change against off with its interval, per cell) and its words."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cifar_s9.app import grid_view
from cifar_s9.experiments import grid as g


def cell(name, holes, size, correct):
    correct = np.asarray(correct, bool)
    return {"cell": name, "holes": holes, "size": size, "epochs": 40, "train_images": 43_000,
            "eval_images": len(correct), "accuracy": float(correct.mean()), "ci": [0.0, 1.0],
            "correct_packbits_hex": np.packbits(correct).tobytes().hex()}


def summary_file(tmp_path, cells) -> tuple:
    summary = g.summarize(cells)
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(summary))
    return path, summary


@pytest.fixture
def measured(tmp_path):
    base = [1] * 60 + [0] * 40
    better = [1] * 60 + [1] * 10 + [0] * 30       # right on 10 more images, wrong on none
    worse = [1] * 55 + [0] * 45                    # wrong on 5 more
    return summary_file(tmp_path, [cell("off", 0, 0, base), cell("1x8px", 1, 8, better),
                                   cell("2x16px", 2, 16, worse)])


def test_a_measured_grid_reads_back_with_every_row(measured):
    path, summary = measured
    loaded, why = grid_view.load(path)
    assert why == "" and [r["cell"] for r in loaded["rows"]] == ["off", "1x8px", "2x16px"]


def test_the_heatmap_puts_each_change_and_its_interval_in_its_cell(measured):
    path, _ = measured
    summary, _ = grid_view.load(path)
    heat = grid_view.figure(summary).data[0]
    assert list(heat.y) == ["1 hole", "2 holes"] and list(heat.x) == ["8 px", "16 px"]
    assert heat.z[0][0] == 10.0 and heat.z[1][1] == -5.0
    assert heat.z[0][1] is None and heat.z[1][0] is None  # not in the grid: left blank
    row = next(r for r in summary["rows"] if r["cell"] == "1x8px")
    lo, hi = row["diff_ci_points"]
    assert heat.text[0][0] == f"+10.0<br>[{lo:+.1f}, {hi:+.1f}]" and lo > 0
    widest = max(abs(v) for r in summary["rows"] if r["holes"] for v in r["diff_ci_points"])
    assert widest > 10.0  # the intervals reach past the largest change
    # white is "no change"; the scale is symmetric and as wide as the widest interval, so an
    # uncertain change shows pale rather than as the scale's darkest colour
    assert heat.zmid == 0 and heat.zmax == -heat.zmin == widest


def test_the_words_say_the_budget_and_list_settings_best_first(measured):
    path, _ = measured
    text = grid_view.words(grid_view.load(path)[0])
    assert "40 epochs on 43,000 training images" in text and "100 validation images" in text
    assert text.index("1 hole of 8 px gave +10.0") < text.index("2 holes of 16 px gave -5.0")
    assert "Coarse Dropout off: 60.0%" in text


@pytest.mark.parametrize("content, why", [
    (None, "not measured yet"),
    ("{not json", "could not be read"),
    ('{"rows": 5}', "could not be read"),
    ('["a list"]', "could not be read"),
])
def test_a_missing_or_broken_file_says_so_and_draws_nothing(tmp_path, content, why):
    path = tmp_path / "grid.json"
    if content is not None:
        path.write_text(content)
    summary, reason = grid_view.load(path)
    assert summary is None and why in reason
    assert f"grid is {reason}." in grid_view.not_measured(reason)  # one sentence: "... is not shown: its file ..."


def test_a_grid_without_off_or_without_any_setting_is_only_partly_measured(tmp_path):
    only_off, _ = summary_file(tmp_path, [cell("off", 0, 0, [1, 0, 1])])
    assert "only part" in grid_view.load(only_off)[1]
    assert "grid is only partly measured (it needs" in grid_view.not_measured(grid_view.load(only_off)[1])
    no_off, _ = summary_file(tmp_path, [cell("1x8px", 1, 8, [1, 0, 1])])  # no pairs without off
    assert "only part" in grid_view.load(no_off)[1]


def test_rows_with_missing_or_non_finite_figures_are_left_out(measured):
    path, summary = measured
    rows = summary["rows"]
    rows[1] = {**rows[1], "diff_points": float("nan")}
    rows[2] = {**rows[2], "diff_ci_points": [1.0]}
    path.write_text(json.dumps({"rows": rows + [{"holes": "two"}, None]}))
    assert "only part" in grid_view.load(path)[1]


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "grid.json"
    path.write_text(" " * (grid_view.MAX_BYTES + 1))
    assert "too large" in grid_view.load(path)[1]


def test_the_words_lead_with_the_verdict_of_interval_and_test_together(measured):
    text = grid_view.words(grid_view.load(measured[0])[0])
    # 1x8px: right on 10 more of 100 images and wrong on none, so interval and McNemar agree; 2x16px
    # (5 more wrong) has an interval below 0 but McNemar p = 0.06: not detected
    assert "1 of the 2 settings measured differ detectably from off: 1 hole of 8 px (+10.0 points)." in text
    assert text.index("differ detectably") < text.index("Coarse Dropout off:")


def test_a_grid_where_no_setting_passes_both_says_so_and_why():
    rows = [{"holes": 0, "size": 0},
            {"holes": 1, "size": 8, "diff_points": 0.6, "diff_ci_points": [-0.4, 1.6], "p_value": 0.27},
            {"holes": 2, "size": 16, "diff_points": -0.9, "diff_ci_points": [-2.0, 0.2], "p_value": 0.13}]
    assert g.verdict(rows) == ("No Coarse Dropout setting of the 2 measured differs detectably from off "
                               "at this budget: every interval contains 0.")
    rows[2].update(diff_ci_points=[-2.0, -0.1], p_value=0.06)
    assert g.verdict(rows).endswith("no interval that excludes 0 has McNemar p < 0.05 as well.")
    rows[2]["p_value"] = 0.01
    assert g.verdict(rows) == "1 of the 2 settings measured differ detectably from off: 2 holes of 16 px (-0.9 points)."
