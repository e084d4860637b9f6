"""What ``hepaseg predict`` writes (``inference.outputs``), through the CLI with the stand-in model
of ``predict_cases`` (its mask is the liver): the one-case folder form's full set (with a DICOM-SEG
of both segments for a DICOM input), the liver mask used, given back with ``-l``; the batch's
``liver/`` and ``overview/`` files, and that a case counts as done only when all its files exist."""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from hepaseg.cli import main
from hepaseg.inference.lesion_table import read_csv
from hepaseg.inference.overview import WIDTH_PX
from hepaseg.io.volumes import read_volume

from ..axis_order import write_dicom_case
from .predict_cases import mask_dice, model_folder, write_case, write_manifest


def _is_overview(path) -> None:
    picture = Image.open(io.BytesIO(path.read_bytes()))
    assert picture.format == "PNG" and picture.size[0] == WIDTH_PX and path.stat().st_size < 200_000


def _same_volume(a, b) -> None:
    a, b = read_volume(a), read_volume(b)
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-4)


def test_one_case_into_a_folder_writes_the_full_set(tmp_path, capsys):
    image, liver = write_case(tmp_path / "in")
    model = model_folder(tmp_path / "model")
    common = ["predict", str(model), "-i", str(image), "-l", str(liver), "--device", "cpu"]
    out = tmp_path / "out"  # does not exist yet: a name without suffix is a folder
    assert main(common + ["-o", str(out), "--save-probabilities"]) == 0, capsys.readouterr().err
    assert f"lesions in {out / 'lesions.csv'}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["lesions.csv", "liver.nii.gz", "overview.png", "tumor.nii.gz",
                                                     "tumor_probability.nii.gz"]
    _same_volume(out / "liver.nii.gz", liver)
    tumour = read_volume(out / "tumor.nii.gz").array
    assert mask_dice(tumour, read_volume(liver).array) > 0.97
    (row,) = read_csv(out / "lesions.csv")
    assert row.case == "image" and row.voxels == tumour.sum()
    _is_overview(out / "overview.png")

    assert main(common + ["-o", str(tmp_path / "file.nii.gz")]) == 0  # the file form: that file only
    _same_volume(tmp_path / "file.nii.gz", out / "tumor.nii.gz")
    assert not (tmp_path / "file_liver.nii.gz").exists()

    assert main(common + ["-o", str(out), "--format", "nrrd"]) == 0  # an existing folder, another format
    _same_volume(out / "liver.nrrd", liver)
    _same_volume(out / "tumor.nrrd", out / "tumor.nii.gz")
    assert not [p for p in tmp_path.rglob(".*")], "no temporary files left"


def test_a_dicom_case_into_a_folder_gets_its_dicom_objects_and_the_liver_used(tmp_path, capsys, write_dicom_series):
    import highdicom as hd
    import pydicom

    entry, uid = write_dicom_case(tmp_path, write_dicom_series)
    case = tmp_path / "case"
    model = model_folder(tmp_path / "model")
    common = ["predict", str(model), "-i", str(case / "dicom"), "--series", uid, "--device", "cpu"]
    out = tmp_path / "out"
    # the liver mask is given in another axis order: the one written is the liver used, on the series' grid
    assert main(common + ["-l", str(case / "liver.nii.gz"), "-o", str(out)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["lesions.csv", "liver.nii.gz", "overview.dcm", "overview.png",
                                                     "report.dcm", "rtstruct.dcm", "segmentation.dcm", "tumor.nii.gz"]
    _same_volume(out / "liver.nii.gz", case / "liver_canonical.nii.gz")
    np.testing.assert_allclose(read_volume(out / "liver.nii.gz").affine, read_volume(tmp_path / "hbp").affine, atol=1e-4)
    _is_overview(out / "overview.png")

    seg = hd.seg.segread(out / "segmentation.dcm")
    rows = list(csv.DictReader((out / "lesions.csv").open()))
    assert rows, "the fixture's model finds a lesion"
    assert [seg.get_segment_description(n).segment_label for n in seg.get_segment_numbers()] == \
        ["Liver"] + [f"Lesion {r['lesion']}" for r in rows]
    assert [str(s.SeriesInstanceUID) for s in seg.ReferencedSeriesSequence] == [uid]
    by_slice = sorted((pydicom.dcmread(p).InstanceNumber, str(pydicom.dcmread(p).SOPInstanceUID))
                      for p in (tmp_path / "hbp").iterdir())  # the fixture numbers slices k + 1
    pixels = seg.get_pixels_by_source_instance([u for _, u in by_slice], segment_numbers=seg.get_segment_numbers(),
                                               assert_missing_frames_are_empty=True)
    liver, tumour = (read_volume(out / name).array for name in ("liver.nii.gz", "tumor.nii.gz"))
    np.testing.assert_array_equal(pixels[..., 0], liver.transpose(2, 1, 0))
    np.testing.assert_array_equal(pixels[..., 1:].any(axis=-1), tumour.transpose(2, 1, 0) > 0)
    assert [int(pixels[..., n].sum()) for n in range(1, pixels.shape[-1])] == [int(r["voxels"]) for r in rows]

    # the written liver mask goes back in with -l and gives the same prediction
    assert main(common + ["-l", str(out / "liver.nii.gz"), "-o", str(tmp_path / "again.nii.gz")]) == 0
    _same_volume(tmp_path / "again.nii.gz", out / "tumor.nii.gz")
    # --format dicom-seg with a folder keeps its meaning: only tumor.dcm, the liver and one segment per lesion
    assert main(common + ["-l", str(case / "liver.nii.gz"), "-o", str(tmp_path / "seg"), "--format", "dicom-seg"]) == 0
    assert [p.name for p in (tmp_path / "seg").iterdir()] == ["tumor.dcm"]
    assert hd.seg.segread(tmp_path / "seg" / "tumor.dcm").number_of_segments == 1 + len(rows)

    manifest = tmp_path / "dataset.json"  # a batch of DICOM-SEGs still writes liver/<id>.nii.gz
    manifest.write_text(json.dumps({"name": "t", "raters": ["R1"], "cases": [entry]}))
    batch = tmp_path / "batch"
    assert main(["predict", str(model), "--dataset", str(manifest), "-o", str(batch), "--format", "dicom-seg",
                 "--device", "cpu"]) == 0, capsys.readouterr().err
    assert sorted(str(p.relative_to(batch)) for p in batch.rglob("*") if p.is_file()) == [
        "case.dcm", "lesions.csv", "lesions/case.csv", "liver/case.nii.gz", "overview/case.png"]
    _same_volume(batch / "liver" / "case.nii.gz", case / "liver_canonical.nii.gz")


def test_a_batch_case_is_done_only_when_all_its_files_exist(tmp_path, capsys, monkeypatch):
    manifest = write_manifest(tmp_path / "data", n=2)
    model = model_folder(tmp_path / "model")
    out = tmp_path / "preds"
    args = ["predict", str(model), "--dataset", str(manifest), "--split", "test", "-o", str(out), "--device", "cpu"]

    def broken(*_args, **_kwargs):
        raise OSError(28, "No space left on device", str(out / "overview" / "x.png"))

    monkeypatch.setattr("hepaseg.inference.overview.write_overview", broken)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "error: c0: " in err and "No space left on device" in err
    assert (out / "liver" / "c0.nii.gz").is_file() and (out / "lesions" / "c0.csv").is_file()
    assert not list(out.glob("*.nii.gz")), "the mask comes last: no case is done"
    monkeypatch.undo()

    assert main(args) == 0
    assert "2 predicted, 0 already done, 0 failed" in capsys.readouterr().out
    for case in ("c0", "c1"):
        _same_volume(out / "liver" / f"{case}.nii.gz", tmp_path / "data" / case / "liver.nii.gz")
        _is_overview(out / "overview" / f"{case}.png")
    (out / "overview" / "c0.png").unlink()
    (out / "liver" / "c1.nii.gz").unlink()
    os.utime(out / "c0.nii.gz", ns=(1, 1))
    assert main(args) == 0
    assert "2 predicted, 0 already done" in capsys.readouterr().out, "a missing overview or liver file is not done"
    assert (out / "c0.nii.gz").stat().st_mtime_ns != 1 and (out / "liver" / "c1.nii.gz").is_file()
    os.utime(out / "c1.nii.gz", ns=(1, 1))
    (out / "overview" / "c0.png").unlink()
    assert main(args) == 0
    assert "1 predicted, 1 already done" in capsys.readouterr().out
    assert (out / "c1.nii.gz").stat().st_mtime_ns == 1 and (out / "overview" / "c0.png").is_file()


@pytest.mark.parametrize("name", ["tumor.txt", "out.v2"])
def test_an_unknown_suffix_is_neither_file_nor_folder(tmp_path, capsys, name):
    image, liver = write_case(tmp_path / "in")
    rc = main(["predict", str(model_folder(tmp_path / "m")), "-i", str(image), "-l", str(liver),
               "-o", str(tmp_path / name), "--device", "cpu"])
    assert rc == 2 and "unknown suffix; give a folder" in capsys.readouterr().err
    assert not (tmp_path / name).exists()


def test_a_dicom_series_without_frame_of_reference_gets_every_other_output(tmp_path, capsys, write_dicom_series):
    """Some anonymisers strip the Frame of Reference UID (Type 1 of the MR Image IOD): the NIfTI, CSV and
    PNG outputs are written, the objects that need it are left out with one line each, exit 1."""
    import pydicom

    _, uid = write_dicom_case(tmp_path, write_dicom_series)
    case = tmp_path / "case"
    for path in (case / "dicom").glob("hbp_*"):
        ds = pydicom.dcmread(path)
        del ds.FrameOfReferenceUID
        ds.save_as(path)
    out = tmp_path / "out"
    code = main(["predict", str(model_folder(tmp_path / "model")), "-i", str(case / "dicom"), "--series", uid,
                 "--device", "cpu", "-l", str(case / "liver.nii.gz"), "-o", str(out), "--objects", "seg"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1, err
    assert err == [f"warning: no SEG written: the source series {uid} lacks FrameOfReferenceUID (required by the "
                   "source image's IOD and by the result's)"]
    assert sorted(p.name for p in out.iterdir()) == ["lesions.csv", "liver.nii.gz", "overview.png", "tumor.nii.gz"]
