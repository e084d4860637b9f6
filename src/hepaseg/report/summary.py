"""The report's text summary, stated from the numbers: which algorithm is better, and whether significantly."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..evaluation.results import INTER_RATER, MEAN, Results
from ..evaluation.stats import ALL_RATERS, DETECTION, SEGMENTATION, PairedTest, find_test
from .tables import mean_sd, median


def _mean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def _verdict(test: PairedTest | None, fdr: float) -> str:
    if test is None or math.isnan(test.p):
        return "no test possible (no pair with a difference)"
    state = "significant" if test.significant else "not significant"
    return (f"{state}: Wilcoxon signed-rank p = {test.p:.4f}, Benjamini-Hochberg adjusted "
            f"p = {test.p_adjusted:.4f} at FDR {fdr:g}, {test.n} cases")


def compare(name: str, first: str, second: str, a: float, b: float) -> str:
    """"X is better than Y in <name> (x vs y)", the better one and its value first; or a tie."""
    if math.isclose(a, b, abs_tol=5e-4):
        return f"{first} and {second} reach the same {name} ({a:.3f} vs {b:.3f})"
    (better, high), (worse, low) = sorted([(first, a), (second, b)], key=lambda item: -item[1])
    return f"{better} is better than {worse} in {name} ({high:.3f} vs {low:.3f})"


def summary_paragraphs(results: Results, tests: Sequence[PairedTest]) -> list[str]:
    """Plain-text paragraphs: segmentation, phi and detection, for the first two algorithms."""
    info = results.info
    fdr = info.config.fdr
    inter = mean_sd(results.values("segmentation", "dice", INTER_RATER, MEAN))
    lines = [f"{len(info.cases)} cases of split '{info.split}', raters {', '.join(info.raters)}, "
             f"algorithms {', '.join(info.algorithms)}. The raters agree with each other at a mean "
             f"Dice of {inter}."]
    for algorithm in info.algorithms:
        lines.append(
            f"{algorithm}: mean Dice against the raters {mean_sd(results.values('scores', 'mean_dice', algorithm))}, "
            f"\u03c6 {mean_sd(results.values('scores', 'phi', algorithm))}, detection F1 (mean over raters) "
            f"{mean_sd(results.values(DETECTION, 'f1', algorithm, MEAN))}, median FP count "
            f"{median(results.values(DETECTION, 'fp', algorithm, MEAN))}.")
    if len(info.algorithms) < 2:
        return lines
    first, second = info.algorithms[:2]
    for label, table, field, rater, family, metric, test_rater in (
            ("mean Dice", "scores", "mean_dice", None, SEGMENTATION, "dice", MEAN),
            ("\u03c6", "scores", "phi", None, SEGMENTATION, "phi", ALL_RATERS),
            ("detection F1", DETECTION, "f1", MEAN, DETECTION, "f1", MEAN)):
        a = _mean(results.values(table, field, first, rater))
        b = _mean(results.values(table, field, second, rater))
        test = find_test(tests, family, metric, test_rater)
        lines.append(f"{compare(label, first, second, a, b)}; the difference is "
                     f"{_verdict(test, fdr)}.")
    significant = [t for t in tests if t.significant]
    lines.append(f"{len(significant)} of {len(tests)} paired tests are significant after correction "
                 f"({sum(t.family == SEGMENTATION for t in significant)} segmentation, "
                 f"{sum(t.family == DETECTION for t in significant)} detection).")
    return lines
