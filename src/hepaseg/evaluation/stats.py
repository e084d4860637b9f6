"""Paired comparison of algorithms: Wilcoxon signed-rank + Benjamini-Hochberg (METHOD.md section 8).

Which pairs are compared: every pair of algorithms in the order given, or each algorithm against one
reference algorithm (``algorithm_pairs``). Benjamini-Hochberg runs over a whole family, i.e. over
every metric, rater and pair of that family at once.

The tests are scipy's and statsmodels' (``scipy.stats.wilcoxon``, two-sided, its default
``zero_method="wilcox"`` and ``method="auto"``; ``statsmodels.stats.multitest.multipletests``
with ``fdr_bh``), never re-implemented here. Per-case pairs with a NaN on either side (e.g. recall
of a case without reference lesions) are dropped. A test that cannot be made (no pair left, or all
differences zero) has statistic and p NaN, takes no part in the correction and is not significant.

``rank_correlation`` is ``scipy.stats.spearmanr`` over paired values without NaN, its p exact
(``scipy.stats.permutation_test``) for up to 9 pairs (the study's selection check: each run's
validation score against its test score).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import permutation_test, rankdata, spearmanr, wilcoxon
from statsmodels.stats.multitest import multipletests

from ..errors import InputError
from .results import MEAN, Results


@dataclass(frozen=True)
class Comparison:
    """Per-case paired values of one metric: ``first[c]`` and ``second[c]`` belong to case c."""

    metric: str
    rater: str  # a rater name, "mean" (mean over raters per case) or "all" (phi)
    first: tuple[float, ...]
    second: tuple[float, ...]
    algorithms: tuple[str, str] = ("", "")  # the names of the first and second algorithm


@dataclass(frozen=True)
class PairedTest:
    """One row of ``stats.csv``."""

    family: str
    metric: str
    rater: str
    first: str  # algorithm
    second: str  # algorithm
    statistic: float
    p: float
    p_adjusted: float
    significant: bool
    n: int  # pairs used


def wilcoxon_paired(first: ArrayLike, second: ArrayLike) -> tuple[float, float, int]:
    """Two-sided Wilcoxon signed-rank test on paired values.

    Args:
        first: per-case values of the first algorithm, shape (n,).
        second: the second algorithm's values for the same cases.

    Returns:
        ``(statistic, p, n)`` as scipy reports them, n the pairs without NaN; statistic and p are
        NaN when no pair is left or every difference is zero.
    """
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.shape} vs {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if not np.any(a != b):
        return math.nan, math.nan, int(a.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's note on small samples / ties
        result = wilcoxon(a, b, alternative="two-sided")
    return float(result.statistic), float(result.pvalue), int(a.size)


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rho of paired values and its two-sided p (None with ``note`` saying why, where it is undefined)."""

    rho: float | None
    p: float | None
    n: int  # pairs used (neither value NaN)
    note: str = ""
    p_method: str = ""  # "exact" (every pairing) or "t approximation"


MIN_CORRELATION_PAIRS = 3
EXACT_CORRELATION_PAIRS = 9  # up to this many pairs p is exact: all n! pairings (9! = 362 880)


def rank_correlation(x: ArrayLike, y: ArrayLike, names: tuple[str, str] = ("x", "y")) -> RankCorrelation:
    """Spearman's rho (``scipy.stats.spearmanr``) of the pairs without NaN, with a two-sided p.

    p is exact up to ``EXACT_CORRELATION_PAIRS`` pairs (``scipy.stats.permutation_test`` over every
    pairing of the ranks), else spearmanr's t approximation, which is far off for a handful of
    pairs (it gives p = 0 for three pairs in the same order; the exact p is 1/3). Undefined (rho
    and p None, with a note naming the sides by ``names``) for fewer than ``MIN_CORRELATION_PAIRS``
    pairs or where one side has a single value.
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.shape} vs {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n < MIN_CORRELATION_PAIRS:
        return RankCorrelation(None, None, n, f"only {n} pair(s) of {names[0]} and {names[1]}, fewer than "
                                              f"{MIN_CORRELATION_PAIRS}")
    constant = [name for name, v in zip(names, (a, b)) if np.all(v == v[0])]
    if constant:
        return RankCorrelation(None, None, n, f"every {' and every '.join(constant)} is the same")
    result = spearmanr(a, b)
    if n > EXACT_CORRELATION_PAIRS:
        return RankCorrelation(float(result.statistic), float(result.pvalue), n, p_method="t approximation")

    ranks_b = rankdata(b) - rankdata(b).mean()

    def rho(ranks_a: np.ndarray, axis: int = -1) -> np.ndarray:  # Pearson of the ranks: Spearman's rho
        centred = ranks_a - ranks_a.mean(axis=axis, keepdims=True)
        return (centred * ranks_b).sum(axis=axis) / np.sqrt((centred**2).sum(axis=axis) * (ranks_b**2).sum())

    # one sample, "pairings": every order of a's ranks against b's (n! of them), as scipy's docs do for Spearman
    exact = permutation_test((rankdata(a),), rho, permutation_type="pairings", vectorized=True, batch=50_000,
                             n_resamples=math.inf, alternative="two-sided")
    return RankCorrelation(float(result.statistic), float(exact.pvalue), n, p_method="exact")


def family_tests(family: str, comparisons: Sequence[Comparison], fdr: float = 0.05) -> tuple[PairedTest, ...]:
    """Wilcoxon per comparison, then Benjamini-Hochberg at ``fdr`` across the family.

    Returns:
        One ``PairedTest`` per comparison, in order; ``significant`` means the adjusted p-value is
        below ``fdr`` (statsmodels' ``reject``).
    """
    raw = [wilcoxon_paired(c.first, c.second) for c in comparisons]
    p_values = np.array([p for _, p, _ in raw], dtype=np.float64)
    valid = ~np.isnan(p_values)
    adjusted = np.full(p_values.shape, math.nan)
    reject = np.zeros(p_values.shape, dtype=bool)
    if valid.any():
        reject[valid], adjusted[valid], _, _ = multipletests(p_values[valid], alpha=fdr, method="fdr_bh")
    return tuple(
        PairedTest(family, c.metric, c.rater, *c.algorithms, stat, p, float(adj), bool(rej), n)
        for c, (stat, p, n), adj, rej in zip(comparisons, raw, adjusted, reject)
    )


def find_test(tests: Sequence[PairedTest], family: str, metric: str, rater: str,
              pair: tuple[str, str]) -> PairedTest | None:
    """The test of one family / metric / rater and pair of algorithms, or None."""
    return next((t for t in tests if (t.family, t.metric, t.rater, t.first, t.second) == (family, metric, rater, *pair)),
                None)


def tested_pairs(tests: Sequence[PairedTest]) -> list[tuple[str, str]]:
    """The pairs of algorithms in ``tests``, in the order of their first test."""
    return list(dict.fromkeys((t.first, t.second) for t in tests))


SEGMENTATION = "segmentation"
DETECTION = "detection"
ALL_RATERS = "all"  # the ``rater`` of phi, which uses every rater at once
SURFACE_METRICS = {"assd": "assd_mm", "hd95": "hd95_mm"}  # name -> column of segmentation.csv (mm)
DETECTION_METRICS = {"recall": "recall", "precision": "precision", "f1": "f1", "fpc": "fp"}  # name -> column
LOWER_IS_BETTER = frozenset({"assd", "hd95", "fpc"})
REFERENCE_OPTION = "--reference"


def algorithm_pairs(algorithms: Sequence[str], reference: str | None = None) -> list[tuple[str, str]]:
    """The pairs to test: every pair ``(a_i, a_j)``, i < j, or ``(reference, a)`` for every other a.

    Raises:
        InputError: ``reference`` is not one of ``algorithms``.
    """
    if reference is None:
        return list(itertools.combinations(algorithms, 2))
    if reference not in algorithms:
        raise InputError(REFERENCE_OPTION, f"{reference!r} is not among --pred ({', '.join(algorithms)})")
    return [(reference, a) for a in algorithms if a != reference]


def compare_algorithms(results: Results, pairs: Sequence[tuple[str, str]],
                       fdr: float | None = None) -> tuple[PairedTest, ...]:
    """The paper's tests for each pair: the segmentation family, then the detection family.

    Segmentation: Dice against each rater, mean Dice over raters (rater ``mean``), phi (rater
    ``all``), ASSD and HD95 as the per-case mean over raters (``mean``). Detection: recall,
    precision, F1 and FP count (``fpc``) against each rater and as the per-case mean over raters.
    Benjamini-Hochberg runs within each family, over all pairs together.

    Args:
        results: per-case rows of the algorithms.
        pairs: ``(first, second)`` algorithm names (``algorithm_pairs``).
        fdr: false discovery rate (default: the run's ``EvalConfig.fdr``).
    """
    fdr = results.info.config.fdr if fdr is None else fdr
    raters = results.info.raters

    def compared(pair: tuple[str, str], metric: str, rater: str, table: str, field: str, by: str | None) -> Comparison:
        first, second = (tuple(results.values(table, field, a, by).tolist()) for a in pair)
        return Comparison(metric, rater, first, second, pair)

    segmentation, detection = [], []
    for pair in pairs:
        segmentation += [compared(pair, "dice", r, SEGMENTATION, "dice", r) for r in raters]
        segmentation.append(compared(pair, "dice", MEAN, "scores", "mean_dice", None))
        segmentation.append(compared(pair, "phi", ALL_RATERS, "scores", "phi", None))
        segmentation += [compared(pair, name, MEAN, SEGMENTATION, column, MEAN) for name, column in SURFACE_METRICS.items()]
        detection += [compared(pair, name, r, DETECTION, column, r)
                      for name, column in DETECTION_METRICS.items() for r in (*raters, MEAN)]
    return family_tests(SEGMENTATION, segmentation, fdr) + family_tests(DETECTION, detection, fdr)
