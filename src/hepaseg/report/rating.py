"""The report's expert-rating section (the paper's Fig. 4), from the files ``hepaseg rate export`` wrote.

Where: ``hepaseg report EVAL`` looks for ``EVAL/../rating/results/summary.json`` (a study folder's
``rating/results``) unless given the results folder (``--rating``). A simulated rater is named as
such in the section's title, text and figure.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import InputError
from ..rating.export import FIGURE_FILE, SUMMARY_FILE
from .html import Section, image_html, table_html, text_html
from .summary import compare

STUDY_RESULTS = Path("rating") / "results"


def find_rating(evaluation: str | Path) -> Path | None:
    """A study's exported rating results beside its evaluation folder, or None."""
    results = Path(evaluation).resolve().parent / STUDY_RESULTS
    return results if (results / SUMMARY_FILE).is_file() else None


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 100:.0f} %"


def _num(value: float, digits: str = ".2f") -> str:
    return "n/a" if math.isnan(value) else format(value, digits)


def rating_sections(results: str | Path) -> list[Section]:
    """The rating section(s) for an export folder.

    Raises:
        InputError: the folder has no readable ``summary.json``.
    """
    root = Path(results)
    try:
        summary = json.loads((root / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(root / SUMMARY_FILE, f"cannot read the rating summary ({exc})") from exc
    simulated = summary["simulated"]
    title = "Expert rating (Fig. 4)" + (": SIMULATED rater, not a radiologist" if simulated else "")
    per, algorithms = summary["per_algorithm"], summary["algorithms"]
    text = [f"{summary['rated']} of {summary['items']} contours rated (rating and image quality given) by "
            f"{', '.join(summary['raters'])}, blinded to the algorithm, one round per algorithm (seed "
            f"{summary['seed']}); ratings 1 (very poor) to 5 (very good), image quality 1 (poor) to 3 (good), "
            "the mean of a case's quality ratings over the rounds."]
    if simulated:
        text.append(f"SIMULATED: {', '.join(summary['simulated_raters'])} rated by 'hepaseg rate simulate' from "
                    "each contour's Dice with the synthetic cohort's hidden true tumour mask plus rater noise "
                    "(docs/rating.md); these are not a radiologist's ratings.")
    if not summary["complete"]:
        text.append("The rating is not complete: the numbers cover the contours rated so far.")
    if len(algorithms) >= 2:
        text.append(compare("mean rating", algorithms[0], algorithms[1], per[algorithms[0]]["mean"],
                            per[algorithms[1]]["mean"]) + ".")
    html = text_html(text)
    html += table_html(
        ("algorithm", "contours", "mean", "median", "rated 4-5", *[f"rated {s}" for s in range(1, 6)]),
        [(a, str(d["n"]), _num(d["mean"]), _num(d["median"], "g"), _pct(d["share_4_5"]),
          *[str(d["histogram"][str(s)]) for s in range(1, 6)]) for a, d in per.items()],
        "Ratings per algorithm (paper: A1 mean 3.6, median 4, 66 % rated 4-5; A2 3.0, 3, 43 %).")
    html += table_html(
        ("algorithm", "mean image quality", "contours", "mean rating", "rated 4-5"),
        [(a, level, str(d["n"]), _num(d["mean"]), _pct(d["share_4_5"]))
         for a in algorithms for level, d in summary["by_quality"][a].items()],
        "Ratings by the mean image quality of the case.")
    html += table_html(
        ("first", "second", "pairs", "statistic", "p", "mean difference"),
        [(t["first"], t["second"], str(t["n"]), _num(t["statistic"], "g"), _num(t["p"], ".4g"),
          _num(t["mean_difference"])) for t in summary["tests"]],
        "Wilcoxon signed-rank (two-sided) on the paired ratings of the same rater and case.")
    figure = root / FIGURE_FILE
    if figure.is_file():
        html += image_html(figure.read_bytes(), "Fig. 4: rating histograms")
    return [Section(title, html)]
