"""``hepaseg export nnunet``: the nnU-Net v2 raw layout, checked file by file against the sources
(names, dataset.json, label values, geometry, splits, links or copies), nnU-Net's own
``verify_dataset_integrity`` where nnunetv2 is installed, and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from hepaseg.cli import main
from hepaseg.io.volumes import read_volume, write_volume

SHAPE = (10, 9, 5)
AFFINE = np.array([[0.8, 0, 0, -30.0], [0, 0.9, 0, 12.0], [0, 0, 3.0, 40.0], [0, 0, 0, 1]])
SPLITS = {"t1": "train", "t2": "train", "v1": "val", "s1": "test"}


@pytest.fixture
def cohort(tmp_path, write_dicom_series) -> Path:
    """t1 (.nii.gz), t2 (NRRD image), v1 (DICOM series), s1 (test, .nii.gz); raters R1 and R2."""
    rng = np.random.default_rng(3)
    cases = []
    for case_id, split in SPLITS.items():
        folder = tmp_path / "cohort" / case_id
        folder.mkdir(parents=True)
        image = rng.integers(0, 300, SHAPE).astype(np.int16)
        if case_id == "v1":
            affine = write_dicom_series(folder / "series", image, (0.8, 0.9, 3.0), (-30.0, -12.0, 40.0),
                                        (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
            image_name = "series"
        else:
            affine = AFFINE
            image_name = "image.nrrd" if case_id == "t2" else "image.nii.gz"
            write_volume(image, affine, folder / image_name)
        liver = np.zeros(SHAPE, np.uint8)
        liver[1:-1, 1:-1, 1:-1] = 1
        write_volume(liver, affine, folder / "liver.nii.gz")
        tumor = {}
        for rater, offset in (("R1", 0), ("R2", 1)):
            mask = np.zeros(SHAPE, np.uint8)
            mask[2 + offset:5 + offset, 3:6, 1:3] = 1
            mask[0, 0, 0] = rater == "R1"  # one tumour voxel outside the liver: still label 2
            write_volume(mask, affine, folder / f"{rater}.nii.gz")
            tumor[rater] = f"{case_id}/{rater}.nii.gz"
        cases.append({"id": case_id, "split": split, "image": f"{case_id}/{image_name}",
                      "liver": f"{case_id}/liver.nii.gz", "tumor": tumor})
    manifest = tmp_path / "cohort" / "dataset.json"
    manifest.write_text(json.dumps({"name": "tiny", "raters": ["R1", "R2"], "cases": cases}))
    return manifest


def _export(manifest: Path, out: Path, *extra: str) -> int:
    return main(["export", "nnunet", str(manifest), "-o", str(out), "--id", "501", *extra])


def test_layout_matches_the_sources(cohort, tmp_path, capsys):
    before = {p: p.read_bytes() for p in cohort.parent.rglob("*") if p.is_file()}
    out = tmp_path / "nnUNet_raw" / "Dataset501_Liver"
    assert _export(cohort, out) == 0
    printed = capsys.readouterr().out
    assert "nnUNetv2_plan_and_preprocess -d 501" in printed and "nnUNetv2_train 501 3d_fullres 0" in printed
    assert "--label nnUNet=2" in printed
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if not p.is_dir()}
    assert names == {"dataset.json", "splits_final.json",
                     "imagesTr/t1_0000.nii.gz", "imagesTr/t2_0000.nii.gz", "imagesTr/v1_0000.nii.gz",
                     "labelsTr/t1.nii.gz", "labelsTr/t2.nii.gz", "labelsTr/v1.nii.gz", "imagesTs/s1_0000.nii.gz"}
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "MRI"} and meta["file_ending"] == ".nii.gz"
    assert meta["labels"] == {"background": 0, "liver": 1, "tumor": 2} and meta["numTraining"] == 3
    assert json.loads((out / "splits_final.json").read_text()) == [{"train": ["t1", "t2"], "val": ["v1"]}]
    root = cohort.parent
    for case_id, split in SPLITS.items():
        sub = "imagesTs" if split == "test" else "imagesTr"
        exported = out / sub / f"{case_id}_0000.nii.gz"
        source_name = {"t2": "image.nrrd", "v1": "series"}.get(case_id, "image.nii.gz")
        source = read_volume(root / case_id / source_name)
        image = read_volume(exported)
        np.testing.assert_array_equal(image.array, source.array)
        np.testing.assert_allclose(image.affine, source.affine, atol=1e-5)
        # unchanged NIfTI images are linked to the source; NRRD and DICOM are converted
        assert exported.is_symlink() == (source_name == "image.nii.gz")
        if split == "test":
            continue
        label = read_volume(out / "labelsTr" / f"{case_id}.nii.gz")
        liver = read_volume(root / case_id / "liver.nii.gz").array > 0
        tumour = read_volume(root / case_id / "R1.nii.gz").array > 0
        expected = np.zeros(SHAPE, np.uint8)
        expected[liver] = 1
        expected[tumour] = 2
        np.testing.assert_array_equal(label.array, expected)
        assert label.array[0, 0, 0] == 2 and set(np.unique(label.array)) == {0, 1, 2}
        np.testing.assert_allclose(label.affine, source.affine, atol=1e-5)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # inputs untouched


def test_copy_and_rater(cohort, tmp_path):
    out = tmp_path / "Dataset501_Liver"
    assert _export(cohort, out, "--copy", "--rater", "R2") == 0
    image = out / "imagesTr" / "t1_0000.nii.gz"
    assert not image.is_symlink() and image.read_bytes() == (cohort.parent / "t1" / "image.nii.gz").read_bytes()
    label = read_volume(out / "labelsTr" / "t1.nii.gz").array
    r2 = read_volume(cohort.parent / "t1" / "R2.nii.gz").array > 0
    np.testing.assert_array_equal(label == 2, r2)
    assert label[0, 0, 0] == 0  # R2 has no voxel outside the liver; that corner is background


@pytest.mark.parametrize("out_name, extra, problem", [
    ("Dataset502_Liver", (), "Dataset501_<name>"),
    ("Liver", (), "Dataset501_<name>"),
    ("Dataset501_Liver", ("--rater", "R9"), "rater 'R9'"),
])
def test_bad_input_is_one_line_and_writes_nothing(cohort, tmp_path, capsys, out_name, extra, problem):
    out = tmp_path / "raw" / out_name
    assert _export(cohort, out, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and problem in err
    assert not (tmp_path / "raw").exists()


def test_mask_off_the_grid_leaves_no_half_written_folder(cohort, tmp_path, capsys):
    liver = cohort.parent / "t2" / "liver.nii.gz"
    moved = AFFINE.copy()
    moved[1, 3] += 4.0
    write_volume(read_volume(liver).array, moved, liver)
    raw = tmp_path / "raw"
    assert _export(cohort, raw / "Dataset501_Liver") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(liver) in err and "origin" in err
    assert os.listdir(raw) == []  # neither the dataset nor its temporary folder


def test_existing_folder_is_not_replaced(cohort, tmp_path, capsys):
    out = tmp_path / "Dataset501_Liver"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert _export(cohort, out) == 2
    assert "already exists" in capsys.readouterr().err and os.listdir(out) == ["mine.txt"]


def test_nnunet_accepts_the_export(cohort, tmp_path):
    verify = pytest.importorskip(
        "nnunetv2.experiment_planning.verify_dataset_integrity",
        reason="nnunetv2 is not installed (it is not a test extra: its install replaces torch); "
               "the layout is checked file by file in test_layout_matches_the_sources")
    out = tmp_path / "Dataset501_Liver"
    assert _export(cohort, out) == 0
    verify.verify_dataset_integrity(str(out), num_processes=1)
