"""Evaluation of a tiny dataset on disk (``hepaseg evaluate``): every number in the CSV files against
direct calls of ``dice``, ``assd_hd95``, ``detect`` and ``phi`` on the masks read back from disk; bad
predictions."""

from __future__ import annotations

import itertools
import math
import shutil

import numpy as np
import pytest

from hepaseg.cli import main
from hepaseg.evaluation.evaluate import evaluate_case
from hepaseg.evaluation.matching import detect
from hepaseg.evaluation.metrics import dice, phi
from hepaseg.evaluation.surface import assd_hd95
from hepaseg.io.volumes import read_volume, write_volume

from ..axis_order import write_reordered
from ..tiny_evaluation import AFFINE, RATERS, SHAPE, TEST_CASES, masks, read_rows


def test_values_match_direct_calls(tiny_evaluation):
    root, out = tiny_evaluation
    _, seg = read_rows(out / "segmentation.csv")
    _, det = read_rows(out / "detection.csv")
    _, scores = read_rows(out / "scores.csv")
    _, lesions = read_rows(out / "correspondences.csv")
    seg_of = {(r["case"], r["algorithm"], r["rater"]): float(r["dice"]) for r in seg}
    surface_of = {(r["case"], r["algorithm"], r["rater"]): (float(r["assd_mm"]), float(r["hd95_mm"])) for r in seg}
    det_of = {(r["case"], r["algorithm"], r["rater"]): r for r in det}
    voxel_ml = 1.5 * 1.5 * 4.0 / 1000
    for case_id in TEST_CASES:
        refs, preds = masks(root, case_id)
        comparisons = [(a, r, refs[r], preds[a]) for a in preds for r in RATERS]
        comparisons += [("inter-rater", f"{r1}-{r2}", refs[r1], refs[r2]) for r1, r2 in itertools.combinations(RATERS, 2)]
        for algorithm, rater, reference, prediction in comparisons:
            assert seg_of[case_id, algorithm, rater] == pytest.approx(dice(prediction, reference), abs=1e-12)
            expected = assd_hd95(prediction, reference, (1.5, 1.5, 4.0))
            assert surface_of[case_id, algorithm, rater] == pytest.approx(expected, nan_ok=True)
            d = detect(reference, prediction)
            row = det_of[case_id, algorithm, rater]
            assert [int(row[k]) for k in ("n_ref", "n_pred", "tp", "fp", "fn", "merges", "splits")] == \
                   [d.n_ref, d.n_pred, d.tp, d.fp, d.fn, d.merges, d.splits]
            for key in ("recall", "precision", "f1"):
                assert float(row[key]) == pytest.approx(getattr(d, key), nan_ok=True)
            rows = [r for r in lesions if (r["case"], r["algorithm"], r["rater"]) == (case_id, algorithm, rater)]
            assert len(rows) == len(d.correspondences)
            ref_volumes = [float(v) for r in rows if r["kind"] in ("tp", "fn") for v in r["ref_volumes_ml"].split()]
            assert sum(ref_volumes) == pytest.approx(np.count_nonzero(reference) * voxel_ml)
            assert sum(r["matched"] == "true" for r in rows) == sum(c.matched for c in d.correspondences)
        inter = np.mean([dice(refs[a], refs[b]) for a, b in itertools.combinations(RATERS, 2)])
        for row in (r for r in scores if r["case"] == case_id):
            mean_dice = np.mean([dice(preds[row["algorithm"]], refs[r]) for r in RATERS])
            assert float(row["mean_dice"]) == pytest.approx(mean_dice)
            assert float(row["inter_rater_dice"]) == pytest.approx(inter)
            assert float(row["phi"]) == pytest.approx(phi(mean_dice, inter))


def test_missing_prediction_is_one_line_exit_2(tiny_evaluation, tmp_path, capsys):
    root, _ = tiny_evaluation
    partial = tmp_path / "partial"
    shutil.copytree(root / "preds" / "a2", partial)
    (partial / "c02.nii.gz").unlink()
    (partial / "c04.nii.gz").unlink()
    capsys.readouterr()
    code = main(["evaluate", str(root / "dataset.json"), "--pred", f"A1={root / 'preds' / 'a1'}",
                 "--pred", f"A2={partial}", "-o", str(tmp_path / "eval"), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "c02" in err and "c04" in err and "A2" in err
    assert not (tmp_path / "eval").exists()


def test_geometry_mismatch_names_the_file(tiny_evaluation, tmp_path, capsys):
    root, _ = tiny_evaluation
    shifted = tmp_path / "shifted"
    shutil.copytree(root / "preds" / "a1", shifted)
    bad = shifted / "c03.nii.gz"
    moved = AFFINE.copy()
    moved[0, 3] += 5.0
    write_volume(read_volume(bad).array, moved, bad)
    capsys.readouterr()
    code = main(["evaluate", str(root / "dataset.json"), "--pred", f"A1={shifted}", "-o", str(tmp_path / "eval"),
                 "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err and "origin" in err
    assert not (tmp_path / "eval").exists()


def test_non_binary_prediction_is_rejected(tiny_evaluation, tmp_path, capsys):
    root, _ = tiny_evaluation
    probabilities = tmp_path / "prob"
    shutil.copytree(root / "preds" / "a1", probabilities)
    target = probabilities / "c01.nii.gz"
    write_volume(np.full(SHAPE, 0.7, dtype=np.float32), AFFINE, target)
    code = main(["evaluate", str(root / "dataset.json"), "--pred", f"A1={probabilities}", "-o",
                 str(tmp_path / "eval"), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and str(target) in err and "binary" in err


def test_single_rater_and_single_algorithm():
    rng = np.random.default_rng(0)
    ref = rng.random((8, 8, 3)) < 0.2
    pred = rng.random((8, 8, 3)) < 0.2
    rows = evaluate_case("x", {"R1": ref}, {"A": pred}, voxel_ml=0.001, spacing=(1.0, 1.0, 1.0))
    assert [r.rater for r in rows.segmentation] == ["R1"]
    assert rows.scores[0].mean_dice == pytest.approx(dice(pred, ref))
    assert math.isnan(rows.scores[0].inter_rater_dice) and math.isnan(rows.scores[0].phi)


def test_masks_in_another_axis_order_give_the_same_numbers(tiny_evaluation, tmp_path, capsys):
    root, out = tiny_evaluation
    copy = tmp_path / "data"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("eval"))
    for path in (copy / "c01" / "R1.nii.gz", copy / "c02" / "R2.nii.gz", copy / "preds" / "a1" / "c01.nii.gz",
                 copy / "preds" / "a2" / "c03.nii.gz"):  # each reordered onto the image's voxel order
        write_reordered(read_volume(path).array, AFFINE, path)
    code = main(["evaluate", str(copy / "dataset.json"), "--pred", f"A1={copy / 'preds' / 'a1'}",
                 "--pred", f"A2={copy / 'preds' / 'a2'}", "-o", str(tmp_path / "eval"), "--split", "test",
                 "--workers", "1"])
    assert code == 0, capsys.readouterr().err
    for name in ("segmentation.csv", "detection.csv", "scores.csv", "correspondences.csv"):
        assert read_rows(tmp_path / "eval" / name) == read_rows(out / name), name
