"""The selection check's report side on hand-made runs: the sentence, the ranks, the figure, the section."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import pytest

from hepaseg.evaluation.results import to_csv
from hepaseg.evaluation.stats import RankCorrelation, rank_correlation
from hepaseg.report.selection_check import (
    FIGURE_FILE,
    SUMMARY_FILE,
    TABLE_FILE,
    RunScore,
    check_figure,
    check_sections,
    dice_rank,
    read_check,
    score_pairs,
    verdict,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _run(seed: int, validation: float, test: float, iterations: int = 2000, winner: bool = False,
         a2: bool = False) -> RunScore:
    algorithm = "A2" if a2 else "A1"
    return RunScore(f"{algorithm} seed {seed}", algorithm, seed, iterations, iterations, validation, test,
                    test - 0.1, winner, a2)


RUNS = (_run(0, 0.40, 0.55, 500), _run(1, 0.60, 0.62, winner=True), _run(2, 0.50, 0.70, 1000),
        _run(3, 0.45, 0.58, 500), _run(4, 0.55, 0.66, a2=True))


def test_ranks_and_sentence():
    correlation = rank_correlation(*score_pairs(RUNS))
    # validation ranks 1 5 3 2 4 against test ranks 1 3 5 2 4: squared differences 0 4 4 0 0, rho 1 - 48 / 120
    assert correlation.rho == pytest.approx(0.6) and correlation.n == 5
    assert dice_rank(RUNS, RUNS[1]) == (3, 5) and dice_rank(RUNS, RUNS[2]) == (1, 5)
    assert verdict(RUNS, correlation) == (
        f"Rank correlation 0.60 (p {correlation.p:.2f}, 5 runs): on these runs the validation score did not "
        "predict the test score; in test mean Dice the A1 winner (seed 1) ranks 3 of 5 and A2 (seed 4) ranks 2 of 5.")


def test_sentence_for_a_relation_and_for_too_few_runs():
    assert ": on these runs a better validation score went with a better test score;" in verdict(
        RUNS, RankCorrelation(0.95, 0.01, 5))
    assert "went with a worse test score" in verdict(RUNS, RankCorrelation(-0.95, 0.01, 5))
    two = rank_correlation([0.4, 0.6], [0.5, 0.7], names=("validation score", "test score"))
    assert verdict(RUNS[:2], two) == (
        "No rank correlation (only 2 pair(s) of validation score and test score, fewer than 3): these runs "
        "cannot show whether the validation score predicts the test score; in test mean Dice the A1 winner "
        "(seed 1) ranks 1 of 2.")


def test_figure_is_a_png_also_without_a_validated_run():
    assert check_figure(RUNS, rank_correlation(*score_pairs(RUNS))).startswith(PNG)
    never = (_run(0, math.nan, math.nan), _run(1, math.nan, math.nan, winner=True))
    assert check_figure(never, rank_correlation(*score_pairs(never))).startswith(PNG)


def test_section_reads_the_folder_and_says_when_the_check_is_off(tmp_path):
    correlation = rank_correlation(*score_pairs(RUNS))
    (tmp_path / TABLE_FILE).write_text(to_csv(RUNS, RunScore))
    (tmp_path / FIGURE_FILE).write_bytes(check_figure(RUNS, correlation))
    (tmp_path / SUMMARY_FILE).write_text(json.dumps({"spearman": asdict(correlation)}))
    assert read_check(tmp_path) == (RUNS, correlation)
    (section,) = check_sections({"finished": True, "facts": {"enabled": True, "folder": str(tmp_path)}})
    assert verdict(RUNS, correlation) in section.html and "data:image/png;base64," in section.html
    assert section.html.count("<tr>") == 1 + len(RUNS) and "A1 winner" in section.html
    (off,) = check_sections({"finished": True, "facts": {"enabled": False}})
    assert "The selection check is off (select.check_runs = false)" in off.html
    assert check_sections(None) == [] and check_sections({"finished": False}) == []
