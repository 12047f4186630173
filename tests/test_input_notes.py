"""Classify's notes on the input (issue 26.7): the crop's share, tiny pictures, and the
out-of-distribution check calibrated for the shipped weights (weights/ood.json)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from cifar_s9 import paths
from cifar_s9.analysis import ood
from cifar_s9.app import texts


@pytest.mark.parametrize("w, h, cut", [(4000, 300, 1 - 300 / 4000), (300, 4000, 0.925), (32, 32, 0.0),
                                       (1920, 1080, 0.4375), (640, 480, 0.25)])
def test_crop_cut_by_hand(w, h, cut):
    assert texts.crop_cut(w, h) == pytest.approx(cut)


def test_crop_cut_refuses_an_empty_size():
    with pytest.raises(ValueError):
        texts.crop_cut(0, 10)


def test_a_panorama_says_how_much_was_cut_and_where():
    notes = texts.input_warnings(4000, 300)
    assert notes == [("⚠️ **Heavy crop**: the network sees only the centre 300x300 square of this "
                      "4000x300 image; 92% of it (left and right) is cut away.")]
    assert texts.input_warnings(640, 480) == [] and texts.input_warnings(1080, 1920)[0].count("top and bottom")


def test_a_tiny_picture_is_named_as_upscaled():
    (note,) = texts.input_warnings(8, 8)
    assert "Tiny image" in note and "8x8" in note and "64 pixels" in note
    assert texts.input_warnings(32, 32) == []


def test_threshold_and_flag_rate_by_hand():
    scores = np.array([0.9, 0.2, 0.5, 0.7, 0.3, 0.99, 0.6, 0.8, 0.4, 0.95])
    t = ood.pick_threshold(scores, 0.2)  # the 20% quantile ('lower'): the 2nd-lowest score
    assert t == 0.3 and ood.flag_rate(scores, t) == 0.1  # only 0.2 lies strictly below
    assert ood.max_softmax(np.array([[0.0, 0.0], [1000.0, 0.0]])) == pytest.approx([0.5, 1.0])
    with pytest.raises(ValueError):
        ood.pick_threshold(scores, 1.5)


CAL = ood.Calibration(threshold=0.44, false_alarm_test=0.052, n_test=10_000, calibration_data="x",
                      weights_sha256="abc")


def test_the_ood_line_says_what_the_score_is_and_its_false_alarm_rate():
    flagged = texts.ood_line(0.30, CAL)
    assert "Possibly not a CIFAR-10 picture" in flagged and "30%" in flagged
    assert "top-class probability, 30%, is under" in flagged
    assert "44% threshold flags 5.2% of the 10,000 CIFAR-10 test images" in flagged
    passed = texts.ood_line(0.90, CAL)
    assert "90%, above the threshold" in passed and "5.2%" in passed and "⚠️" not in passed
    assert "no calibrated" in texts.ood_line(0.3, None) and texts.ood_line(0.9, None) == ""


def test_classify_note_puts_every_warning_before_the_general_words():
    probs = np.full(10, 0.1)
    note = texts.classify_note(probs, (4000, 300), CAL)
    assert note.index("Heavy crop") < note.index("Possibly not") < note.index("knows only the ten")


def test_the_shipped_calibration_belongs_to_the_shipped_weights(tmp_path):
    sha = hashlib.sha256(paths.DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    cal = ood.Calibration.load(paths.OOD_CALIBRATION, sha)
    assert cal is not None, "weights/ood.json was made for other weights: rerun bench/ood_calibration.py"
    assert 0 < cal.threshold < 1 and cal.n_test == 10_000 and 0.02 < cal.false_alarm_test < 0.1
    assert ood.Calibration.load(paths.OOD_CALIBRATION, "other weights") is None
    broken = tmp_path / "ood.json"
    broken.write_text(json.dumps({"threshold": "NaN"}))
    assert ood.Calibration.load(broken, sha) is None and ood.Calibration.load(tmp_path / "none", sha) is None
