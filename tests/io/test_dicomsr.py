"""The TID 1500 measurement report (``io.dicomsr``) on a real pydicom-written series with three
lesions of different sizes, and one without lesions: read back with highdicom, every volume and
diameter equal to the one worked out here by hand from the voxel counts and the spacing, every
group referencing an existing SEG segment with the lesion's tracking UID, and Debian's independent
validator ``dciodvfy`` finding no error.

The source slices a group should reference are known from how the fixture wrote the series (file
``s<k>.dcm`` is slice k), not from the headers the report is built from.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from hepaseg.inference.dicom_outputs import build_object, make_findings
from hepaseg.io.dicom_results import CannotBuild, write_dicom_object
from hepaseg.io.dicomseg import build_dicom_seg
from hepaseg.io.dicomsr import build_measurement_report
from hepaseg.io.volumes import read_volume

from ..dciodvfy import assert_valid

SHAPE = (30, 24, 6)
SPACING = (1.2, 1.1, 3.0)  # mm: i (columns), j (rows), k (slices)
VOXEL_ML = 1.2 * 1.1 * 3.0 / 1000
LIVER_VOXELS = 26 * 20 * 4  # liver[2:28, 2:22, 1:5]
# lesion number: (voxels, slices, longest in-plane diameter edge to edge in mm), numbered by hand
LESIONS = {1: (6 * 4 * 2, [2, 3], math.hypot(6 * 1.2, 4 * 1.1)),  # [4:10, 4:8, 2:4]
           2: (4 * 3, [2], math.hypot(4 * 1.2, 3 * 1.1)),  # [14:18, 4:7, 2]
           3: (2 * 2, [3], math.hypot(2 * 1.2, 2 * 1.1))}  # [22:24, 15:17, 3]


def _series(tmp_path, write_dicom_series):
    """(folder, image volume, liver, tumour): the liver on slices 1-4, lesions 3, 1 and 2 (scan order
    differs from size order) at least two voxels apart."""
    liver = np.zeros(SHAPE, np.uint8)
    liver[2:28, 2:22, 1:5] = 1
    tumour = np.zeros(SHAPE, np.uint8)
    tumour[22:24, 15:17, 3] = 1
    tumour[4:10, 4:8, 2:4] = 1
    tumour[14:18, 4:7, 2] = 1
    image = (np.where(liver > 0, 900, 300) - 500 * tumour.astype(int)).astype(np.int16)
    folder = tmp_path / "series"
    write_dicom_series(folder, image, SPACING, (40.0, -30.0, 10.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    return folder, read_volume(folder), liver, tumour


def _objects(tumour, liver, image):
    """(SEG, SR) of the masks, the SR built on that SEG."""
    findings = make_findings(image, tumour, liver)
    seg = build_dicom_seg(findings)
    return seg, build_measurement_report(findings, seg)


def _read(tmp_path, sr):
    import highdicom as hd

    return hd.sr.srread(write_dicom_object(sr, tmp_path / "report.dcm"))


def _value(group, name):
    """The one measurement ``name`` of ``group``: (value, unit code value)."""
    [measurement] = group.get_measurements(name=name)
    return float(measurement.value), str(measurement.unit.value)


def _segment_reference(group):
    """(SEG SOP Instance UID, segment number, source SOP Instance UIDs) of a volumetric group."""
    item, *sources = group.referenced_segment
    ref = item.ReferencedSOPSequence[0]
    return (str(ref.ReferencedSOPInstanceUID), int(ref.ReferencedSegmentNumber),
            {str(s.ReferencedSOPSequence[0].ReferencedSOPInstanceUID) for s in sources})


def _uids_by_slice(folder):
    return {int(p.stem[1:]): str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
            for p in sorted(folder.glob("s*.dcm"))}


def test_three_lesions_read_back_with_their_volumes_diameters_and_segments(tmp_path, write_dicom_series):
    folder, image, liver, tumour = _series(tmp_path, write_dicom_series)
    seg, sr = _objects(tumour, liver, image)
    doc = _read(tmp_path, sr)
    report = doc.content
    by_slice = _uids_by_slice(folder)
    first = pydicom.dcmread(folder / "s000.dcm", stop_before_pixels=True)

    assert doc.Modality == "SR" and doc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert (doc.StudyInstanceUID, doc.PatientID, doc.PatientName) == (
        first.StudyInstanceUID, first.PatientID, first.PatientName)
    assert doc.SeriesInstanceUID not in (first.SeriesInstanceUID, seg.SeriesInstanceUID)
    assert int(doc.SeriesNumber) == 9101 and "research use" in doc.SeriesDescription
    assert doc.Manufacturer == "hepaseg" and doc.ContentDate and doc.ContentTime
    evidence = {uid for _, _, uid, _ in doc.get_evidence()}
    assert evidence == set(by_slice.values()) | {seg.SOPInstanceUID}

    groups = report.get_volumetric_roi_measurement_groups()
    assert [g.tracking_identifier for g in groups] == ["Liver", "Lesion 1", "Lesion 2", "Lesion 3"]
    liver_group, *lesion_groups = groups
    assert liver_group.finding_type == codes.SCT.Liver
    volume, unit = _value(liver_group, codes.SCT.Volume)
    assert unit == "ml" and volume == pytest.approx(LIVER_VOXELS * VOXEL_ML, rel=1e-3)
    assert _segment_reference(liver_group) == (seg.SOPInstanceUID, 1, {by_slice[k] for k in range(1, 5)})

    seg_numbers = set(seg.get_segment_numbers())
    for number, group in enumerate(lesion_groups, start=1):
        voxels, slices, diameter = LESIONS[number]
        assert group.finding_type == codes.SCT.Neoplasm
        assert [site.value for site in group.finding_sites] == [codes.SCT.Liver]
        volume, unit = _value(group, codes.SCT.Volume)
        assert unit == "ml" and volume == pytest.approx(voxels * VOXEL_ML, rel=1e-3)
        length, unit = _value(group, codes.SCT.LongAxis)
        assert unit == "mm" and length == pytest.approx(diameter, rel=1e-3)
        seg_uid, segment, sources = _segment_reference(group)
        assert seg_uid == seg.SOPInstanceUID and segment in seg_numbers
        assert sources == {by_slice[k] for k in slices}
        description = seg.get_segment_description(segment)
        assert description.segment_label == f"Lesion {number}"
        assert group.tracking_uid == description.tracking_uid

    [all_lesions] = report.get_image_measurement_groups()
    assert all_lesions.tracking_identifier == "All lesions"
    total = sum(v for v, _, _ in LESIONS.values())
    assert _value(all_lesions, codes.SCT.NumberOfLesions) == (3.0, "1")
    volume, unit = _value(all_lesions, codes.SCT.Volume)
    assert unit == "ml" and volume == pytest.approx(total * VOXEL_ML, rel=1e-3)
    burden, unit = _value(all_lesions, codes.DCM.VolumeRatio)
    assert unit == "%" and burden == pytest.approx(100 * total / LIVER_VOXELS, rel=1e-3)


def test_no_lesion_states_zero_lesions_and_the_liver_volume(tmp_path, write_dicom_series):
    _, image, liver, _ = _series(tmp_path, write_dicom_series)
    seg, sr = _objects(np.zeros(SHAPE), liver, image)
    report = _read(tmp_path, sr).content
    [liver_group] = report.get_volumetric_roi_measurement_groups()
    assert _segment_reference(liver_group)[:2] == (seg.SOPInstanceUID, 1)
    assert _value(liver_group, codes.SCT.Volume)[0] == pytest.approx(LIVER_VOXELS * VOXEL_ML, rel=1e-3)
    [all_lesions] = report.get_image_measurement_groups()
    assert _value(all_lesions, codes.SCT.NumberOfLesions)[0] == 0
    assert _value(all_lesions, codes.SCT.Volume)[0] == 0
    assert _value(all_lesions, codes.DCM.VolumeRatio)[0] == 0


def test_an_empty_liver_references_the_source_series_and_leaves_the_burden_out(tmp_path, write_dicom_series):
    folder, image, _, tumour = _series(tmp_path, write_dicom_series)
    _, sr = _objects(tumour, np.zeros(SHAPE), image)
    report = _read(tmp_path, sr).content
    liver_group = report.get_volumetric_roi_measurement_groups()[0]
    [series_item] = [item for item in liver_group.referenced_segment if item.ValueType == "UIDREF"]
    first = pydicom.dcmread(folder / "s000.dcm", stop_before_pixels=True)
    assert series_item.UID == first.SeriesInstanceUID
    [all_lesions] = report.get_image_measurement_groups()
    assert all_lesions.get_measurements(name=codes.DCM.VolumeRatio) == []


def test_build_object_gives_a_report_on_the_seg_it_gives(tmp_path, write_dicom_series):
    """Built kind by kind, the SR references the SEG written beside it (the same derived UIDs)."""
    _, image, liver, tumour = _series(tmp_path, write_dicom_series)
    findings = make_findings(image, tumour, liver)
    seg = build_object("seg", findings)
    groups = _read(tmp_path, build_object("sr", findings)).content.get_volumetric_roi_measurement_groups()
    assert [_segment_reference(group)[:2] for group in groups] == [(seg.SOPInstanceUID, n) for n in (1, 2, 3, 4)]


def test_a_source_without_a_frame_of_reference_gives_no_sr(tmp_path, write_dicom_series):
    _, image, liver, tumour = _series(tmp_path, write_dicom_series)
    headers = tuple(copy.deepcopy(ds) for ds in image.dicom_source)
    for ds in headers:
        del ds.FrameOfReferenceUID
    findings = make_findings(dataclasses.replace(image, dicom_source=headers), tumour, liver)
    with pytest.raises(CannotBuild, match="no SR written: .* lacks FrameOfReferenceUID") as raised:
        build_object("sr", findings)
    assert raised.value.kind == "sr"


def test_dciodvfy_finds_no_error_in_the_reports(tmp_path, write_dicom_series):
    _, image, liver, tumour = _series(tmp_path, write_dicom_series)
    for name, mask in (("sr.dcm", tumour), ("no_lesion.dcm", np.zeros(SHAPE))):
        assert_valid(write_dicom_object(_objects(mask, liver, image)[1], tmp_path / name), "Comprehensive3DSR")
