"""Wilcoxon + Benjamini-Hochberg: the values are scipy's and statsmodels' called directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import wilcoxon
from statsmodels.stats.multitest import multipletests

from hepaseg.evaluation.stats import Comparison, family_tests, wilcoxon_paired


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
