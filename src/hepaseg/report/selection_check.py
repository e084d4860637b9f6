"""The selection check of a study: each trained run's validation score against its test score.

A1 chooses among its runs by validation score (``train.validation_metric``, Jaccard in the paper); whether that choice could matter depends on
whether the validation score predicts the test score. The study's ``selection_check`` stage
(``pipeline.selection_check``) tests every run and writes, into ``<study>/selection_check/``:

- ``selection_check.csv``: one ``RunScore`` row per run (``evaluation.results.to_csv``);
- ``selection_check.json``: the Spearman rank correlation over the runs (``evaluation.stats.rank_correlation``),
  written last, so it marks a complete folder;
- ``selection_check.png``: the scatter (``check_figure``).

This module holds the row type, the figure, the sentence that states the outcome, and the
report's section and headline line, read from those files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..errors import InputError
from ..evaluation.results import from_csv
from ..evaluation.stats import RankCorrelation
from ..training.validation import metric_label
from .figures import figure_png
from .html import Section, image_html, table_html, text_html

CHECK_DIR = "selection_check"
TABLE_FILE = "selection_check.csv"
SUMMARY_FILE = "selection_check.json"
FIGURE_FILE = "selection_check.png"
# the table's columns as hepaseg 0.1 named them (the score of train.validation_metric was called Jaccard)
LEGACY_COLUMNS = {"validation_jaccard": "validation_score"}
CHECK_FORMAT = 1  # of the folder's files
SIGNIFICANCE = 0.05  # the rank correlation's p below which the sentence calls it a relation
TITLE = "Selection check: validation score vs test score per run"


@dataclass(frozen=True)
class RunScore:
    """One trained run of a study, at the state it keeps (its best validation)."""

    run: str  # "A1 seed 3", "A2 seed 4"
    algorithm: str  # A1 or A2
    seed: int
    iterations: int  # trained; a run A1 dropped early stopped at that rung's budget
    best_iteration: int  # of the kept (best-validated) state
    validation_score: float  # best validation score (train.validation_metric), what A1 ranks by (NaN: never validated)
    test_mean_dice: float  # mean over the test cases of the per-case mean Dice against the raters
    test_f1: float  # mean over the test cases of the per-case mean detection F1 over the raters
    a1_winner: bool
    a2: bool


def score_pairs(rows: Sequence[RunScore]) -> tuple[np.ndarray, np.ndarray]:
    """The (validation, test mean Dice) values the rank correlation is computed on, one pair per run."""
    return (np.array([r.validation_score for r in rows], dtype=np.float64),
            np.array([r.test_mean_dice for r in rows], dtype=np.float64))


def dice_rank(rows: Sequence[RunScore], row: RunScore) -> tuple[int, int]:
    """``(rank, of)``: the place of ``row`` by test mean Dice among the runs with one (1 = best)."""
    scored = [r.test_mean_dice for r in rows if not math.isnan(r.test_mean_dice)]
    return 1 + sum(v > row.test_mean_dice for v in scored), len(scored)


def _correlation_text(c: RankCorrelation) -> str:
    if c.rho is None:
        return f"No rank correlation ({c.note})"
    return f"Rank correlation {c.rho:.2f} (p {c.p:.2f}, {c.n} runs)"


def verdict(rows: Sequence[RunScore], c: RankCorrelation) -> str:
    """One sentence: the rank correlation, what it says, and where A1's winner and A2 rank on the test cases."""
    if c.rho is None:
        meaning = "these runs cannot show whether the validation score predicts the test score"
    elif c.p < SIGNIFICANCE and c.rho > 0:
        meaning = "on these runs a better validation score went with a better test score"
    elif c.p < SIGNIFICANCE:
        meaning = "on these runs a better validation score went with a worse test score"
    else:
        meaning = "on these runs the validation score did not predict the test score"
    places = []
    for row in rows:
        if (row.a1_winner or row.a2) and not math.isnan(row.test_mean_dice):
            rank, of = dice_rank(rows, row)
            places.append(f"{'the A1 winner' if row.a1_winner else 'A2'} (seed {row.seed}) ranks {rank} of {of}")
    where = f"; in test mean Dice {' and '.join(places)}" if places else ""
    return f"{_correlation_text(c)}: {meaning}{where}."


def check_figure(rows: Sequence[RunScore], c: RankCorrelation, metric: str = "jaccard") -> bytes:
    """Scatter: best validation score of ``metric`` (x) against test mean Dice (y), one point per run, labelled by
    seed; A1's runs coloured by the iterations they trained, A1's winner a star, A2 a square."""
    fig = Figure(figsize=(8.0, 4.6), layout="constrained")
    ax = fig.subplots()
    shown = [r for r in rows if not (math.isnan(r.validation_score) or math.isnan(r.test_mean_dice))]
    budgets = sorted({r.iterations for r in shown if not r.a2})
    for index, budget in enumerate(budgets):
        points = [r for r in shown if not r.a2 and r.iterations == budget]
        ax.scatter([r.validation_score for r in points], [r.test_mean_dice for r in points], s=36,
                   color=f"C{index % 10}", label=f"A1 run, {budget:,} it.", zorder=2)
    for row in shown:
        if row.a2:
            ax.scatter([row.validation_score], [row.test_mean_dice], s=60, marker="s", color="0.45", zorder=3,
                       label=f"A2 (seed {row.seed}, {row.iterations:,} it.)")
        elif row.a1_winner:
            ax.scatter([row.validation_score], [row.test_mean_dice], s=260, marker="*", facecolor="none",
                       edgecolor="black", lw=1.2, zorder=3, label=f"A1 winner (seed {row.seed})")
        ax.annotate(f"{row.seed}", (row.validation_score, row.test_mean_dice), xytext=(6, 4),
                    textcoords="offset points", fontsize=8)
    rho = "n/a" if c.rho is None else f"{c.rho:.2f} (p = {c.p:.2f}, n = {c.n})"
    ax.set_title(f"Validation vs test per run (numbers: seeds): Spearman \u03c1 = {rho}", fontsize=9)
    ax.set_xlabel(f"best validation {metric_label(metric)} (what A1 ranks by)")
    ax.set_ylabel("test mean Dice against the raters")
    ax.grid(alpha=0.3)
    if shown:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return figure_png(fig)


def read_check(folder: str | Path) -> tuple[tuple[RunScore, ...], RankCorrelation]:
    """The rows and the rank correlation a selection check folder holds.

    Raises:
        InputError: a missing or unreadable file.
    """
    root = Path(folder)
    path = root / SUMMARY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        correlation = RankCorrelation(**data["spearman"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"cannot read the selection check ({exc})") from None
    return from_csv(root / TABLE_FILE, RunScore, LEGACY_COLUMNS), correlation


def find_check(evaluation: str | Path) -> Path | None:
    """A study's selection check folder beside its evaluation folder, if it is complete; else None."""
    folder = Path(evaluation).resolve().parent / CHECK_DIR
    return folder if (folder / SUMMARY_FILE).is_file() else None


def check_line(evaluation: str | Path) -> str | None:
    """The headline's line on the selection check (None where the study has none)."""
    folder = find_check(evaluation)
    if folder is None:
        return None
    rows, correlation = read_check(folder)
    return "selection check: " + verdict(rows, correlation)


def _num(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _role(row: RunScore) -> str:
    return "A1 winner" if row.a1_winner else "A2" if row.a2 else "A1 run"


def check_sections(entry: dict[str, Any] | None) -> list[Section]:
    """The report's section for the study record's ``selection_check`` stage (none before a study had the stage)."""
    if not entry or not entry.get("finished"):
        return []
    facts = entry.get("facts", {})
    if not facts.get("enabled", True):
        return [Section(TITLE, text_html([
            "The selection check is off (select.check_runs = false): the runs were not tested one by one, "
            "so this report does not show whether choosing by validation could have mattered."]))]
    folder = Path(facts.get("folder", ""))
    if not (folder / SUMMARY_FILE).is_file():
        return [Section(TITLE, text_html([f"The selection check's files are not in {folder} any more."]))]
    rows, correlation = read_check(folder)
    label = metric_label(facts.get("validation_metric", "jaccard"))
    text = [verdict(rows, correlation),
            f"Every run the study trained (A1's {sum(not r.a2 for r in rows)} seeds, each at the state it keeps, "
            "its best validation, and A2) predicted the test cases; its test score is the mean over the test "
            "cases of the per-case mean Dice against the raters (Table 1's D(\u00b7,Ri)), its validation score "
            f"the best validation {label}, by which A1 ranks its runs. Runs A1 dropped at an early rung were "
            "trained (and validated) for fewer iterations. p: two-sided, exact over every ordering of the runs up to 9 "
            "runs, else scipy's t approximation."]
    html = text_html(text) + image_html((folder / FIGURE_FILE).read_bytes(), "validation vs test per run")
    html += table_html(
        ("run", "role", "iterations", "best at", f"best validation {label}", "test mean Dice", "test detection F1"),
        [(r.run, _role(r), str(r.iterations), str(r.best_iteration), _num(r.validation_score),
          _num(r.test_mean_dice), _num(r.test_f1)) for r in rows],
        f"One row per run ({folder / TABLE_FILE}); detection F1: mean over test cases of the per-case mean "
        "over raters.")
    return [Section(TITLE, html)]
