"""Wilcoxon + Benjamini-Hochberg: the values are scipy's and statsmodels' called directly; the rank
correlation against a hand computation from ranks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t as student_t
from scipy.stats import wilcoxon
from statsmodels.stats.multitest import multipletests

from hepaseg.evaluation.stats import Comparison, family_tests, rank_correlation, wilcoxon_paired


@pytest.mark.parametrize("seed", range(5))
def test_wilcoxon_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.4, 0.9, 19)
    b = a - rng.normal(0.03, 0.05, 19)
    statistic, p, n = wilcoxon_paired(a, b)
    expected = wilcoxon(a, b, alternative="two-sided")
    assert (statistic, p, n) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue), 19)


def test_nan_pairs_are_dropped():
    a = np.array([0.5, 0.6, np.nan, 0.8, 0.9, 0.7, 0.65])
    b = np.array([0.4, 0.7, 0.5, np.nan, 0.85, 0.6, 0.6])
    statistic, p, n = wilcoxon_paired(a, b)
    keep = ~(np.isnan(a) | np.isnan(b))
    expected = wilcoxon(a[keep], b[keep])
    assert n == 5
    assert (statistic, p) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))


def test_no_difference_gives_nan():
    statistic, p, n = wilcoxon_paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert math.isnan(statistic) and math.isnan(p) and n == 3
    assert math.isnan(wilcoxon_paired([np.nan], [1.0])[1])


def test_benjamini_hochberg_matches_statsmodels():
    rng = np.random.default_rng(7)
    comparisons = []
    for shift in (0.0, 0.02, 0.05, 0.1, 0.2):
        a = rng.uniform(0.3, 0.9, 15)
        comparisons.append(Comparison("dice", f"s{shift}", tuple(a), tuple(a - shift + rng.normal(0, 0.03, 15))))
    comparisons.append(Comparison("dice", "same", (0.5, 0.6), (0.5, 0.6)))  # untestable
    tests = family_tests("segmentation", comparisons, fdr=0.05)
    raw = np.array([wilcoxon(c.first, c.second).pvalue for c in comparisons[:-1]])
    reject, adjusted, _, _ = multipletests(raw, alpha=0.05, method="fdr_bh")
    assert [t.p for t in tests[:-1]] == pytest.approx(raw.tolist())
    assert [t.p_adjusted for t in tests[:-1]] == pytest.approx(adjusted.tolist())
    assert [t.significant for t in tests[:-1]] == reject.tolist()
    assert any(reject) and not all(reject)
    last = tests[-1]
    assert math.isnan(last.p) and math.isnan(last.p_adjusted) and not last.significant
    assert {t.family for t in tests} == {"segmentation"}


def test_rank_correlation_by_hand():
    """x in rank order, y's ranks 2 1 4 3 5: squared rank differences sum to 4, so rho = 1 - 6 * 4 /
    (5 * 24) = 0.8. Exact p: of the 5! = 120 orderings, rho >= 0.8 (squared differences <= 4) for the
    identity, the 4 swaps of neighbours and the 3 pairs of disjoint neighbour swaps (8), and as many
    have rho <= -0.8, so p = 16 / 120. The values themselves do not matter, only their ranks; a NaN
    pair is left out."""
    x = [0.10, 0.20, 0.35, 0.40, 0.90, np.nan]
    y = [0.52, 0.50, 0.71, 0.60, 0.80, 0.99]
    result = rank_correlation(x, y)
    assert (result.rho, result.p, result.n, result.p_method) == (pytest.approx(0.8), pytest.approx(16 / 120), 5,
                                                                 "exact")
    three = rank_correlation([3, 2, 1], [1, 2, 3])
    assert (three.rho, three.p) == (pytest.approx(-1.0), pytest.approx(2 / 6)), "2 of the 6 orderings are extreme"


def test_rank_correlation_of_many_pairs_uses_the_t_approximation():
    """Above 9 pairs: p two-sided from t = rho * sqrt((n - 2) / (1 - rho^2)) with n - 2 degrees of freedom."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=17)
    y = x + rng.normal(0, 0.3, 17)
    result = rank_correlation(x, y)
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))  # no ties: ranks 0..16
    rho = 1 - 6 * float(((rx - ry) ** 2).sum()) / (17 * (17**2 - 1))
    t = rho * math.sqrt(15 / (1 - rho**2))
    assert (result.rho, result.n, result.p_method) == (pytest.approx(rho), 17, "t approximation")
    assert result.p == pytest.approx(2 * student_t.sf(abs(t), 15))


def test_rank_correlation_undefined_says_why():
    two = rank_correlation([0.1, 0.2, np.nan], [0.5, 0.6, 0.7], names=("validation score", "test score"))
    assert (two.rho, two.p, two.n) == (None, None, 2)
    assert two.note == "only 2 pair(s) of validation score and test score, fewer than 3"
    flat = rank_correlation([0.3, 0.3, 0.3], [0.5, 0.6, 0.7], names=("validation score", "test score"))
    assert (flat.rho, flat.p, flat.note) == (None, None, "every validation score is the same")
