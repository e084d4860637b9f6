"""The evaluation folder that ``hepaseg evaluate`` writes (``pipeline.evaluation``) for a tiny dataset:
its files, headers and row counts, and the paired tests' p-values against scipy's Wilcoxon."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wilcoxon

from ..tiny_evaluation import RATERS, TEST_CASES, read_rows


def test_csv_headers_and_row_counts(tiny_evaluation):
    _, out = tiny_evaluation
    n_cases, n_alg, n_pairs = len(TEST_CASES), 2, 3
    expected = {
        "segmentation.csv": (["case", "algorithm", "rater", "dice", "assd_mm", "hd95_mm"], n_cases * (n_alg * 3 + n_pairs)),
        "scores.csv": (["case", "algorithm", "mean_dice", "inter_rater_dice", "phi"], n_cases * n_alg),
        "detection.csv": (["case", "algorithm", "rater", "n_ref", "n_pred", "tp", "fp", "fn", "recall",
                           "precision", "f1", "merges", "splits"], n_cases * (n_alg * 3 + n_pairs)),
        # one pair (A1, A2): Dice vs 3 raters, mean Dice, phi, ASSD, HD95; 4 detection metrics x (3 raters + mean)
        "stats.csv": (["family", "metric", "rater", "first", "second", "statistic", "p", "p_adjusted", "significant",
                       "n"], 3 + 4 + 4 * 4),
    }
    for name, (header, rows) in expected.items():
        found_header, found_rows = read_rows(out / name)
        assert found_header == header, name
        assert len(found_rows) == rows, name
    header, _ = read_rows(out / "correspondences.csv")
    assert header == ["case", "algorithm", "rater", "kind", "matched", "ref_ids", "pred_ids", "dice",
                      "ref_volumes_ml", "pred_volume_ml"]
    _, seg = read_rows(out / "segmentation.csv")
    assert {r["case"] for r in seg} == set(TEST_CASES)  # the train case is not evaluated
    assert {r["rater"] for r in seg if r["algorithm"] == "inter-rater"} == {"R1-R2", "R1-R3", "R2-R3"}
    for name in ("table1", "table2"):
        assert (out / f"{name}.md").read_text().count("\n|") >= 4
    _, table1 = read_rows(out / "table1.csv")
    assert [r[""] for r in table1] == ["A1", "A2", "p A1 vs A2", "(Ri,Rj)"]
    for name in ("segmentation.png", "surface.png", "recall_by_size.png", "lesion_dice.png", "overlays.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_p_values_match_scipy(tiny_evaluation):
    _, out = tiny_evaluation
    _, seg = read_rows(out / "segmentation.csv")
    _, stats = read_rows(out / "stats.csv")
    for rater in RATERS:
        a1 = [float(r["dice"]) for r in seg if (r["algorithm"], r["rater"]) == ("A1", rater)]
        a2 = [float(r["dice"]) for r in seg if (r["algorithm"], r["rater"]) == ("A2", rater)]
        # the tiny dataset's A2 is jittered more than A1 and adds a lesion, so the pairs differ and a
        # test is possible against every rater
        assert len(a1) == len(a2) == len(TEST_CASES) and np.any(np.array(a1) != np.array(a2)), rater
        row = next(r for r in stats if (r["family"], r["metric"], r["rater"]) == ("segmentation", "dice", rater))
        assert float(row["p"]) == pytest.approx(wilcoxon(a1, a2).pvalue)
    assert {r["family"] for r in stats} == {"segmentation", "detection"}
