"""The comparison statistics against numbers worked by hand (z = 1.959964, z^2 = 3.841459)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from cifar_s9.experiments.stats import (accuracy, format_p, mcnemar_exact, newcombe_paired_interval,
                            paired_difference, paired_seed_difference, points, seed_band, verdict,
                            wilson_interval)


def correctness(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image correctness vectors for a 2x2 table, in a shuffled order (order must not matter)."""
    a = np.array([1] * both + [1] * only_a + [0] * only_b + [0] * neither, bool)
    b = np.array([1] * both + [0] * only_a + [1] * only_b + [0] * neither, bool)
    perm = np.random.default_rng(0).permutation(a.size)
    return a[perm], b[perm]


# ---------------------------------------------------------------- Wilson
def test_wilson_8_of_10_by_hand():
    # p = 0.8, z^2/n = 0.3841459, denominator 1.3841459
    # centre = (0.8 + 3.841459/20) / 1.3841459 = 0.9920730 / 1.3841459 = 0.716740
    # half = 1.959964 * sqrt(0.8*0.2/10 + 3.841459/400) / 1.3841459
    #      = 1.959964 * sqrt(0.0256036) / 1.3841459 = 1.959964 * 0.1600112 / 1.3841459 = 0.226577
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.716740 - 0.226577, abs=2e-6)   # 0.490163
    assert hi == pytest.approx(0.716740 + 0.226577, abs=2e-6)   # 0.943317


def test_wilson_16_of_20_by_hand():
    # centre = (0.8 + 0.0960365) / 1.1920730 = 0.751663; half = 1.959964 * sqrt(0.008 + 0.0024009)
    # / 1.1920730 = 1.959964 * 0.1019848 / 1.1920730 = 0.167680
    lo, hi = wilson_interval(16, 20)
    assert (lo, hi) == (pytest.approx(0.583983, abs=2e-6), pytest.approx(0.919343, abs=2e-6))


def test_wilson_edges_stay_inside_0_1_and_keep_width():
    # k = 0: centre = half = (z^2/2n)/(1+z^2/n) = 0.1920730/1.3841459 = 0.138766; upper 0.277533
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.277533, abs=2e-6))
    assert wilson_interval(10, 10) == (pytest.approx(1 - 0.277533, abs=2e-6), 1.0)
    # n = 1 still gives an interval, not a point
    lo, hi = wilson_interval(1, 1)
    assert 0 < lo < 1 and hi == 1.0


def test_wilson_agrees_with_scipy():
    for k, n in ((3, 7), (412, 500), (9000, 10000)):
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson_interval(k, n) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))


@pytest.mark.parametrize("k,n", [(0, 0), (-1, 5), (6, 5)])
def test_wilson_rejects_impossible_counts(k, n):
    with pytest.raises(ValueError):
        wilson_interval(k, n)


def test_accuracy_counts_a_correctness_vector():
    acc = accuracy([True] * 8 + [False] * 2)
    assert (acc.k, acc.n, acc.value) == (8, 10, 0.8)
    assert acc.lo == pytest.approx(0.490163, abs=2e-6)


# ---------------------------------------------------------------- McNemar
def test_mcnemar_exact_by_hand():
    # 1 vs 9 discordant: P(X <= 1 | Bin(10, 1/2)) = (1 + 10)/1024; two-sided 22/1024 = 0.021484375
    # mid-p = 22/1024 - P(X = 1) = 22/1024 - 10/1024 = 12/1024
    assert mcnemar_exact(1, 9) == (pytest.approx(22 / 1024), pytest.approx(12 / 1024))
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)  # symmetric in the two arms
    # all 5 discordant one way: 2 * (1/32) = 0.0625, not significant: 5 images are too few
    assert mcnemar_exact(0, 5) == (pytest.approx(0.0625), pytest.approx(0.03125))
    # 3 vs 3: 2 * 42/64 = 1.3125 -> capped at 1; mid-p 84/64 - 20/64 = 1
    assert mcnemar_exact(3, 3) == (1.0, pytest.approx(1.0))
    # no discordant images: no evidence at all
    assert mcnemar_exact(0, 0) == (1.0, 1.0)


def test_mcnemar_matches_scipy_binomtest():
    for b, c in ((1, 6), (12, 30), (40, 41), (0, 17)):
        assert mcnemar_exact(b, c)[0] == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-12)


# ---------------------------------------------------------------- paired interval
def test_newcombe_by_hand():
    # n = 20: both 10, A only 1, B only 6, neither 3. acc(B) = 16/20 = 0.8, acc(A) = 11/20 = 0.55
    # Wilson: B (0.583983, 0.919342), A (0.342085, 0.741802)
    # phi = (10*3 - 6*1) / sqrt(16 * 4 * 11 * 9) = 24 / sqrt(6336) = 24 / 79.5990 = 0.301511
    # lower: x = 0.8 - 0.583983 = 0.216017, y = 0.741802 - 0.55 = 0.191802
    #   sqrt(x^2 - 2*phi*x*y + y^2) = sqrt(0.046663 - 0.024985 + 0.036788) = sqrt(0.058466) = 0.241797
    #   L = 0.25 - 0.241797 = 0.008203
    # upper: x = 0.919342 - 0.8 = 0.119342, y = 0.55 - 0.342085 = 0.207915
    #   sqrt(0.014243 - 0.014963 + 0.043229) = sqrt(0.042509) = 0.206177;  U = 0.456177
    lo, hi = newcombe_paired_interval(10, 1, 6, 3)
    assert lo == pytest.approx(0.008203, abs=5e-6)
    assert hi == pytest.approx(0.456177, abs=5e-6)


def test_paired_difference_and_verdict_when_interval_and_test_disagree():
    # the table above: the interval just excludes 0 but McNemar (1 vs 6) gives p = 2 * 8/128 = 0.125
    d = paired_difference(*correctness(10, 1, 6, 3))
    assert (d.n, d.both, d.only_a, d.only_b, d.neither) == (20, 10, 1, 6, 3)
    assert d.diff == pytest.approx(0.25) and d.acc_a == 0.55 and d.acc_b == 0.8
    assert d.p_value == pytest.approx(0.125) and d.mid_p == pytest.approx(0.125 - 7 / 128)
    assert not d.detected  # both must agree before we claim a difference
    assert verdict(d).startswith("No difference this budget can detect: B - A = 25.0 points (95% CI 0.8 to 45.6;")


def test_verdict_names_the_better_arm_either_way():
    # 1000 images: both 800, A only 20, B only 50 -> diff = +3.0 points, McNemar 20 vs 50
    d = paired_difference(*correctness(800, 20, 50, 130))
    p = binomtest(20, 70, 0.5).pvalue  # 0.00049...
    assert d.p_value == pytest.approx(p) and p < 0.001
    text = verdict(d, "no dropout", "dropout")
    assert text.startswith("dropout is 3.0 points better than no dropout (95% CI ")
    assert "p < 0.001" in text and "1000 images" in text
    assert d.lo > 0
    # swap the arms: the same sentence with the names swapped and the interval mirrored
    r = paired_difference(*correctness(800, 50, 20, 130))
    assert verdict(r, "dropout", "no dropout") == text
    assert (r.lo, r.hi) == (pytest.approx(-d.hi), pytest.approx(-d.lo))


def test_no_discordant_pairs():
    d = paired_difference(*correctness(800, 0, 0, 200))
    assert d.diff == 0 and d.p_value == 1.0 and not d.detected
    # phi = 1 (identical outcomes): the interval is |(p - l) - (u - p)| either side of 0, tiny
    # but not a point: Wilson 800/1000 = (0.774101, 0.823897) -> 0.025899 - 0.023897 = 0.002002
    # (the exact Wilson limits give 0.002296)
    assert d.lo == pytest.approx(-d.hi) and 0 < d.hi < 0.003
    assert "same 1000 images right and wrong" in verdict(d)


def test_all_discordant_one_way():
    # 10 images, A wrong on all, B right on all: diff = 1, p = 2/1024, interval stays within [-1, 1]
    d = paired_difference(*correctness(0, 0, 10, 0))
    assert d.diff == 1.0 and d.p_value == pytest.approx(2 / 1024)
    assert 0.5 < d.lo < 1.0 and d.hi == 1.0 and d.detected
    assert verdict(d).startswith("B is 100.0 points better than A (95% CI ")


def test_small_n_cannot_detect_a_real_looking_gap():
    # 4 images: A 1 right, B 4 right; McNemar 0 vs 3 -> p = 2/8 = 0.25
    d = paired_difference(*correctness(1, 0, 3, 0))
    assert d.p_value == pytest.approx(0.25) and not d.detected
    assert verdict(d).startswith("No difference this budget can detect")


def test_paired_difference_rejects_unpaired_inputs():
    with pytest.raises(ValueError, match="same images"):
        paired_difference(np.ones(5, bool), np.ones(6, bool))


# ---------------------------------------------------------------- seeds
def test_seed_band_by_hand():
    # 0.80, 0.82, 0.84: mean 0.82, sd 0.02, t(0.975, 2) = 4.302653
    # half = 4.302653 * 0.02 / sqrt(3) = 0.0860531 / 1.7320508 = 0.049683
    b = seed_band([0.80, 0.82, 0.84])
    assert (b.mean, b.sd, b.k) == (pytest.approx(0.82), pytest.approx(0.02), 3)
    assert (b.lo, b.hi) == (pytest.approx(0.82 - 0.049683, abs=1e-6), pytest.approx(0.82 + 0.049683, abs=1e-6))


def test_one_seed_has_no_band():
    assert seed_band([0.7]) == seed_band(np.array([0.7]))
    b = seed_band([0.7])
    assert (b.lo, b.hi, b.sd, b.k) == (0.7, 0.7, 0.0, 1)
    with pytest.raises(ValueError):
        seed_band([])


def test_paired_seed_difference_by_hand():
    # B - A per seed: 0.02, 0.01, 0.03 -> mean 0.02, sd 0.01, half = 4.302653 * 0.01 / 1.7320508 = 0.024842
    b = paired_seed_difference([0.80, 0.81, 0.79], [0.82, 0.82, 0.82])
    assert b.mean == pytest.approx(0.02) and b.lo == pytest.approx(0.02 - 0.024842, abs=1e-6)
    with pytest.raises(ValueError):
        paired_seed_difference([0.8], [0.8, 0.9])


def test_number_formatting():
    assert points(0.0123) == "1.2" and points(-0.0004) == "0.0" and points(-0.012) == "-1.2"
    assert format_p(0.0004) == "p < 0.001" and format_p(0.0042) == "p = 0.004" and format_p(0.45) == "p = 0.45"
