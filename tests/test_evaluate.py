"""Evaluation end to end: a tiny dataset on disk, ``hepaseg evaluate`` and ``hepaseg report``.

Every number in the CSV files is checked against direct calls of ``dice``, ``detect``, ``phi`` and
scipy's Wilcoxon on the masks read back from disk.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import wilcoxon

from hepaseg.cli import main
from hepaseg.evaluation.evaluate import evaluate_case
from hepaseg.evaluation.matching import detect
from hepaseg.evaluation.metrics import dice, phi
from hepaseg.io.volumes import read_volume, write_volume
from hepaseg.report.html import Section
from hepaseg.report.page import build_report

SHAPE = (24, 20, 6)
AFFINE = np.array([[1.5, 0, 0, -20.0], [0, 1.5, 0, -15.0], [0, 0, 4.0, 10.0], [0, 0, 0, 1]])
RATERS = ("R1", "R2", "R3")
TEST_CASES = ("c01", "c02", "c03", "c04")


def _blobs(rng: np.random.Generator, centres, jitter: int) -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=bool)
    for c in centres:
        lo = np.clip(np.asarray(c) + rng.integers(-jitter, jitter + 1, 3), 0, np.array(SHAPE) - 3)
        size = rng.integers(2, 5, 3)
        mask[lo[0]:lo[0] + size[0], lo[1]:lo[1] + size[1], lo[2]:lo[2] + max(size[2] // 2, 1)] = True
    return mask


def _make_dataset(root: Path) -> Path:
    rng = np.random.default_rng(42)
    cases = []
    for case_id in (*TEST_CASES, "t01"):
        folder = root / case_id
        centres = [rng.integers((2, 2, 0), (18, 14, 4)) for _ in range(rng.integers(1, 4))]
        image = rng.normal(100, 10, SHAPE).astype(np.float32)
        liver = np.zeros(SHAPE, dtype=np.uint8)
        liver[1:-1, 1:-1, :] = 1
        write_volume(image, AFFINE, folder / "image.nii.gz")
        write_volume(liver, AFFINE, folder / "liver.nii.gz")
        tumor = {}
        for rater in RATERS:
            write_volume(_blobs(rng, centres, 1).astype(np.uint8), AFFINE, folder / f"{rater}.nii.gz")
            tumor[rater] = f"{case_id}/{rater}.nii.gz"
        for algorithm, jitter in (("a1", 1), ("a2", 2)):
            extra = [rng.integers((2, 2, 0), (18, 14, 4))] if algorithm == "a2" else []
            write_volume(_blobs(rng, centres + extra, jitter).astype(np.uint8), AFFINE,
                         root / "preds" / algorithm / f"{case_id}.nii.gz")
        cases.append({"id": case_id, "split": "train" if case_id == "t01" else "test",
                      "image": f"{case_id}/image.nii.gz", "liver": f"{case_id}/liver.nii.gz", "tumor": tumor})
    manifest = root / "dataset.json"
    manifest.write_text(json.dumps({"name": "tiny", "raters": list(RATERS), "cases": cases}))
    return manifest


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny dataset, evaluated once by the CLI (two worker processes) and reported."""
    root = tmp_path_factory.mktemp("evaluation")
    manifest = _make_dataset(root)
    out = root / "eval"
    code = main(["evaluate", str(manifest), "--pred", f"A1={root / 'preds' / 'a1'}",
                 "--pred", f"A2={root / 'preds' / 'a2'}", "-o", str(out), "--split", "test", "--workers", "2"])
    assert code == 0
    assert main(["report", str(out), "-o", str(out / "report.html")]) == 0
    return root, out


def _csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _masks(root: Path, case_id: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    refs = {r: read_volume(root / case_id / f"{r}.nii.gz").array > 0 for r in RATERS}
    preds = {a: read_volume(root / "preds" / a.lower() / f"{case_id}.nii.gz").array > 0 for a in ("A1", "A2")}
    return refs, preds


def test_csv_headers_and_row_counts(run):
    _, out = run
    n_cases, n_alg, n_pairs = len(TEST_CASES), 2, 3
    expected = {
        "segmentation.csv": (["case", "algorithm", "rater", "dice"], n_cases * (n_alg * 3 + n_pairs)),
        "scores.csv": (["case", "algorithm", "mean_dice", "inter_rater_dice", "phi"], n_cases * n_alg),
        "detection.csv": (["case", "algorithm", "rater", "n_ref", "n_pred", "tp", "fp", "fn", "recall",
                           "precision", "f1", "merges", "splits"], n_cases * (n_alg * 3 + n_pairs)),
        "stats.csv": (["family", "metric", "rater", "statistic", "p", "p_adjusted", "significant", "n"], 5 + 16),
    }
    for name, (header, rows) in expected.items():
        found_header, found_rows = _csv(out / name)
        assert found_header == header, name
        assert len(found_rows) == rows, name
    header, _ = _csv(out / "correspondences.csv")
    assert header == ["case", "algorithm", "rater", "kind", "matched", "ref_ids", "pred_ids", "dice",
                      "ref_volumes_ml", "pred_volume_ml"]
    _, seg = _csv(out / "segmentation.csv")
    assert {r["case"] for r in seg} == set(TEST_CASES)  # the train case is not evaluated
    assert {r["rater"] for r in seg if r["algorithm"] == "inter-rater"} == {"R1-R2", "R1-R3", "R2-R3"}
    for name in ("table1", "table2"):
        assert (out / f"{name}.md").read_text().count("\n|") >= 4
    _, table1 = _csv(out / "table1.csv")
    assert [r[""] for r in table1] == ["A1", "A2", "p-value", "(Ri,Rj)"]
    for name in ("segmentation.png", "recall_by_size.png", "overlays.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_values_match_direct_calls(run):
    root, out = run
    _, seg = _csv(out / "segmentation.csv")
    _, det = _csv(out / "detection.csv")
    _, scores = _csv(out / "scores.csv")
    _, lesions = _csv(out / "correspondences.csv")
    seg_of = {(r["case"], r["algorithm"], r["rater"]): float(r["dice"]) for r in seg}
    det_of = {(r["case"], r["algorithm"], r["rater"]): r for r in det}
    voxel_ml = 1.5 * 1.5 * 4.0 / 1000
    for case_id in TEST_CASES:
        refs, preds = _masks(root, case_id)
        comparisons = [(a, r, refs[r], preds[a]) for a in preds for r in RATERS]
        comparisons += [("inter-rater", f"{r1}-{r2}", refs[r1], refs[r2]) for r1, r2 in itertools.combinations(RATERS, 2)]
        for algorithm, rater, reference, prediction in comparisons:
            assert seg_of[case_id, algorithm, rater] == pytest.approx(dice(prediction, reference), abs=1e-12)
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


def test_p_values_match_scipy(run):
    _, out = run
    _, seg = _csv(out / "segmentation.csv")
    _, stats = _csv(out / "stats.csv")
    for rater in RATERS:
        a1 = [float(r["dice"]) for r in seg if (r["algorithm"], r["rater"]) == ("A1", rater)]
        a2 = [float(r["dice"]) for r in seg if (r["algorithm"], r["rater"]) == ("A2", rater)]
        row = next(r for r in stats if (r["family"], r["metric"], r["rater"]) == ("segmentation", "dice", rater))
        if np.any(np.array(a1) != np.array(a2)):
            assert float(row["p"]) == pytest.approx(wilcoxon(a1, a2).pvalue)
    assert {r["family"] for r in stats} == {"segmentation", "detection"}


def test_report_is_self_contained(run):
    _, out = run
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 3
    assert page.count("<table") >= 3 and "Table 1" in page and "Table 2" in page
    assert "http://" not in page and "https://" not in page
    extra = build_report(out, [Section("Rating", "<p>extra block</p>")])
    assert extra.index("<h2>Rating</h2>") > extra.index("<h2>Paired tests</h2>")


def test_missing_prediction_is_one_line_exit_2(run, tmp_path, capsys):
    root, _ = run
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


def test_geometry_mismatch_names_the_file(run, tmp_path, capsys):
    root, _ = run
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


def test_non_binary_prediction_is_rejected(run, tmp_path, capsys):
    root, _ = run
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
    rows = evaluate_case("x", {"R1": ref}, {"A": pred}, voxel_ml=0.001)
    assert [r.rater for r in rows.segmentation] == ["R1"]
    assert rows.scores[0].mean_dice == pytest.approx(dice(pred, ref))
    assert math.isnan(rows.scores[0].inter_rater_dice) and math.isnan(rows.scores[0].phi)
