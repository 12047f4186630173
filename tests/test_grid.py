"""The Coarse Dropout grid (issue 28.4) on synthetic data: cells, resume over sittings, the paired
summary against "off" and its sentence."""
from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
from synthetic import make_split

from cifar_s9.data.augment import AugmentConfig
from cifar_s9.data.cifar import ValidationSpec
from cifar_s9.experiments import grid as g
from cifar_s9.train.recipes import LAB_TRAIN

TINY = g.DropoutGrid(holes=(2,), sizes=(4,), epochs=2, subset=None, seed=0,
                     train=replace(LAB_TRAIN, batch_size=16, log_every=1000),
                     validation=ValidationSpec(per_class=2))


def test_cells_vary_only_coarse_dropout():
    base = AugmentConfig(dropout_p=0.3, flip_p=0.4)
    off, two_by_four = g.Cell(0, 0).aug(base), g.Cell(2, 4).aug(base)
    assert off == replace(base, dropout_p=0.0)
    assert two_by_four == replace(base, dropout_p=0.5, holes_min=2, holes_max=2, hole_height_min=4,
                                  hole_height_max=4, hole_width_min=4, hole_width_max=4)
    assert [c.name for c in g.DropoutGrid().cells()] == ["off", "1x8px", "1x16px", "2x8px", "2x16px"]


def test_the_grid_resumes_an_unfinished_cell_and_skips_finished_ones(tmp_path):
    train = make_split(80)
    stop = threading.Event()

    def stop_after_first_epoch(event):
        if type(event).__name__ == "EpochEvent":
            stop.set()

    done = g.run_grid(TINY, train, tmp_path, threads=1, stop=stop, callback=stop_after_first_epoch)
    assert done == [] and (tmp_path / "resume" / "off.pt").is_file()  # a sitting ended mid-cell
    done = g.run_grid(TINY, train, tmp_path, threads=1)
    assert done == ["2x4px", "off"] and not list((tmp_path / "resume").glob("*.pt"))
    off = g.load_cells(tmp_path)[1]
    assert off["cell"] == "off" and off["epochs"] == 2 and len(off["history"]) == 2
    assert {h["eval_split"] for h in off["history"]} == {"validation"}  # the curve is on validation images
    assert off["eval_images"] == 20 and off["train_images"] == 60
    assert len(g.correct_of(off)) == 20 and g.correct_of(off).mean() == off["accuracy"]



def test_a_second_run_skips_the_cell_another_run_holds(tmp_path):
    """Two `run`s share the grid: the cell one holds (its lock) is left to it, the rest are run."""
    import sys
    if sys.platform == "win32":
        import pytest
        pytest.skip("no advisory locks: one run at a time")
    with g.cell_lock(tmp_path, g.Cell(0, 0)) as mine:  # another run is training "off"
        assert mine
        with g.cell_lock(tmp_path, g.Cell(0, 0)) as theirs:
            assert not theirs
        done = g.run_grid(TINY, make_split(80), tmp_path, threads=1)
    assert done == ["2x4px"] and not (tmp_path / "cells" / "off.json").exists()
    assert g.run_grid(TINY, make_split(80), tmp_path, threads=1) == ["2x4px", "off"]  # released: run now

def cell(name, holes, size, correct):
    correct = np.asarray(correct, bool)
    return {"cell": name, "holes": holes, "size": size, "epochs": 40, "train_images": 43_000,
            "eval_images": len(correct), "accuracy": correct.mean(), "ci": [0, 1],
            "correct_packbits_hex": np.packbits(correct).tobytes().hex()}


def test_the_summary_pairs_each_cell_with_off_image_by_image():
    off = cell("off", 0, 0, [1] * 6 + [0] * 4)          # 60%
    on = cell("1x8px", 1, 8, [1] * 6 + [1, 1, 0, 0])    # 80%: right on two more images, wrong on none
    rows = {r["cell"]: r for r in g.summarize([on, off])["rows"]}
    assert rows["1x8px"]["diff_points"] == 20.0 and rows["1x8px"]["p_value"] == 0.5  # exact McNemar, 2 vs 0
    assert "diff_points" not in rows["off"]
    text = g.sentence(rows["1x8px"])
    assert text.startswith("At 40 epochs on 43,000 images, 1 hole of 8 px gave +20.0 points against off")
    assert "10 validation images" in text
    assert "McNemar p = 0.50)" in text  # the p-value said once
    assert g.summarize([on])["complete_against_off"] is False
