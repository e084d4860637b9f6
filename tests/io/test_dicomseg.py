"""DICOM-SEG (``io.dicomseg``) on a real pydicom-written series: two SNOMED-coded segments read back
with highdicom, every frame equal to its slice of the masks, and Debian's independent validator
``dciodvfy`` (package dicom3tools) finding no error.

The expected slice of each source file is known from how the fixture wrote it (file ``s<k>.dcm``
is slice k), not from the volume's source headers (``Volume.dicom_source``) the SEG is built from.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest

from hepaseg.errors import InputError
from hepaseg.inference.dicom_outputs import make_findings
from hepaseg.io.dicom_results import tracking_uid, write_dicom_object
from hepaseg.io.dicomseg import build_dicom_seg
from hepaseg.io.volumes import read_volume

from ..dciodvfy import assert_valid


def _seg(tumour, liver, image):
    """The SEG of a tumour and a liver mask on ``image``'s grid (lesions numbered as lesions.csv)."""
    return build_dicom_seg(make_findings(image, tumour, liver))


SHAPE = (24, 20, 6)
SCT = "SCT"


def _series(tmp_path, write_dicom_series):
    """A 24 x 20 x 6 series (columns flipped, so i runs right to left) with a liver of a different
    outline on slices 1-4 and a tumour on slices 2-3; returns (folder, image volume, liver, tumour)."""
    liver = np.zeros(SHAPE, np.uint8)
    for k in range(1, 5):
        liver[4:14 + 2 * k, 3:16 - k, k] = 1
    tumour = np.zeros(SHAPE, np.uint8)
    tumour[8:12, 6:10, 2] = 1
    tumour[9:11, 6:8, 3] = 1
    image = (np.where(liver > 0, 900, 300) - 500 * tumour.astype(int)).astype(np.int16)
    folder = tmp_path / "series"
    expected = write_dicom_series(folder, image, (1.2, 1.1, 3.0), (40.0, -30.0, 10.0), (-1.0, 0.0, 0.0),
                                  (0.0, 1.0, 0.0))
    image = read_volume(folder)
    np.testing.assert_allclose(image.affine, expected, atol=1e-4)
    return folder, image, liver, tumour


def _files_by_slice(folder):
    return {int(p.stem[1:]): pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.glob("s*.dcm"))}


def _codes(item):
    return (str(item.CodeValue), str(item.CodingSchemeDesignator), str(item.CodeMeaning))


def test_two_coded_segments_reading_back_equal_to_the_masks_on_their_frames(tmp_path, write_dicom_series):
    import highdicom as hd

    folder, image, liver, tumour = _series(tmp_path, write_dicom_series)
    path = write_dicom_object(_seg(tumour, liver, image), tmp_path / "seg.dcm")
    seg = hd.seg.segread(path)
    sources = _files_by_slice(folder)
    first = sources[0]

    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert (seg.StudyInstanceUID, seg.FrameOfReferenceUID, seg.PatientID) == (
        first.StudyInstanceUID, first.FrameOfReferenceUID, first.PatientID)
    assert [str(s.SeriesInstanceUID) for s in seg.ReferencedSeriesSequence] == [first.SeriesInstanceUID]
    referenced = {str(i.ReferencedSOPInstanceUID) for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {str(ds.SOPInstanceUID) for ds in sources.values()}

    liver_segment, tumour_segment = (seg.get_segment_description(n) for n in (1, 2))
    # the tumour is one 26-connected lesion (slices 2 and 3 overlap): segment 2 is lesion 1
    assert [seg.get_segment_description(n).segment_label for n in seg.get_segment_numbers()] == ["Liver", "Lesion 1"]
    assert tumour_segment.tracking_id == "Lesion 1" and tumour_segment.tracking_uid == tracking_uid(
        str(first.SeriesInstanceUID), 1)
    assert liver_segment.tracking_uid is None
    assert _codes(liver_segment.segmented_property_category) == ("91723000", SCT, "Anatomical Structure")
    assert _codes(liver_segment.segmented_property_type) == ("10200004", SCT, "Liver")
    assert _codes(tumour_segment.segmented_property_category) == ("49755003", SCT, "Morphologically Abnormal Structure")
    assert _codes(tumour_segment.segmented_property_type) == ("108369006", SCT, "Neoplasm")
    assert [_codes(c) for c in tumour_segment.anatomic_regions] == [("10200004", SCT, "Liver")]
    for segment in (liver_segment, tumour_segment):
        assert segment.SegmentAlgorithmType == "AUTOMATIC"
        assert segment.algorithm_identification[0].AlgorithmName == "hepaseg"

    uids = [str(sources[k].SOPInstanceUID) for k in range(SHAPE[2])]
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[1, 2], assert_missing_frames_are_empty=True)
    assert pixels.shape == (SHAPE[2], SHAPE[1], SHAPE[0], 2)
    for k in range(SHAPE[2]):
        np.testing.assert_array_equal(pixels[k, :, :, 0], liver[:, :, k].T)
        np.testing.assert_array_equal(pixels[k, :, :, 1], tumour[:, :, k].T)

    # every frame sits on its source slice and carries one segment; empty frames are left out
    per_segment: dict[int, set[int]] = {1: set(), 2: set()}
    uid_to_k = {uid: k for k, uid in enumerate(uids)}
    for item in seg.PerFrameFunctionalGroupsSequence:
        k = uid_to_k[item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        np.testing.assert_allclose(item.PlanePositionSequence[0].ImagePositionPatient,
                                   sources[k].ImagePositionPatient, atol=1e-3)
        per_segment[int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)].add(k)
    assert per_segment == {1: {1, 2, 3, 4}, 2: {2, 3}}


def test_no_tumour_gives_the_liver_segment_alone(tmp_path, write_dicom_series):
    import highdicom as hd

    folder, image, liver, _ = _series(tmp_path, write_dicom_series)
    seg = hd.seg.segread(write_dicom_object(_seg(np.zeros(SHAPE), liver, image), tmp_path / "s.dcm"))
    assert seg.number_of_segments == 1
    uids = [str(ds.SOPInstanceUID) for _, ds in sorted(_files_by_slice(folder).items())]
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[1], assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(pixels[..., 0], liver.transpose(2, 1, 0))


def test_a_slice_off_the_grid_and_masks_of_another_shape_are_refused(tmp_path, write_dicom_series):
    _, image, liver, tumour = _series(tmp_path, write_dicom_series)
    with pytest.raises(ValueError, match="differ in shape"):
        _seg(tumour[:, :, :5], liver, image)
    shifted = image.affine.copy()
    shifted[:3, 3] += 0.5 * image.affine[:3, 2]  # half a slice
    with pytest.raises(InputError, match="off the series grid"):
        _seg(tumour, liver, dataclasses.replace(image, affine=shifted))


def test_dciodvfy_finds_no_error_in_the_seg(tmp_path, write_dicom_series):
    _, image, liver, tumour = _series(tmp_path, write_dicom_series)
    for name, mask in (("seg.dcm", tumour), ("no_tumour.dcm", np.zeros(SHAPE))):
        assert_valid(write_dicom_object(_seg(mask, liver, image), tmp_path / name), "Segmentation")


@pytest.mark.parametrize("row_cos, col_cos", [((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),  # RAS affine det +1
                                              ((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),  # columns flipped: det -1
                                              ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),  # slices run head to feet
                                              ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0))])  # coronal
def test_segments_read_back_equal_the_masks_for_every_orientation(tmp_path, write_dicom_series, row_cos, col_cos):
    """Lesion n's segment, read back onto the source instances in the order of their positions along
    the slice normal (worked out here from the files), equals lesion n of the mask voxel for voxel."""
    import highdicom as hd

    tumour = np.zeros(SHAPE, np.uint8)
    tumour[2:6, 3:6, 1:3] = 1  # 24 voxels: lesion 1
    tumour[15:17, 12:14, 4] = 1  # 4 voxels: lesion 2
    liver = np.zeros(SHAPE, np.uint8)
    liver[1:20, 2:16, 1:5] = 1
    affine = write_dicom_series(tmp_path / "s", (300 + 500 * liver.astype(np.int16)).astype(np.int16), (1.2, 1.1, 3.0),
                                (10.0, -20.0, 30.0), row_cos, col_cos)
    image = read_volume(tmp_path / "s")
    np.testing.assert_allclose(image.affine, affine, atol=1e-4)
    normal = np.cross(row_cos, col_cos)
    files = sorted((pydicom.dcmread(p) for p in (tmp_path / "s").iterdir()),
                   key=lambda ds: float(np.dot(ds.ImagePositionPatient, normal)))
    seg = hd.seg.segread(write_dicom_object(_seg(tumour, liver, image), tmp_path / "seg.dcm"))
    pixels = seg.get_pixels_by_source_instance([str(ds.SOPInstanceUID) for ds in files], segment_numbers=[1, 2, 3],
                                               assert_missing_frames_are_empty=True).transpose(2, 1, 0, 3)
    lesion_1 = np.zeros(SHAPE, bool)
    lesion_1[2:6, 3:6, 1:3] = True
    lesion_2 = np.zeros(SHAPE, bool)
    lesion_2[15:17, 12:14, 4] = True
    for segment, mask in enumerate((liver > 0, lesion_1, lesion_2)):
        np.testing.assert_array_equal(pixels[..., segment], mask)
