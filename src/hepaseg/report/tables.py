"""The paper's Table 1 (segmentation) and Table 2 (detection), as Markdown and CSV.

Cells are mean +- SD over the cases of the split (sample SD, n - 1; NaN values left out, e.g. the
recall of a case without reference lesions), FP count as the median over cases. "Ri" is the
per-case mean over raters, "(Ri,Rj)" the per-case mean over rater pairs (lower-index rater as
reference). p-values: two-sided Wilcoxon signed-rank test of the first two algorithms on per-case
pairs; ``*`` marks significance after Benjamini-Hochberg within the family (segmentation,
detection) at the run's FDR.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..evaluation.results import INTER_RATER, MEAN, Results
from ..evaluation.stats import ALL_RATERS, DETECTION, DETECTION_METRICS, SEGMENTATION, PairedTest, find_test

PM = "\u00b1"
DETECTION_TITLES = {"recall": "Recall", "precision": "Precision", "f1": "F1", "fpc": "FPC"}


@dataclass(frozen=True)
class Table:
    """A table of formatted cells; ``name`` is the file stem (``table1``)."""

    name: str
    title: str
    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def markdown(self) -> str:
        lines = [f"**{self.title}.** {self.caption}", "",
                 "| " + " | ".join(self.header) + " |",
                 "|" + "|".join("---" for _ in self.header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return buffer.getvalue()


def mean_sd(values: ArrayLike, pm: str = PM) -> str:
    """``0.738 ± 0.194`` over the non-NaN values (sample SD; ``pm`` between them); ``-`` if there is none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return "-"
    if v.size == 1:
        return f"{v[0]:.3f}"
    return f"{v.mean():.3f} {pm} {v.std(ddof=1):.3f}"


def median(values: ArrayLike) -> str:
    """The median of the non-NaN values to one decimal, without a trailing ``.0`` (``2.3``, ``6``)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return "-" if v.size == 0 else f"{round(float(np.median(v)), 1):g}"


def p_value(test: PairedTest | None) -> str:
    """``0.0017`` (four decimals), ``<0.0001``, ``*`` if significant after BH; ``-`` if untested."""
    if test is None or math.isnan(test.p):
        return "-"
    text = "<0.0001" if test.p < 1e-4 else f"{test.p:.4f}"
    return text + ("*" if test.significant else "")


def _compared(results: Results, tests: Sequence[PairedTest]) -> str:
    a = results.info.algorithms
    return f"{a[0]} vs {a[1]}" if tests and len(a) >= 2 else "none"


def table1(results: Results, tests: Sequence[PairedTest]) -> Table:
    """Segmentation: Dice per rater, mean Dice over raters, phi; a p-value row; the inter-rater row."""
    raters, algorithms = results.info.raters, results.info.algorithms
    header = ("", *(f"D(\u00b7,{r})" for r in raters), "D(\u00b7,Ri)", f"\u03c6(\u00b7,{','.join(raters)})")
    rows = [(a, *(mean_sd(results.values(SEGMENTATION, "dice", a, r)) for r in raters),
             mean_sd(results.values("scores", "mean_dice", a)), mean_sd(results.values("scores", "phi", a)))
            for a in algorithms]
    if tests:
        rows.append(("p-value", *(p_value(find_test(tests, SEGMENTATION, "dice", r)) for r in (*raters, MEAN)),
                     p_value(find_test(tests, SEGMENTATION, "phi", ALL_RATERS))))
    inter = mean_sd(results.values(SEGMENTATION, "dice", INTER_RATER, MEAN))
    rows.append(("(Ri,Rj)", *("" for _ in raters), inter, ""))
    alpha = results.info.config.phi_alpha
    caption = (f"Segmentation, {len(results.info.cases)} cases of split '{results.info.split}': "
               f"mean {PM} SD over cases of the Dice score against each rater, of its mean over "
               f"raters, and of the uncertainty-aware score \u03c6 (alpha {alpha:g}; {1 - alpha:g} = "
               f"rater level). (Ri,Rj): mean pairwise Dice among raters. p-value: Wilcoxon "
               f"signed-rank, {_compared(results, tests)}; * significant after Benjamini-Hochberg "
               f"(FDR {results.info.config.fdr:g}).")
    return Table("table1", "Table 1", caption, header, tuple(rows))


def table2(results: Results, tests: Sequence[PairedTest]) -> Table:
    """Detection: recall, precision, F1 (mean +- SD) and FPC (median) per rater, Ri, (Ri,Rj)."""
    raters, algorithms = results.info.raters, results.info.algorithms
    p_column = bool(tests)
    header = [""]
    for name in DETECTION_METRICS:
        header += [f"{DETECTION_TITLES[name]} {a}" for a in algorithms] + ([f"{DETECTION_TITLES[name]} p"] * p_column)

    def cell(name: str, algorithm: str, rater: str) -> str:
        values = results.values(DETECTION, DETECTION_METRICS[name], algorithm, rater)
        return median(values) if name == "fpc" else mean_sd(values)

    rows = []
    for rater, title in [*((r, r) for r in raters), (MEAN, "Ri")]:
        row = [title]
        for name in DETECTION_METRICS:
            row += [cell(name, a, rater) for a in algorithms]
            row += [p_value(find_test(tests, DETECTION, name, rater))] * p_column
        rows.append(tuple(row))
    inter = ["(Ri,Rj)"]
    for name in DETECTION_METRICS:
        inter += [cell(name, INTER_RATER, MEAN)] + [""] * (len(algorithms) - 1 + p_column)
    rows.append(tuple(inter))
    caption = (f"Detection, {len(results.info.cases)} cases of split '{results.info.split}': mean {PM} SD "
               f"over cases of recall, precision and F1, median over cases of the false-positive count "
               f"(FPC), against each rater and as the per-case mean over raters (Ri). (Ri,Rj): raters "
               f"against each other (lower-index rater as reference), one value per metric. p: Wilcoxon "
               f"signed-rank, {_compared(results, tests)}; * significant after Benjamini-Hochberg (FDR "
               f"{results.info.config.fdr:g}). Recall is undefined (left out) for a case without "
               f"reference lesions, precision for a case without predicted lesions.")
    return Table("table2", "Table 2", caption, tuple(header), tuple(rows))
