"""``hepaseg evaluate`` with three algorithms (and a fourth as a multi-class mask) on hand-built masks
whose statistics follow from the construction, derived here by hand; ``--label``, ``--reference`` and
their bad input.

Each case c has a box tumour R = [a, a+L) x [2, 6) x [1, 3) voxels (L = 3..8), marked identically by
raters R1 and R2, on a 1.5 x 1 x 2 mm grid. Algorithms: P = R (perfect); H = R without its first
i-layer; S = R shifted by one voxel along i. Every voxel of these boxes is on its surface (two voxels
thick along k), so by hand:

- Dice: P 1; H 2(L-1)/(2L-1); S (L-1)/L. Inter-rater Dice 1, so phi is 1 for P, 0 for H and S.
- ASSD: P 0; H: the 8 voxels of R's dropped layer are 1.5 mm from H, everything else 0, so
  8 * 1.5 / (8L + 8(L-1)) = 1.5 / (2L-1); S: 8 voxels on each side at 1.5 mm, 16 * 1.5 / 16L = 1.5 / L.
- HD95: P 0; H and S 1.5 (the 8 non-zero distances are the top 8 of 8L, above the 95th percentile's
  position for L <= 17).
- Detection: one lesion each, matched (Dice > 0.2): recall = precision = F1 = 1, no FP, so no
  detection test has a difference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import wilcoxon
from statsmodels.stats.multitest import multipletests

from hepaseg.cli import main
from hepaseg.io.volumes import write_volume

from ..tiny_evaluation import read_rows

SHAPE = (14, 8, 4)
AFFINE = np.diag([1.5, 1.0, 2.0, 1.0])
LENGTHS = (3, 4, 5, 6, 7, 8)
CASES = tuple(f"c{L}" for L in LENGTHS)


def _box(start: int, stop: int) -> np.ndarray:
    mask = np.zeros(SHAPE, np.uint8)
    mask[start:stop, 2:6, 1:3] = 1
    return mask


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("algorithms")
    cases = []
    for case_id, length in zip(CASES, LENGTHS):
        a = 2
        reference = _box(a, a + length)
        for name, array in (("image", np.ones(SHAPE, np.float32)), ("liver", np.ones(SHAPE, np.uint8)),
                            ("R1", reference), ("R2", reference)):
            write_volume(array, AFFINE, root / case_id / f"{name}.nii.gz")
        predictions = {"P": reference, "H": _box(a + 1, a + length), "S": _box(a + 1, a + length + 1)}
        # N: H as a multi-class mask (0 background, 1 liver, 2 tumour), as nnU-Net writes it
        predictions["N"] = np.where(predictions["H"] > 0, 2, 1).astype(np.uint8)
        for algorithm, array in predictions.items():
            write_volume(array, AFFINE, root / "preds" / algorithm / f"{case_id}.nii.gz")
        cases.append({"id": case_id, "split": "test", "image": f"{case_id}/image.nii.gz",
                      "liver": f"{case_id}/liver.nii.gz",
                      "tumor": {r: f"{case_id}/{r}.nii.gz" for r in ("R1", "R2")}})
    (root / "dataset.json").write_text(json.dumps({"name": "boxes", "raters": ["R1", "R2"], "cases": cases}))
    return root


def _evaluate(root: Path, out: Path, *extra: str, algorithms=("P", "H", "S")) -> int:
    preds = [arg for a in algorithms for arg in ("--pred", f"{a}={root / 'preds' / a}")]
    return main(["evaluate", str(root / "dataset.json"), *preds, "-o", str(out), "--workers", "1", *extra])


EXPECTED = {  # per-case values by hand (module docstring), in case order
    "dice": {"P": [1.0] * 6, "H": [2 * (L - 1) / (2 * L - 1) for L in LENGTHS], "S": [(L - 1) / L for L in LENGTHS]},
    "assd_mm": {"P": [0.0] * 6, "H": [1.5 / (2 * L - 1) for L in LENGTHS], "S": [1.5 / L for L in LENGTHS]},
    "hd95_mm": {"P": [0.0] * 6, "H": [1.5] * 6, "S": [1.5] * 6},
    "phi": {"P": [1.0] * 6, "H": [0.0] * 6, "S": [0.0] * 6},
}


@pytest.fixture(scope="module")
def evaluated(cohort) -> Path:
    out = cohort / "eval"
    assert _evaluate(cohort, out) == 0
    assert main(["report", str(out)]) == 0
    return out


def test_values_by_hand(evaluated):
    _, seg = read_rows(evaluated / "segmentation.csv")
    _, scores = read_rows(evaluated / "scores.csv")
    _, det = read_rows(evaluated / "detection.csv")
    for algorithm in ("P", "H", "S"):
        for rater in ("R1", "R2"):
            rows = [r for r in seg if (r["algorithm"], r["rater"]) == (algorithm, rater)]
            assert [r["case"] for r in rows] == list(CASES)
            for field in ("dice", "assd_mm", "hd95_mm"):
                assert [float(r[field]) for r in rows] == pytest.approx(EXPECTED[field][algorithm]), (algorithm, field)
        phis = [float(r["phi"]) for r in scores if r["algorithm"] == algorithm]
        assert phis == EXPECTED["phi"][algorithm]
        assert all((r["tp"], r["fp"], r["fn"], r["f1"]) == ("1", "0", "0", "1.0") for r in det if r["algorithm"] == algorithm)
    inter = [r for r in seg if r["algorithm"] == "inter-rater"]
    assert [(float(r["dice"]), float(r["assd_mm"]), float(r["hd95_mm"])) for r in inter] == [(1.0, 0.0, 0.0)] * 6


def test_every_pair_is_tested_and_corrected_over_the_family(evaluated):
    _, stats = read_rows(evaluated / "stats.csv")
    assert list(dict.fromkeys((r["first"], r["second"]) for r in stats)) == [("P", "H"), ("P", "S"), ("H", "S")]
    segmentation = [r for r in stats if r["family"] == "segmentation"]
    assert len(segmentation) == 3 * 6  # Dice vs R1, vs R2, mean Dice, phi, ASSD, HD95 per pair
    # all Dice differences are non-zero, distinct and of one sign: the exact two-sided p is 2 / 2^6
    for r in segmentation:
        if r["metric"] == "dice":
            assert float(r["p"]) == pytest.approx(2 / 2 ** 6)
    metric_field = {"dice": "dice", "phi": "phi", "assd": "assd_mm", "hd95": "hd95_mm"}
    raw = []
    for r in segmentation:
        first, second = (EXPECTED[metric_field[r["metric"]]][a] for a in (r["first"], r["second"]))
        differs = np.any(np.array(first) != np.array(second))
        raw.append(wilcoxon(first, second).pvalue if differs else math.nan)
        assert float(r["p"]) == pytest.approx(raw[-1], nan_ok=True), r
    tested = [i for i, p in enumerate(raw) if not math.isnan(p)]
    reject, adjusted, _, _ = multipletests([raw[i] for i in tested], alpha=0.05, method="fdr_bh")
    assert [float(segmentation[i]["p_adjusted"]) for i in tested] == pytest.approx(list(adjusted))
    assert [segmentation[i]["significant"] == "true" for i in tested] == list(reject)
    assert all(math.isnan(float(r["p"])) for r in stats if r["family"] == "detection")


def test_tables_and_summary_have_every_algorithm(evaluated):
    _, table1 = read_rows(evaluated / "table1.csv")
    assert [r[""] for r in table1] == ["P", "H", "S", "p P vs H", "p P vs S", "p H vs S", "(Ri,Rj)"]
    _, table2 = read_rows(evaluated / "table2.csv")
    assert [r[""] for r in table2][:3] == ["P", "H", "S"]
    h_assd = np.mean(EXPECTED["assd_mm"]["H"])
    assert table1[1]["ASSD(\u00b7,Ri) mm"].startswith(f"{h_assd:.3f} ")
    page = (evaluated / "report.html").read_text(encoding="utf-8")
    h_dice, s_dice = np.mean(EXPECTED["dice"]["H"]), np.mean(EXPECTED["dice"]["S"])
    assert f"mean Dice: best P (1.000; H {h_dice:.3f}, S {s_dice:.3f})." in page
    s_assd = np.mean(EXPECTED["assd_mm"]["S"])
    assert f"ASSD (mm): best P (0.000; H {h_assd:.3f}, S {s_assd:.3f})." in page
    # each significant mean-Dice difference is worded with the better one first (P > H > S by construction)
    _, stats = read_rows(evaluated / "stats.csv")
    mean_dice = {"P": 1.0, "H": h_dice, "S": s_dice}
    rows = [r for r in stats if (r["metric"], r["rater"]) == ("dice", "mean")]
    assert any(r["significant"] == "true" for r in rows)
    for r in rows:
        phrase = (f"{r['first']} is better than {r['second']} in mean Dice ({mean_dice[r['first']]:.3f} vs "
                  f"{mean_dice[r['second']]:.3f}), adjusted p = {float(r['p_adjusted']):.4f}")
        assert (phrase in page) == (r["significant"] == "true"), phrase


def test_reference_and_label(cohort, tmp_path):
    out = tmp_path / "eval"
    assert _evaluate(cohort, out, "--reference", "N", "--label", "N=2", algorithms=("H", "N", "P")) == 0
    _, stats = read_rows(out / "stats.csv")
    assert list(dict.fromkeys((r["first"], r["second"]) for r in stats)) == [("N", "H"), ("N", "P")]
    _, seg = read_rows(out / "segmentation.csv")
    as_label = [(r["case"], r["rater"], r["dice"], r["assd_mm"]) for r in seg if r["algorithm"] == "N"]
    binary = [(r["case"], r["rater"], r["dice"], r["assd_mm"]) for r in seg if r["algorithm"] == "H"]
    assert as_label == binary  # label 2 of N is exactly H
    assert json.loads((out / "evaluation.json").read_text())["labels"] == {"N": 2}


@pytest.mark.parametrize("extra, algorithms, where, problem", [
    (("--label", "N=3"), ("P", "N"), "preds/N", "label 3 of N occurs in none of its masks (values found: 1, 2)"),
    (("--label", "X=2"), ("P", "N"), "--label", "no --pred named 'X'"),
    (("--label", "N=two"), ("P", "N"), "--label", "expected NAME=L"),
    (("--reference", "Z"), ("P", "H"), "--reference", "'Z' is not among --pred (P, H)"),
    ((), ("P", "N"), "N/c3.nii.gz", "not a binary mask"),
])
def test_bad_input_is_one_line_and_writes_nothing(cohort, tmp_path, capsys, extra, algorithms, where, problem):
    out = tmp_path / "eval"
    capsys.readouterr()
    assert _evaluate(cohort, out, *extra, algorithms=algorithms) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    head, _, message = err.partition(": ")[2].partition(": ")
    assert head.endswith(where) and problem in message
    assert not out.exists()
