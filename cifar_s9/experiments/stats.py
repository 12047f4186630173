"""Honest comparisons of two training runs: accuracy with its 95% interval, the paired difference
of two networks scored on the same images, McNemar's exact test, and the sentence that says it.

Every function is pure and checked against hand-worked numbers in tests/test_stats.py.

What these numbers measure: the paired interval and McNemar's test treat the two trained networks
as fixed and ask how sure we can be, from these evaluation images, that one classifies better.
They say nothing about a rerun with another seed; for that, repeat each arm with k seeds
(`seed_band`, `paired_seed_difference`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

Z95 = 1.959963984540054  # the 97.5% point of the standard normal
ALPHA = 0.05


# ---------------------------------------------------------------- one accuracy

@dataclass(frozen=True)
class Proportion:
    k: int          # images right
    n: int          # images scored
    lo: float       # 95% Wilson interval
    hi: float

    @property
    def value(self) -> float:
        return self.k / self.n


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for k successes in n trials.

    Unlike the textbook p +- z*sqrt(p(1-p)/n) it stays inside [0, 1] and does not collapse to a
    point at 0/n or n/n, which is where short runs and small evaluation sets put us."""
    if n <= 0:
        raise ValueError(f"need at least one image to score, got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # at k = 0 or k = n one limit is exactly 0 or 1; rounding must not push it past
    return (0.0 if k == 0 else max(0.0, centre - half), 1.0 if k == n else min(1.0, centre + half))


def accuracy(correct: np.ndarray) -> Proportion:
    """Accuracy of a per-image correctness vector, with its 95% Wilson interval."""
    correct = np.asarray(correct, dtype=bool)
    k, n = int(correct.sum()), int(correct.size)
    return Proportion(k, n, *wilson_interval(k, n))


# ---------------------------------------------------------------- two networks, same images

@dataclass(frozen=True)
class PairedDifference:
    n: int            # images both networks scored
    both: int         # right in A and in B
    only_a: int       # right in A, wrong in B (discordant)
    only_b: int       # wrong in A, right in B (discordant)
    neither: int
    lo: float         # 95% interval of acc(B) - acc(A)
    hi: float
    p_value: float    # exact McNemar, two-sided
    mid_p: float      # McNemar mid-p (less conservative; reported alongside)

    @property
    def diff(self) -> float:
        """acc(B) - acc(A), as a fraction."""
        return (self.only_b - self.only_a) / self.n

    @property
    def acc_a(self) -> float:
        return (self.both + self.only_a) / self.n

    @property
    def acc_b(self) -> float:
        return (self.both + self.only_b) / self.n

    @property
    def detected(self) -> bool:
        """Both the interval and the test agree that there is a difference at the 5% level."""
        return detects(self.lo, self.hi, self.p_value)


def mcnemar_exact(only_a: int, only_b: int) -> tuple[float, float]:
    """(two-sided exact p, mid-p) of McNemar's test: under "no difference" each discordant image
    is equally likely to favour either network, so min(only_a, only_b) ~ Binomial(b + c, 1/2)."""
    m = only_a + only_b
    if m == 0:  # no image tells the networks apart: no evidence either way
        return 1.0, 1.0
    k = min(only_a, only_b)
    tail = 2.0 * float(_st.binom.cdf(k, m, 0.5))  # may pass 1 when k = m / 2
    return min(1.0, tail), min(1.0, tail - float(_st.binom.pmf(k, m, 0.5)))


def newcombe_paired_interval(both: int, only_a: int, only_b: int, neither: int,
                             z: float = Z95) -> tuple[float, float]:
    """95% interval for acc(B) - acc(A) on paired images: Newcombe's hybrid score interval
    (method 10 of Newcombe 1998, Stat Med 17:2635), as given by Fagerland, Lydersen & Laake
    (2014, Stat Methods Med Res). It combines the two Wilson intervals with the observed
    correlation phi of the paired outcomes, so it behaves at 0 or all discordant pairs, where the
    Wald interval on the discordant pairs collapses to a point."""
    n = both + only_a + only_b + neither
    if n <= 0:
        raise ValueError("need at least one image scored by both networks")
    p_b, p_a = (both + only_b) / n, (both + only_a) / n
    l_b, u_b = wilson_interval(both + only_b, n, z)
    l_a, u_a = wilson_interval(both + only_a, n, z)
    # phi of the 2x2 table (B right?, A right?); 0 when a margin is empty
    margins = (both + only_b) * (only_a + neither) * (both + only_a) * (only_b + neither)
    phi = (both * neither - only_b * only_a) / math.sqrt(margins) if margins else 0.0
    diff = p_b - p_a
    lower = math.sqrt(max(0.0, (p_b - l_b) ** 2 - 2 * phi * (p_b - l_b) * (u_a - p_a) + (u_a - p_a) ** 2))
    upper = math.sqrt(max(0.0, (u_b - p_b) ** 2 - 2 * phi * (u_b - p_b) * (p_a - l_a) + (p_a - l_a) ** 2))
    return max(-1.0, diff - lower), min(1.0, diff + upper)


def detects(lo: float, hi: float, p_value: float) -> bool:
    """A difference is detected when its interval excludes 0 and the test's p is below ALPHA."""
    return p_value < ALPHA and (lo > 0 or hi < 0)


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray) -> PairedDifference:
    """Compare two networks scored on the same images (per-image correctness, same order)."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"the two arms must be scored on the same images; got shapes {a.shape} and {b.shape}")
    both, only_a = int((a & b).sum()), int((a & ~b).sum())
    only_b, neither = int((~a & b).sum()), int((~a & ~b).sum())
    lo, hi = newcombe_paired_interval(both, only_a, only_b, neither)
    p, mid = mcnemar_exact(only_a, only_b)
    return PairedDifference(a.size, both, only_a, only_b, neither, lo, hi, p, mid)


# ---------------------------------------------------------------- k seeds per arm

@dataclass(frozen=True)
class Band:
    mean: float
    sd: float        # sample standard deviation over seeds (0 for one seed)
    lo: float        # 95% t-interval of the mean (equal to the mean for one seed: no band)
    hi: float
    k: int


def seed_band(values) -> Band:
    """Mean over k seeds with a 95% t-interval: the band drawn around a curve or a final score."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("need at least one seed")
    mean = float(x.mean())
    if x.size == 1:
        return Band(mean, 0.0, mean, mean, 1)
    sd = float(x.std(ddof=1))
    half = float(_st.t.ppf(0.975, x.size - 1)) * sd / math.sqrt(x.size)
    return Band(mean, sd, mean - half, mean + half, int(x.size))


def paired_seed_difference(acc_a, acc_b) -> Band:
    """Seed i of A paired with seed i of B: the t-interval of the mean difference B - A. Unlike the
    McNemar test on one pair of networks, this one includes the run-to-run (seed) variation."""
    a, b = np.asarray(acc_a, dtype=float), np.asarray(acc_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"need as many seeds in each arm, got {a.size} and {b.size}")
    return seed_band(b - a)


# ---------------------------------------------------------------- in words

def points(x: float) -> str:
    """A fraction as percentage points with one decimal ("1.2"); -0.0 printed as 0.0."""
    v = round(100 * x, 1)
    return f"{0.0 if v == 0 else v:.1f}"


def format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def verdict(d: PairedDifference, name_a: str = "A", name_b: str = "B") -> str:
    """"B is 1.2 points better (95% CI 0.4 to 2.0; p = 0.004)", or "no difference this budget
    can detect", with the interval and p-value either way."""
    ci = f"95% CI {points(d.lo)} to {points(d.hi)}"
    if d.only_a + d.only_b == 0:
        return (f"No difference this budget can detect: {name_a} and {name_b} got the same "
                f"{d.n} images right and wrong ({ci}).")
    if not d.detected:
        return (f"No difference this budget can detect: {name_b} - {name_a} = {points(d.diff)} points "
                f"({ci}; {format_p(d.p_value)}, McNemar on {d.n} images).")
    better, worse = (name_b, name_a) if d.diff > 0 else (name_a, name_b)
    lo, hi = (d.lo, d.hi) if d.diff > 0 else (-d.hi, -d.lo)
    return (f"{better} is {points(abs(d.diff))} points better than {worse} "
            f"(95% CI {points(lo)} to {points(hi)}; {format_p(d.p_value)}, McNemar on {d.n} images).")
