"""Seeds of several variants: the per-run summary, the grouping, and detection by lesion size, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hepaseg.config import EvalConfig
from hepaseg.evaluation.results import CorrespondenceRow, Results, RunInfo, ScoreRow
from hepaseg.evaluation.seeds import by_group, seed_means, size_bins, size_labels


def _results(scores, correspondences=()) -> Results:
    algorithms = tuple(dict.fromkeys(r.algorithm for r in scores if r.algorithm != "inter-rater"))
    info = RunInfo("m.json", "test", ("R1",), algorithms, {a: f"preds/{a}" for a in algorithms}, ("c1", "c2"),
                   EvalConfig())
    return Results(info, (), tuple(scores), (), tuple(correspondences))


def _score(case, algorithm, dice):
    return ScoreRow(case, algorithm, dice, 0.7, 0.0)


def _corr(algorithm, kind, matched, refs, preds, dice, ref_ml, pred_ml):
    return CorrespondenceRow("c1", algorithm, "R1", kind, matched, refs, preds, dice, ref_ml, pred_ml)


def test_seed_means_and_grouping():
    rows = [_score("c1", "a-s0", 0.2), _score("c2", "a-s0", 0.4), _score("c1", "a-s1", 0.6),
            _score("c2", "a-s1", float("nan")), _score("c1", "b-s0", 0.9), _score("c2", "b-s0", 0.1)]
    results = _results(rows)
    np.testing.assert_allclose(seed_means(results, ["a-s0", "a-s1"], "scores", "mean_dice", None), [0.3, 0.6])
    grouped = by_group(results, {"a": ["a-s0", "a-s1"], "b": ["b-s0"]})
    assert grouped.info.algorithms == ("a", "b")
    # per case the mean over seeds of the finite values: c1 (0.2 + 0.6) / 2, c2 0.4 alone
    np.testing.assert_allclose(grouped.values("scores", "mean_dice", "a"), [0.4, 0.4])
    np.testing.assert_allclose(grouped.values("scores", "mean_dice", "b"), [0.9, 0.1])
    with pytest.raises(ValueError, match="c-s0"):
        by_group(results, {"c": ["c-s0"]})


def test_size_bins_by_hand():
    rows = [
        _corr("a", "tp", True, (1,), (1,), 0.8, (0.2,), 0.3),      # small, found
        _corr("a", "fn", False, (2,), (), 0.0, (0.4,), 0.0),       # small, missed
        _corr("a", "tp", True, (3, 4), (2,), 0.6, (3.0, 4.0), 6.0),  # merged: 7 mL (large), two lesions found
        _corr("a", "fp", False, (), (3,), 0.0, (), 0.1),           # small false positive
        _corr("a", "fp", False, (), (4, 5), 0.0, (), 2.0),         # two medium false positives
        _corr("b", "tp", True, (1,), (1,), 0.9, (0.2,), 0.2),      # another algorithm: left out
    ]
    b = size_bins(_results([_score("c1", "a", 0.5)], rows), "a")
    assert size_labels() == ["< 0.5 mL", "0.5-5 mL", "> 5 mL"]
    np.testing.assert_array_equal(b.references, [2, 0, 2])
    np.testing.assert_array_equal(b.detected, [1, 0, 2])
    np.testing.assert_array_equal(b.predicted, [2, 2, 1])
    np.testing.assert_array_equal(b.matched, [1, 0, 1])
    np.testing.assert_allclose(b.recall, [0.5, np.nan, 1.0])
    np.testing.assert_allclose(b.precision, [0.5, 0.0, 1.0])
    np.testing.assert_allclose(b.f1, [0.5, np.nan, 1.0])
    np.testing.assert_allclose(b.dice, [0.4, np.nan, 0.6])
