"""``hepaseg export dicom``: any mask on a real DICOM series to DICOM objects, lesions numbered as in
lesions.csv (by hand below), masks in another axis order, bad input refused, and a series stripped of
its Frame of Reference UID giving every other output and a line naming what was left out."""

from __future__ import annotations

import csv

import numpy as np
import pydicom
import pytest

from hepaseg.cli import main
from hepaseg.io.volumes import read_volume, write_volume

from ..axis_order import write_reordered

SHAPE = (24, 20, 6)
SPACING = (1.2, 1.1, 3.0)


def _masks() -> tuple[np.ndarray, np.ndarray]:
    """A liver and three lesions of 12, 8 and 2 voxels, none touching (so numbered 1, 2, 3 by size;
    the smallest comes first in scan order)."""
    liver = np.zeros(SHAPE, np.uint8)
    liver[2:22, 2:18, 1:5] = 1
    tumour = np.zeros(SHAPE, np.uint8)
    tumour[3, 3, 1:3] = 1  # 2 voxels: lesion 3
    tumour[10:13, 10:12, 2:4] = 1  # 12 voxels: lesion 1
    tumour[16:18, 4:6, 3:5] = 1  # 8 voxels: lesion 2
    return liver, tumour


@pytest.fixture
def case(tmp_path, write_dicom_series):
    """(series folder, tumour file in another axis order, liver file, tumour, liver)."""
    liver, tumour = _masks()
    image = (np.where(liver > 0, 900, 300) - 500 * tumour.astype(int)).astype(np.int16)
    affine = write_dicom_series(tmp_path / "series", image, SPACING, (40.0, -30.0, 10.0), (-1.0, 0.0, 0.0),
                                (0.0, 1.0, 0.0))
    tumour_file = write_reordered(tumour, affine, tmp_path / "tumour.nii.gz")
    liver_file = write_volume(liver, affine, tmp_path / "liver.nii.gz")
    return tmp_path / "series", tumour_file, liver_file, tumour, liver


def test_lesions_numbered_by_size_in_the_table_and_the_seg(case, tmp_path, capsys):
    import highdicom as hd

    series, tumour_file, liver_file, tumour, liver = case
    out = tmp_path / "out"
    assert main(["export", "dicom", "--image", str(series), "--tumor", str(tumour_file), "--liver", str(liver_file),
                 "-o", str(out), "--objects", "seg"]) == 0, capsys.readouterr().err
    rows = list(csv.DictReader((out / "lesions.csv").open()))
    assert [(int(r["lesion"]), int(r["voxels"])) for r in rows] == [(1, 12), (2, 8), (3, 2)]
    voxel_ml = SPACING[0] * SPACING[1] * SPACING[2] / 1000
    assert [float(r["volume_ml"]) for r in rows] == pytest.approx([12 * voxel_ml, 8 * voxel_ml, 2 * voxel_ml])

    seg = hd.seg.segread(out / "segmentation.dcm")
    assert [seg.get_segment_description(n).segment_label for n in seg.get_segment_numbers()] == \
        ["Liver", "Lesion 1", "Lesion 2", "Lesion 3"]
    by_k = sorted((pydicom.dcmread(p).InstanceNumber, str(pydicom.dcmread(p).SOPInstanceUID)) for p in series.iterdir())
    pixels = seg.get_pixels_by_source_instance([u for _, u in by_k], segment_numbers=[1, 2, 3, 4],
                                               assert_missing_frames_are_empty=True).transpose(2, 1, 0, 3)
    expected = [liver > 0, np.zeros(SHAPE, bool), np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)]
    expected[1][10:13, 10:12, 2:4] = True
    expected[2][16:18, 4:6, 3:5] = True
    expected[3][3, 3, 1:3] = True
    for segment, mask in enumerate(expected):
        np.testing.assert_array_equal(pixels[..., segment], mask)
    assert sorted(p.name for p in out.iterdir()) == ["lesions.csv", "segmentation.dcm"]


def test_bad_input_is_one_line_exit_2_and_nothing_written(case, tmp_path, capsys):
    series, tumour_file, liver_file, tumour, _ = case
    affine = read_volume(series).affine
    grey = write_volume(tumour * 3, affine, tmp_path / "grey.nii.gz")
    shifted = affine.copy()
    shifted[:3, 3] += 5.0
    elsewhere = write_volume(tumour, shifted, tmp_path / "elsewhere.nii.gz")
    out = tmp_path / "out"
    for image, mask, fragment in ((series, grey, "not a binary mask"), (series, elsewhere, "grid differs"),
                                  (liver_file, tumour_file, "must be a DICOM series folder")):
        assert main(["export", "dicom", "--image", str(image), "--tumor", str(mask), "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err
        assert not out.exists()


def test_all_four_objects_pass_the_validator_and_name_each_lesion_alike(case, tmp_path, capsys):
    """Every object of an export: valid by dciodvfy, in the source study, a series of its own, and lesion
    n's tracking UID the same in the SEG's segment n + 1, the SR's group and the RTSTRUCT's ROI n + 1."""
    import highdicom as hd

    from ..dciodvfy import assert_valid

    series, tumour_file, liver_file, _, _ = case
    out = tmp_path / "out"
    assert main(["export", "dicom", "--image", str(series), "--tumor", str(tumour_file), "--liver", str(liver_file),
                 "-o", str(out)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["lesions.csv", "overview.dcm", "overview.png", "report.dcm",
                                                     "rtstruct.dcm", "segmentation.dcm"]
    source = pydicom.dcmread(next(series.iterdir()))
    objects = {name: pydicom.dcmread(out / name) for name in ("segmentation.dcm", "report.dcm", "rtstruct.dcm",
                                                              "overview.dcm")}
    assert {str(ds.StudyInstanceUID) for ds in objects.values()} == {str(source.StudyInstanceUID)}
    assert len({str(ds.SeriesInstanceUID) for ds in objects.values()} | {str(source.SeriesInstanceUID)}) == 5
    for name, iod in (("segmentation.dcm", "Segmentation"), ("report.dcm", "Comprehensive3DSR"),
                      ("rtstruct.dcm", "RTStructureSet"), ("overview.dcm", "SCImage")):
        assert_valid(out / name, iod)
    seg = hd.seg.segread(out / "segmentation.dcm")
    seg_uids = [seg.get_segment_description(n + 1).tracking_uid for n in (1, 2, 3)]
    assert len(set(seg_uids)) == 3
    rois = {int(r.ROINumber): str(r.ROIName) for r in objects["rtstruct.dcm"].StructureSetROISequence}
    assert rois == {1: "Liver", 2: "Lesion 1", 3: "Lesion 2", 4: "Lesion 3"}
    descriptions = {int(r.ROINumber): str(r.get("ROIDescription", "")) for r in objects["rtstruct.dcm"].StructureSetROISequence}
    for n, uid in enumerate(seg_uids, start=1):
        assert uid in descriptions[n + 1]
    assert set(seg_uids) <= set(_uid_items(objects["report.dcm"]))


def _uid_items(ds) -> list[str]:
    """The UIDREF content items' values anywhere in an SR's content tree."""
    found = [str(ds.UID)] if ds.get("ValueType") == "UIDREF" and "UID" in ds else []
    for item in ds.get("ContentSequence", []):
        found += _uid_items(item)
    return found


def test_a_series_without_frame_of_reference_gets_every_other_output(case, tmp_path, capsys):
    series, tumour_file, liver_file, _, _ = case
    for path in series.iterdir():  # as some anonymisers leave it
        ds = pydicom.dcmread(path)
        del ds.FrameOfReferenceUID
        ds.save_as(path)
    uid = str(pydicom.dcmread(next(series.iterdir())).SeriesInstanceUID)
    out = tmp_path / "out"
    assert main(["export", "dicom", "--image", str(series), "--tumor", str(tumour_file), "--liver", str(liver_file),
                 "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: no {kind} written: the source series {uid} lacks FrameOfReferenceUID (required by the "
                   "source image's IOD and by the result's)" for kind in ("SEG", "SR", "RTSTRUCT")]
    # the Secondary Capture has no frame of reference: it is written
    assert sorted(p.name for p in out.iterdir()) == ["lesions.csv", "overview.dcm", "overview.png"]
