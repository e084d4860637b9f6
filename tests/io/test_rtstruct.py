"""RTSTRUCT (``io.rtstruct``) on real pydicom-written series: plain, columns flipped (i runs right to
left) and oblique planes, each stored with instance numbers along the slice normal and against it.

Everything expected comes from the files as the fixture wrote them, not from the volume's headers
the RTSTRUCT is built from: file ``s<k>.dcm`` holds slice k of the hand-made masks (its SOP Instance
UID is recorded before a reversed copy renames it), and each file's own ImagePositionPatient,
ImageOrientationPatient and PixelSpacing place the contours. The contours are rasterised back by a
second method (matplotlib's point-in-polygon test on the voxel centres, contours on one slice
combined by the even-odd rule) and compared with the masks; the lesions' numbers (largest first)
and volumes are worked out by hand; Debian's validator ``dciodvfy`` checks the objects.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from matplotlib.path import Path as PolygonPath

from hepaseg.inference.dicom_outputs import build_object, make_findings
from hepaseg.io.dicom_results import SERIES_NUMBERS, instance_uid, series_uid, tracking_uid, write_dicom_object
from hepaseg.io.rtstruct import build_rtstruct
from hepaseg.io.volumes import read_volume

SHAPE = (30, 26, 6)  # columns x rows x slices: a non-square image
SPACING = (1.2, 1.1, 3.0)  # non-square pixels: PixelSpacing [1.1, 1.2]
VOXEL_ML = 1.2 * 1.1 * 3.0 / 1000
GEOMETRIES = {"plain": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
              "columns flipped": ((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
              "oblique": ((1.0, 0.0, 0.0), (0.0, 0.8, -0.6))}
ON_PLANE_MM = 1e-3  # ContourData is written with 4 decimals


def _masks():
    """(liver, tumour, lesions by expected number): the liver with an outline that changes from slice to
    slice and a hole with an island in it through every slice; lesion 1 a 90-voxel box, lesion 2 a
    ring (a hole in each of its slices, 32 voxels), lesion 3 two voxels touching at a corner."""
    liver = np.zeros(SHAPE, bool)
    for k in range(SHAPE[2]):
        liver[2:26 - k, 2 + k // 2:24, k] = True
    liver[10:15, 12:17, :] = False
    liver[12, 14, :] = True
    first = np.zeros(SHAPE, bool)
    first[4:10, 4:9, 1:4] = True
    ring = np.zeros(SHAPE, bool)
    ring[14:19, 4:9, 2:4] = True
    ring[15:18, 5:8, 2:4] = False
    third = np.zeros(SHAPE, bool)
    third[21, 18, 3] = third[22, 19, 3] = True
    return liver, first | ring | third, (first, ring, third)


def _series(tmp_path, write_dicom_series, geometry: str, reversed_files: bool):
    """The series of ``_masks``' image; returns (folder, volume, {SOP Instance UID: k as written})."""
    liver, tumour, _ = _masks()
    image = (np.where(liver, 900, 300) - 500 * tumour).astype(np.int16)
    folder = tmp_path / "series"
    write_dicom_series(folder, image, SPACING, (40.0, -30.0, 10.0), *GEOMETRIES[geometry])
    slice_of = {}
    for k in range(SHAPE[2]):
        path = folder / f"s{k:03d}.dcm"
        ds = pydicom.dcmread(path)
        slice_of[str(ds.SOPInstanceUID)] = k
        if reversed_files:  # stored against the normal: the first file is the last slice
            ds.InstanceNumber = SHAPE[2] - k
            ds.save_as(folder / f"r{SHAPE[2] - 1 - k:03d}.dcm")
            path.unlink()
    return folder, read_volume(folder), slice_of


def _files(folder):
    return {str(ds.SOPInstanceUID): ds for ds in (pydicom.dcmread(p, stop_before_pixels=True)
                                                   for p in sorted(folder.glob("*.dcm")))}


def _rasterised(roi_contour, files, slice_of):
    """The (i, j, k) mask of an ROI Contour item: on each slice, the voxel centres inside an odd
    number of its contours, the contour points taken into the slice's pixel coordinates (column,
    row) from the referenced file's own geometry."""
    mask = np.zeros(SHAPE, bool)
    centres = np.stack(np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij"), -1).reshape(-1, 2)
    for contour in roi_contour.get("ContourSequence", []):
        uid = str(contour.ContourImageSequence[0].ReferencedSOPInstanceUID)
        ds = files[uid]
        row, col = np.asarray(ds.ImageOrientationPatient[:3]), np.asarray(ds.ImageOrientationPatient[3:])
        offsets = np.reshape(np.asarray(contour.ContourData, float), (-1, 3)) - np.asarray(ds.ImagePositionPatient)
        pixels = np.stack([offsets @ row / float(ds.PixelSpacing[1]), offsets @ col / float(ds.PixelSpacing[0])], 1)
        inside = PolygonPath(pixels).contains_points(centres).reshape(SHAPE[:2])
        mask[:, :, slice_of[uid]] ^= inside
    return mask


def _area_mm2(contour, ds):
    """The area (mm2) a contour encloses, by the shoelace formula in its slice's plane."""
    row, col = np.asarray(ds.ImageOrientationPatient[:3]), np.asarray(ds.ImageOrientationPatient[3:])
    offsets = np.reshape(np.asarray(contour.ContourData, float), (-1, 3)) - np.asarray(ds.ImagePositionPatient)
    x, y = offsets @ row, offsets @ col
    return abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def _dice(a, b):
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.mark.parametrize("reversed_files", [False, True], ids=["along the normal", "against the normal"])
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
def test_contours_lie_on_their_slices_and_rasterise_back_to_the_masks(tmp_path, write_dicom_series, geometry,
                                                                       reversed_files):
    folder, image, slice_of = _series(tmp_path, write_dicom_series, geometry, reversed_files)
    liver, tumour, lesions = _masks()
    rt = pydicom.dcmread(write_dicom_object(build_rtstruct(make_findings(image, tumour, liver)), tmp_path / "rt.dcm"))
    files = _files(folder)
    first = next(iter(files.values()))
    source = str(first.SeriesInstanceUID)

    assert rt.Modality == "RTSTRUCT" and rt.SOPClassUID == pydicom.uid.RTStructureSetStorage
    assert (rt.StudyInstanceUID, rt.PatientID, rt.PatientName) == (first.StudyInstanceUID, "PHANTOM", "Phantom^Liver")
    assert rt.SeriesInstanceUID == series_uid(source, "rtstruct")
    assert rt.SOPInstanceUID == instance_uid(source, "rtstruct")
    assert rt.SeriesNumber == SERIES_NUMBERS["rtstruct"] and "research use" in rt.SeriesDescription
    assert rt.Manufacturer == "hepaseg" and rt.StructureSetLabel == "hepaseg"
    frame = rt.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == first.FrameOfReferenceUID
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == source
    assert {str(item.ReferencedSOPInstanceUID) for item in series.ContourImageSequence} == set(slice_of)

    rois = rt.StructureSetROISequence
    assert [(int(r.ROINumber), r.ROIName) for r in rois] == [(1, "Liver"), (2, "Lesion 1"), (3, "Lesion 2"),
                                                              (4, "Lesion 3")]
    observations = {int(o.ReferencedROINumber): o for o in rt.RTROIObservationsSequence}
    assert [observations[n].RTROIInterpretedType for n in range(1, 5)] == ["ORGAN", "GTV", "GTV", "GTV"]
    assert observations[1].RTROIIdentificationCodeSequence[0].CodeMeaning == "Liver"
    assert {observations[n].RTROIIdentificationCodeSequence[0].CodeValue for n in (2, 3, 4)} == {"108369006"}
    for n, mask in enumerate(lesions, start=1):
        assert tracking_uid(source, n) in rois[n].ROIDescription
        assert float(rois[n].ROIVolume) == pytest.approx(np.count_nonzero(mask) * VOXEL_ML, rel=1e-4)
    assert float(rois[0].ROIVolume) == pytest.approx(np.count_nonzero(liver) * VOXEL_ML, rel=1e-4)

    for item in rt.ROIContourSequence:
        for contour in item.ContourSequence:
            ds = files[str(contour.ContourImageSequence[0].ReferencedSOPInstanceUID)]
            normal = np.cross(ds.ImageOrientationPatient[:3], ds.ImageOrientationPatient[3:])
            points = np.reshape(np.asarray(contour.ContourData, float), (-1, 3))
            assert contour.ContourGeometricType == "CLOSED_PLANAR" and len(points) == contour.NumberOfContourPoints
            np.testing.assert_allclose((points - np.asarray(ds.ImagePositionPatient)) @ normal, 0, atol=ON_PLANE_MM)

    contours = {int(item.ReferencedROINumber): item for item in rt.ROIContourSequence}
    # lesion 1's contour runs halfway between the voxel centres in and out: its 6 x 5 voxels less a
    # 0.5 x 0.5 voxel triangle at each corner
    boxes = contours[2].ContourSequence
    assert len(boxes) == 3
    for contour in boxes:
        ds = files[str(contour.ContourImageSequence[0].ReferencedSOPInstanceUID)]
        assert _area_mm2(contour, ds) == pytest.approx((6 * 5 - 4 * 0.125) * 1.2 * 1.1, rel=1e-5)
    for number, expected in enumerate((liver, *lesions), start=1):
        back = _rasterised(contours[number], files, slice_of)
        for k in range(SHAPE[2]):
            if np.count_nonzero(expected[:, :, k]) >= 10:
                assert _dice(back[:, :, k], expected[:, :, k]) >= 0.95, (number, k)
        np.testing.assert_array_equal(back, expected, err_msg=f"ROI {number}")


def test_without_lesions_the_liver_alone_and_an_empty_liver_without_contours(tmp_path, write_dicom_series):
    _, image, _ = _series(tmp_path, write_dicom_series, "columns flipped", False)
    liver, _, _ = _masks()
    rt = build_object("rtstruct", make_findings(image, np.zeros(SHAPE), liver))
    assert [(int(r.ROINumber), r.ROIName) for r in rt.StructureSetROISequence] == [(1, "Liver")]
    assert len(rt.ROIContourSequence[0].ContourSequence) > 0
    empty = build_rtstruct(make_findings(image, np.zeros(SHAPE), np.zeros(SHAPE)))
    assert [r.ROIName for r in empty.StructureSetROISequence] == ["Liver"]
    assert "ContourSequence" not in empty.ROIContourSequence[0]
    assert float(empty.StructureSetROISequence[0].ROIVolume) == 0


def test_masks_of_another_shape_are_refused(tmp_path, write_dicom_series):
    _, image, _ = _series(tmp_path, write_dicom_series, "plain", False)
    liver, tumour, _ = _masks()
    findings = make_findings(image, tumour, liver)
    with pytest.raises(ValueError, match="differ in shape"):
        build_rtstruct(type(findings)(image, liver[:, :, :5], findings.lesions, findings.table, 1.0))


def test_dciodvfy_finds_no_error_in_the_rtstruct(tmp_path, write_dicom_series):
    """Debian's dicom3tools validator checks the RTSTRUCT against the standard's IOD, independently of
    this package; warnings are allowed (printed), errors are not."""
    dciodvfy = shutil.which("dciodvfy")
    if dciodvfy is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) not installed: the RTSTRUCT is not checked by an "
                    "independent validator here; as root `make test` installs it, or `apt-get install dicom3tools`")
    _, image, _ = _series(tmp_path, write_dicom_series, "oblique", True)
    liver, tumour, _ = _masks()
    cases = {"lesions.dcm": (tumour, liver), "no_lesion.dcm": (np.zeros(SHAPE), liver),
             "empty.dcm": (np.zeros(SHAPE), np.zeros(SHAPE))}
    for name, (tumour_mask, liver_mask) in cases.items():
        path = write_dicom_object(build_rtstruct(make_findings(image, tumour_mask, liver_mask)), tmp_path / name)
        done = subprocess.run([dciodvfy, str(path)], check=False, capture_output=True, text=True, timeout=60)
        lines = (done.stdout + done.stderr).splitlines()
        print(f"dciodvfy {name}:", *lines, sep="\n  ")
        assert "RTStructureSet" in lines, lines  # it recognised the IOD it checked
        errors = [line for line in lines if line.startswith("Error")]
        assert errors == [], "\n".join(lines)
