"""The paper's Table 1 (segmentation) and Table 2 (detection), as Markdown and CSV.

Cells are mean +- SD over the cases of the split (sample SD, n - 1; NaN values left out, e.g. the
recall of a case without reference lesions), FP count as the median over cases. "Ri" is the
per-case mean over raters, "(Ri,Rj)" the per-case mean over rater pairs (lower-index rater as
reference). One row per algorithm; p rows: two-sided Wilcoxon signed-rank test of each tested pair
of algorithms on per-case pairs; ``*`` marks significance after Benjamini-Hochberg over the family
(segmentation, detection: every metric, rater and pair) at the run's FDR.
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
from ..evaluation.stats import (
    ALL_RATERS,
    DETECTION,
    DETECTION_METRICS,
    LOWER_IS_BETTER,
    SEGMENTATION,
    SURFACE_METRICS,
    PairedTest,
    find_test,
    tested_pairs,
)

PM = "\u00b1"
DETECTION_TITLES = {"recall": "Recall", "precision": "Precision", "f1": "F1", "fpc": "FPC"}
SURFACE_TITLES = {"assd": "ASSD", "hd95": "HD95"}


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


def finite_mean(values: ArrayLike) -> float:
    """The mean of the non-NaN values; NaN if there is none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else math.nan


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


@dataclass(frozen=True)
class Column:
    """One column of Table 1 or 2 (or a metric of the summary): where its per-case values come from
    and which test gives its p.

    ``rater`` selects the values (``Results.values``: a rater, ``MEAN`` or None for ``scores``);
    ``test_rater`` the test (``stats.csv``); ``inter`` the (table, column) of the inter-rater row's
    value (the per-case mean over rater pairs), None for no value; ``median`` whether the cell is the
    median (FPC) instead of mean +- SD.
    """

    title: str
    table: str
    field: str
    rater: str | None
    family: str
    metric: str
    test_rater: str
    inter: tuple[str, str] | None = None
    median: bool = False

    @property
    def lower_is_better(self) -> bool:
        """Distances and counts (ASSD, HD95, FP count): the smaller, the better."""
        return self.metric in LOWER_IS_BETTER

    def cell(self, results: Results, algorithm: str) -> str:
        if algorithm == INTER_RATER:
            if self.inter is None:
                return ""
            values = results.values(*self.inter, INTER_RATER, MEAN)
        else:
            values = results.values(self.table, self.field, algorithm, self.rater)
        return median(values) if self.median else mean_sd(values)


def _rows(results: Results, tests: Sequence[PairedTest], columns: Sequence[Column]) -> tuple[tuple[str, ...], ...]:
    """One row per algorithm, one p row per tested pair, then the inter-rater row."""
    rows = [(a, *(c.cell(results, a) for c in columns)) for a in results.info.algorithms]
    rows += [(f"p {first} vs {second}",
              *(p_value(find_test(tests, c.family, c.metric, c.test_rater, (first, second))) for c in columns))
             for first, second in tested_pairs(tests)]
    rows.append(("(Ri,Rj)", *(c.cell(results, INTER_RATER) for c in columns)))
    return tuple(rows)


def _compared(tests: Sequence[PairedTest]) -> str:
    pairs = tested_pairs(tests)
    return ", ".join(f"{a} vs {b}" for a, b in pairs) if pairs else "none"


def table1(results: Results, tests: Sequence[PairedTest]) -> Table:
    """Segmentation: Dice per rater, mean Dice over raters, phi, ASSD and HD95 (mean over raters);
    one row per algorithm, a p row per tested pair, the inter-rater row."""
    raters = results.info.raters
    columns = [Column(f"D(\u00b7,{r})", SEGMENTATION, "dice", r, SEGMENTATION, "dice", r) for r in raters]
    columns += [Column("D(\u00b7,Ri)", "scores", "mean_dice", None, SEGMENTATION, "dice", MEAN,
                       inter=(SEGMENTATION, "dice")),
                Column(f"\u03c6(\u00b7,{','.join(raters)})", "scores", "phi", None, SEGMENTATION, "phi", ALL_RATERS)]
    columns += [Column(f"{SURFACE_TITLES[name]}(\u00b7,Ri) mm", SEGMENTATION, field, MEAN, SEGMENTATION, name, MEAN,
                       inter=(SEGMENTATION, field)) for name, field in SURFACE_METRICS.items()]
    alpha = results.info.config.phi_alpha
    caption = (f"Segmentation, {len(results.info.cases)} cases of split '{results.info.split}': "
               f"mean {PM} SD over cases of the Dice score against each rater, of its mean over "
               f"raters, of the uncertainty-aware score \u03c6 (alpha {alpha:g}; {1 - alpha:g} = "
               f"rater level), and of the average symmetric surface distance (ASSD) and the 95th-percentile "
               f"Hausdorff distance (HD95) in mm, averaged over raters per case (undefined, left out, where "
               f"exactly one mask is empty). (Ri,Rj): raters against each other (mean over rater pairs). "
               f"p: Wilcoxon signed-rank, {_compared(tests)}; * significant after Benjamini-Hochberg "
               f"over the family (FDR {results.info.config.fdr:g}).")
    return Table("table1", "Table 1", caption, ("", *(c.title for c in columns)), _rows(results, tests, columns))


def table2(results: Results, tests: Sequence[PairedTest]) -> Table:
    """Detection: recall, precision, F1 (mean +- SD) and FPC (median) against each rater and Ri;
    one row per algorithm, a p row per tested pair, the inter-rater row."""
    raters = results.info.raters
    columns = [Column(f"{DETECTION_TITLES[name]} {title}", DETECTION, field, rater, DETECTION, name, rater,
                      inter=(DETECTION, field) if rater == MEAN else None, median=name == "fpc")
               for name, field in DETECTION_METRICS.items()
               for rater, title in [*((r, r) for r in raters), (MEAN, "Ri")]]
    caption = (f"Detection, {len(results.info.cases)} cases of split '{results.info.split}': mean {PM} SD "
               f"over cases of recall, precision and F1, median over cases of the false-positive count "
               f"(FPC), against each rater and as the per-case mean over raters (Ri). (Ri,Rj): raters "
               f"against each other (lower-index rater as reference), in the Ri columns. p: Wilcoxon "
               f"signed-rank, {_compared(tests)}; * significant after Benjamini-Hochberg over the family (FDR "
               f"{results.info.config.fdr:g}). Recall is undefined (left out) for a case without "
               f"reference lesions, precision for a case without predicted lesions.")
    return Table("table2", "Table 2", caption, ("", *(c.title for c in columns)), _rows(results, tests, columns))
