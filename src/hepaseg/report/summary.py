"""The report's text summary, stated from the numbers: which algorithm is best per metric, and which
differences are significant."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..evaluation.results import INTER_RATER, MEAN, Results
from ..evaluation.stats import (
    ALL_RATERS,
    DETECTION,
    SEGMENTATION,
    PairedTest,
    find_test,
    tested_pairs,
)
from .tables import Column, finite_mean, mean_sd, median

HEADLINES = (  # the metrics the summary ranks the algorithms by
    Column("mean Dice", "scores", "mean_dice", None, SEGMENTATION, "dice", MEAN),
    Column("\u03c6", "scores", "phi", None, SEGMENTATION, "phi", ALL_RATERS),
    Column("ASSD (mm)", SEGMENTATION, "assd_mm", MEAN, SEGMENTATION, "assd", MEAN),
    Column("HD95 (mm)", SEGMENTATION, "hd95_mm", MEAN, SEGMENTATION, "hd95", MEAN),
    Column("detection F1", DETECTION, "f1", MEAN, DETECTION, "f1", MEAN),
    Column("mean FP count", DETECTION, "fp", MEAN, DETECTION, "fpc", MEAN),
)


def compare(name: str, first: str, second: str, a: float, b: float, lower_is_better: bool = False) -> str:
    """"X is better than Y in <name> (x vs y)", the better one and its value first; or a tie.

    ``lower_is_better`` for distances and counts (ASSD, HD95, FP count)."""
    missing = [name_ for name_, value in ((first, a), (second, b)) if math.isnan(value)]
    if missing:
        return f"{first} and {second} cannot be compared in {name} (no value for {' and '.join(missing)})"
    if math.isclose(a, b, abs_tol=5e-4):
        return f"{first} and {second} reach the same {name} ({a:.3f} vs {b:.3f})"
    (better, high), (worse, low) = sorted([(first, a), (second, b)], key=lambda item: item[1] if lower_is_better
                                          else -item[1])
    return f"{better} is better than {worse} in {name} ({high:.3f} vs {low:.3f})"


def ranking(results: Results, tests: Sequence[PairedTest], headline: Column) -> str:
    """The best algorithm in one metric (mean over cases), the others in order, and which tested
    differences are significant after correction."""
    means = {a: finite_mean(results.values(headline.table, headline.field, a, headline.rater))
             for a in results.info.algorithms}
    ranked = sorted((a for a in means if not math.isnan(means[a])),
                    key=lambda a: means[a] if headline.lower_is_better else -means[a])
    if not ranked:
        return f"{headline.title}: no algorithm has a value."
    others = ", ".join(f"{a} {means[a]:.3f}" for a in ranked[1:])
    text = f"{headline.title}: best {ranked[0]} ({means[ranked[0]]:.3f}{'; ' + others if others else ''})."
    significant, other = [], []
    for first, second in tested_pairs(tests):
        test = find_test(tests, headline.family, headline.metric, headline.test_rater, (first, second))
        if test is not None and test.significant:
            verdict = compare(headline.title, first, second, means[first], means[second], headline.lower_is_better)
            significant.append(f"{verdict}, adjusted p = {test.p_adjusted:.4f}")
        else:
            other.append(f"{first} vs {second}")
    if significant:
        text += " Significant after correction: " + "; ".join(significant) + "."
    if other:
        text += " Not significant: " + ", ".join(other) + "."
    return text


def summary_paragraphs(results: Results, tests: Sequence[PairedTest]) -> list[str]:
    """Plain-text paragraphs: each algorithm's headline numbers, then per metric the best algorithm
    and the significant differences (Wilcoxon + Benjamini-Hochberg, ``stats.csv``)."""
    info = results.info
    inter = mean_sd(results.values(SEGMENTATION, "dice", INTER_RATER, MEAN))
    lines = [f"{len(info.cases)} cases of split '{info.split}', raters {', '.join(info.raters)}, "
             f"algorithms {', '.join(info.algorithms)}. The raters agree with each other at a mean "
             f"Dice of {inter}, ASSD {mean_sd(results.values(SEGMENTATION, 'assd_mm', INTER_RATER, MEAN))} mm."]
    for algorithm in info.algorithms:
        lines.append(
            f"{algorithm}: mean Dice against the raters {mean_sd(results.values('scores', 'mean_dice', algorithm))}, "
            f"\u03c6 {mean_sd(results.values('scores', 'phi', algorithm))}, ASSD "
            f"{mean_sd(results.values(SEGMENTATION, 'assd_mm', algorithm, MEAN))} mm, HD95 "
            f"{mean_sd(results.values(SEGMENTATION, 'hd95_mm', algorithm, MEAN))} mm, detection F1 (mean over raters) "
            f"{mean_sd(results.values(DETECTION, 'f1', algorithm, MEAN))}, median FP count "
            f"{median(results.values(DETECTION, 'fp', algorithm, MEAN))}.")
    if len(info.algorithms) < 2:
        return lines
    lines += [ranking(results, tests, h) for h in HEADLINES]
    significant = [t for t in tests if t.significant]
    lines.append(f"{len(significant)} of {len(tests)} paired tests are significant after Benjamini-Hochberg at "
                 f"FDR {info.config.fdr:g} ({sum(t.family == SEGMENTATION for t in significant)} segmentation, "
                 f"{sum(t.family == DETECTION for t in significant)} detection; every test in stats.csv).")
    return lines
