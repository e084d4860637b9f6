"""Manifest loading and ``hepaseg check`` on real files with planted problems."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hepaseg.cli import main
from hepaseg.data.manifest import check_dataset, load_manifest
from hepaseg.errors import InputError
from hepaseg.io.volumes import write_volume

from ..axis_order import write_dicom_case

AFFINE = np.diag([0.8, 0.8, 3.0, 1.0])


def _case_files(root, case_id, shape=(12, 10, 6), liver_box=(slice(2, 10), slice(2, 8), slice(1, 5))):
    """Write image, liver and one tumour mask for a clean case; returns the manifest entry."""
    folder = root / case_id
    rng = np.random.default_rng(0)
    write_volume(rng.integers(0, 1000, shape, dtype=np.int16), AFFINE, folder / "image.nii.gz")
    liver = np.zeros(shape, np.uint8)
    liver[liver_box] = 1
    write_volume(liver, AFFINE, folder / "liver.nii.gz")
    tumor = np.zeros(shape, np.uint8)
    tumor[4:6, 4:6, 2:4] = 1
    write_volume(tumor, AFFINE, folder / "tumor_R1.nii.gz")
    return {"id": case_id, "split": "train", "image": f"{case_id}/image.nii.gz",
            "liver": f"{case_id}/liver.nii.gz", "tumor": {"R1": f"{case_id}/tumor_R1.nii.gz"}}


def _manifest(root, cases, raters=("R1",)):
    path = root / "dataset.json"
    path.write_text(json.dumps({"name": "t", "raters": list(raters), "cases": cases}))
    return path


def test_clean_dataset_loads_and_checks(tmp_path, capsys):
    entries = [_case_files(tmp_path, "a"), _case_files(tmp_path, "b")]
    entries[1]["split"] = "test"
    entries[1]["image"] = str((tmp_path / "b" / "image.nii.gz").resolve())  # absolute path allowed
    manifest = _manifest(tmp_path, entries)
    ds = load_manifest(manifest)
    assert [c.id for c in ds.cases] == ["a", "b"]
    assert [c.id for c in ds.split("test")] == ["b"]
    assert ds.case("a").tumor["R1"] == tmp_path.resolve() / "a" / "tumor_R1.nii.gz"
    report = check_dataset(manifest)
    assert report.problems == ()
    assert main(["check", str(manifest)]) == 0
    assert "0 errors" in capsys.readouterr().out


def test_check_reports_every_problem(tmp_path, capsys):
    good = _case_files(tmp_path, "good")
    dup = dict(good)
    bad_split = {**_case_files(tmp_path, "split"), "split": "training"}
    missing = {**_case_files(tmp_path, "missing"), "image": "missing/nothing.nii.gz"}

    mismatch = _case_files(tmp_path, "mismatch")
    write_volume(np.zeros((12, 10, 7), np.uint8), AFFINE, tmp_path / "mismatch" / "liver.nii.gz")

    nonbinary = _case_files(tmp_path, "nonbinary")
    write_volume(np.full((12, 10, 6), 2, np.uint8), AFFINE, tmp_path / "nonbinary" / "tumor_R1.nii.gz")

    empty = _case_files(tmp_path, "empty")
    write_volume(np.zeros((12, 10, 6), np.uint8), AFFINE, tmp_path / "empty" / "liver.nii.gz")

    four_d = _case_files(tmp_path, "fourd")
    write_volume(np.zeros((12, 10, 6, 2), np.int16), AFFINE, tmp_path / "fourd" / "image.nii.gz")

    nan = _case_files(tmp_path, "nan")
    image = np.ones((12, 10, 6), np.float32)
    image[0, 0, 0] = np.nan
    write_volume(image, AFFINE, tmp_path / "nan" / "image.nii.gz")

    outside = _case_files(tmp_path, "outside")
    tumor = np.zeros((12, 10, 6), np.uint8)
    tumor[0:2, 0:2, 0] = 1  # 4 voxels, all outside the liver box
    tumor[4:6, 4:6, 2] = 1  # 4 voxels inside
    write_volume(tumor, AFFINE, tmp_path / "outside" / "tumor_R1.nii.gz")

    shifted = _case_files(tmp_path, "shifted")
    moved = AFFINE.copy()
    moved[0, 3] = 5.0
    write_volume(np.zeros((12, 10, 6), np.uint8), moved, tmp_path / "shifted" / "tumor_R1.nii.gz")

    manifest = _manifest(tmp_path, [good, dup, bad_split, missing, mismatch, nonbinary, empty,
                                    four_d, nan, outside, shifted])
    report = check_dataset(manifest)
    text = "\n".join(p.format() for p in report.problems)
    expected = {
        "duplicate case id 'good'": "error",
        "unknown split 'training'": "error",
        "file not found": "error",
        "grid differs from the image: shape": "error",
        "mask is not binary (values 2)": "error",
        "liver mask is empty": "error",
        "is 4D": "error",
        "1 NaN/inf voxels": "error",
        "50.0% of tumour voxels lie outside the liver mask": "warning",
        "grid differs from the image: origin": "error",
    }
    for fragment, severity in expected.items():
        hits = [p for p in report.problems if fragment in p.message]
        assert len(hits) == 1, f"{fragment!r} not reported once:\n{text}"
        assert hits[0].severity == severity
    assert len(report.errors) == 9 and len(report.warnings) == 1
    assert main(["check", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "missing/nothing.nii.gz: file not found" in err
    assert "Traceback" not in err


def test_load_manifest_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(InputError, match="manifest not found"):
        load_manifest(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_manifest(bad)
    assert main(["preprocess", str(bad), "-o", str(tmp_path / "prep")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: not valid JSON") and "\n" not in err
    unsafe = _manifest(tmp_path, [{"id": "../x", "split": "train", "image": "a", "liver": "b"}])
    with pytest.raises(InputError, match="unsafe id"):
        load_manifest(unsafe)


# --- DICOM folders with several series, masks in another axis order ------------------------------


def test_check_reads_the_chosen_series_and_notes_a_mask_in_another_axis_order(tmp_path, write_dicom_series, capsys):
    entry, uid = write_dicom_case(tmp_path, write_dicom_series)
    manifest = _manifest(tmp_path, [entry])
    assert load_manifest(manifest).case("case").series == uid
    report = check_dataset(manifest)
    (note,) = report.problems
    assert note.severity == "note" and note.where == str(tmp_path.resolve() / "case" / "liver.nii.gz")
    assert "another axis order" in note.message
    assert main(["check", str(manifest)]) == 0
    assert "0 errors, 0 warnings, 1 notes: OK" in capsys.readouterr().out

    without = _manifest(tmp_path, [{k: v for k, v in entry.items() if k != "series"}])
    (error,) = check_dataset(without).problems
    assert error.severity == "error" and error.where.endswith("dicom")
    assert error.message.startswith("folder holds 2 DICOM series: ") and uid in error.message
    bad = _manifest(tmp_path, [{**entry, "series": 12}])
    with pytest.raises(InputError, match="'series' must be a Series Instance UID"):
        load_manifest(bad)
