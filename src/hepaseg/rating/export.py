"""``hepaseg rate export``: the ratings as a table, their summary, Fig. 4 and the paired test.

Files written (each atomically) into the results folder:

- ``ratings.csv``: one row per item with a rating or quality: ``rater, simulated, case, round,
  algorithm, rating, quality, time`` (round 1-based, time of the last change, UTC; empty: not given).
- ``summary.json``: ``complete`` (every item rated), ``simulated`` (any simulated rater), counts,
  per algorithm ``n``, ``mean``, ``median``, ``share_4_5`` and the histogram of ratings 1-5, the
  same split by mean image quality, and the paired tests; ``summary.csv``: the per-algorithm rows.
- ``tests.csv``: Wilcoxon signed-rank (``evaluation.stats.wilcoxon_paired``, two-sided) for every
  pair of algorithms on the (rater, case) pairs that have both ratings.
- ``rating.png``: Fig. 4 (``figure.py``).

Conventions (METHOD.md section 9): statistics use complete items only (rating and quality given).
The image quality of a (rater, case) is the mean of that rater's quality ratings of the case over
all rounds; its levels are multiples of 1 / rounds (1, 1.5, ..., 3 with two rounds).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.stats import wilcoxon_paired
from ..io.atomic import write_bytes, write_json, write_text
from .figure import rating_figure
from .prepare import open_store
from .protocol import RATING_SCALE
from .store import RatedItem

SUMMARY_FILE = "summary.json"
FIGURE_FILE = "rating.png"
SCORES = tuple(range(RATING_SCALE[0], RATING_SCALE[1] + 1))


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    summary: dict[str, Any]


def describe(ratings: list[int]) -> dict[str, Any]:
    """n, mean, median, share rated 4-5 and the histogram of a list of ratings (NaN when empty)."""
    values = np.asarray(ratings, dtype=float)
    empty = values.size == 0
    return {"n": int(values.size), "mean": math.nan if empty else float(values.mean()),
            "median": math.nan if empty else float(np.median(values)),
            "share_4_5": math.nan if empty else float(np.mean(values >= 4)),
            "histogram": {str(s): int(np.sum(values == s)) for s in SCORES}}


def mean_quality(items: list[RatedItem]) -> dict[tuple[str, str], float]:
    """(rater, case) -> mean of the quality ratings given over the rounds."""
    given: dict[tuple[str, str], list[int]] = defaultdict(list)
    for item in items:
        if item.quality is not None:
            given[(item.rater, item.case)].append(item.quality)
    return {key: float(np.mean(values)) for key, values in given.items()}


def summarise(items: list[RatedItem], algorithms: list[str], simulated: dict[str, bool]) -> dict[str, Any]:
    """The numbers of ``summary.json`` (see the module docstring)."""
    done = [i for i in items if i.complete]
    quality = mean_quality(done)
    levels = sorted({quality[(i.rater, i.case)] for i in done})
    per_algorithm = {a: describe([i.rating for i in done if i.algorithm == a]) for a in algorithms}
    by_quality = {a: {f"{q:g}": describe([i.rating for i in done if i.algorithm == a
                                          and quality[(i.rater, i.case)] == q]) for q in levels}
                  for a in algorithms}
    given = {(i.rater, i.case, i.algorithm): i.rating for i in done}
    tests = []
    for first, second in itertools.combinations(algorithms, 2):
        keys = sorted({(r, c) for r, c, _ in given if (r, c, first) in given and (r, c, second) in given})
        a = [given[(r, c, first)] for r, c in keys]
        b = [given[(r, c, second)] for r, c in keys]
        statistic, p, n = wilcoxon_paired(a, b)
        tests.append({"first": first, "second": second, "n": n, "statistic": statistic, "p": p,
                      "mean_difference": float(np.mean(np.subtract(a, b))) if n else math.nan})
    raters = sorted({i.rater for i in items})
    return {"complete": len(done) == len(items), "items": len(items), "rated": len(done),
            "raters": raters, "simulated": any(simulated.get(r, False) for r in raters),
            "simulated_raters": [r for r in raters if simulated.get(r, False)],
            "algorithms": algorithms, "quality_levels": [f"{q:g}" for q in levels],
            "per_algorithm": per_algorithm, "by_quality": by_quality, "tests": tests}


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return buffer.getvalue()


def export_ratings(folder: str | Path, out: str | Path) -> ExportResult:
    """Write the results folder ``out`` for the rating folder ``folder`` (see the module docstring).

    Raises:
        InputError: not a rating folder.
    """
    store = open_store(folder)
    meta, simulated = store.meta(), store.raters()
    items = store.items()
    summary = summarise(items, list(meta["algorithms"]), simulated)
    summary["seed"], summary["cases"] = meta["seed"], len(meta["cases"])
    out = Path(out)
    rows = [[i.rater, "yes" if simulated[i.rater] else "no", i.case, i.round + 1, i.algorithm, i.rating,
             i.quality, i.rated_at] for i in items if i.rating is not None or i.quality is not None]
    write_text(out / "ratings.csv", _csv(["rater", "simulated", "case", "round", "algorithm", "rating",
                                          "quality", "time"], rows))
    per = summary["per_algorithm"]
    write_text(out / "summary.csv", _csv(
        ["algorithm", "n", "mean", "median", "share_4_5", *[f"count_{s}" for s in SCORES]],
        [[a, d["n"], f"{d['mean']:.4g}", f"{d['median']:g}", f"{d['share_4_5']:.4g}",
          *[d["histogram"][str(s)] for s in SCORES]] for a, d in per.items()]))
    write_text(out / "tests.csv", _csv(["first", "second", "n", "statistic", "p", "mean_difference"],
                                       [[t["first"], t["second"], t["n"], f"{t['statistic']:g}", f"{t['p']:.4g}",
                                         f"{t['mean_difference']:.4g}"] for t in summary["tests"]]))
    write_bytes(out / FIGURE_FILE, rating_figure(summary))
    write_json(out / SUMMARY_FILE, summary)  # last: its presence means the folder is complete
    return ExportResult(out, summary)
