"""DICOM Structured Report of the findings: a TID 1500 Measurement Report (Comprehensive 3D SR).

The report refers to the DICOM-SEG of the same findings (``io.dicomseg``) and to the source series;
its measurement groups (in this order, all measured by the algorithm "hepaseg"):

- "Liver" (TID 1411, volumetric ROI: SEG segment 1): finding Liver, its Volume in mL;
- "All lesions" (TID 1501, no single ROI: a study-level group): finding Neoplasm at the finding site
  Liver, the total tumour Volume (mL), the Volume Ratio of tumour to liver (%, the tumour burden;
  left out without a liver) and the Number of lesions;
- "Lesion n" per lesion (TID 1411: SEG segment ``n + 1``, the segment's tracking UID): finding
  Neoplasm at the finding site Liver, its Volume (mL) and its longest axial diameter ("Long axis",
  mm).

Volumes are measured by the "Sum of segmented voxel method for volume" (voxel count times voxel
volume, as ``lesions.csv``). A lesion's location is its referenced segment (voxel exact) and its finding site:
highdicom's TID 1411 group takes no spatial coordinates, so the centroid stays in ``lesions.csv``.
Without lesions the report holds the liver and "All lesions" with a count of 0 (docs/dicom.md).
"""

from __future__ import annotations

import numpy as np
from pydicom.sr.coding import Code

from .dicom_results import (
    MANUFACTURER,
    MODEL_NAME,
    Findings,
    LesionFinding,
    derived_uid,
    lesion_label,
    segment_number,
    series_attributes,
    software_version,
    source_slices,
)

LIVER_GROUP = "Liver"
ALL_LESIONS_GROUP = "All lesions"
# UCUM's milliliter, written as DICOM's own codes write it ("Bq/ml", "ml/g"); pydicom's code
# dictionary lists no plain volume in mL (only cm3, the same quantity).
MILLILITER = Code("ml", "UCUM", "milliliter")


def build_measurement_report(findings: Findings, seg, version: str = ""):
    """A TID 1500 measurement report of ``findings`` (not written; see the module docstring).

    Args:
        findings: the liver and the numbered lesions on the source series' grid.
        seg: the ``highdicom.seg.Segmentation`` that ``io.dicomseg.build_dicom_seg(findings)`` gives
            (segment 1 the liver, segment ``n + 1`` lesion n); the report references its segments.
        version: recorded as SoftwareVersions and algorithm version (default: hepaseg's).

    Returns:
        a ``highdicom.sr.Comprehensive3DSR``; ``write_dicom_object`` saves it.

    Raises:
        InputError / CannotBuild: what ``dicom_results.source_slices`` raises.
    """
    import highdicom as hd

    slices = source_slices(findings, "sr")
    version = version or software_version()
    source = findings.source_series_uid
    algorithm = hd.sr.AlgorithmIdentification(name="hepaseg", version=version)
    liver_ks, lesion_ks = _slices_of(findings)
    groups = [_liver_group(findings, _referenced_segment(seg, 1, slices, liver_ks), algorithm),
              _all_lesions_group(findings, algorithm)]
    groups += [_lesion_group(lesion, _referenced_segment(seg, segment_number(lesion.number), slices,
                                                         lesion_ks[lesion.number]), algorithm)
               for lesion in findings.table]
    report = hd.sr.MeasurementReport(observation_context=_observation_context(source),
                                     procedure_reported=_procedure(slices[0]), imaging_measurements=groups,
                                     referenced_images=slices)
    return hd.sr.Comprehensive3DSR(
        evidence=[*slices, seg],
        content=report,
        is_complete=True,
        **series_attributes(source, "sr", version),
    )


def _observation_context(source_series_uid: str):
    """The observer: the device hepaseg (a UID derived from the source series)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    device = hd.sr.DeviceObserverIdentifyingAttributes(uid=derived_uid(source_series_uid, "sr", "device"),
                                                       name="hepaseg", manufacturer_name=MANUFACTURER,
                                                       model_name=MODEL_NAME)
    observer = hd.sr.ObserverContext(observer_type=codes.DCM.Device, observer_identifying_attributes=device)
    return hd.sr.ObservationContext(observer_device_context=observer)


def _procedure(header) -> Code:
    """The procedure reported (CID 100), from the source's Modality: MRI or CT, else an imaging procedure."""
    from pydicom.sr.codedict import codes

    by_modality = {"MR": codes.cid100.MRIUnspecifiedBodyRegion, "CT": codes.cid100.CTUnspecifiedBodyRegion}
    return by_modality.get(str(header.get("Modality", "")), codes.cid100.ImagingProcedure)


def _volume(volume_ml: float):
    """A TID 300 Volume measurement in mL, by the sum of segmented voxel volumes."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.sr.Measurement(name=codes.SCT.Volume, value=float(volume_ml), unit=MILLILITER,
                             method=codes.DCM.SumOfSegmentedVoxelMethodForVolume)


def _referenced_segment(seg, number: int, slices: list, ks: list[int]):
    """SEG segment ``number`` with the source slices ``ks`` it has voxels on (its frames derive from
    them); an empty segment with the source series instead. (highdicom's
    ``ReferencedSegment.from_segmentation`` fails on a SEG of one segment, whose segment number sits in
    the shared functional groups.)"""
    import highdicom as hd

    if len(ks) == 0:
        series = hd.sr.SourceSeriesForSegmentation(str(slices[0].SeriesInstanceUID))
        return hd.sr.ReferencedSegment(sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
                                       segment_number=number, source_series=series)
    images = [hd.sr.SourceImageForSegmentation.from_source_image(slices[k]) for k in ks]
    return hd.sr.ReferencedSegment(sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
                                   segment_number=number, source_images=images)


def _slices_of(findings: Findings) -> tuple[list[int], dict[int, list[int]]]:
    """The slices k (ascending) the liver has voxels on, and those of each lesion number."""
    liver = [int(k) for k in np.flatnonzero(np.asarray(findings.liver).any(axis=(0, 1)))]
    lesions: dict[int, list[int]] = {lesion.number: [] for lesion in findings.table}
    for k in range(findings.lesions.shape[2]):
        for number in np.unique(findings.lesions[:, :, k]):
            if number:
                lesions[int(number)].append(k)
    return liver, lesions


def _liver_group(findings: Findings, segment, algorithm):
    """The liver's TID 1411 group: its SEG segment (``segment``, a ReferencedSegment) and its volume."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    tracking = hd.sr.TrackingIdentifier(uid=derived_uid(findings.source_series_uid, "liver"), identifier=LIVER_GROUP)
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, referenced_segment=segment,
        finding_category=codes.SCT.AnatomicalStructure, finding_type=codes.SCT.Liver, algorithm_id=algorithm,
        measurements=[_volume(findings.liver_volume_ml)])


def _all_lesions_group(findings: Findings, algorithm):
    """The study-level TID 1501 group: total tumour volume, tumour burden (%), number of lesions."""
    import math

    import highdicom as hd
    from pydicom.sr.codedict import codes

    measurements = [_volume(findings.tumour_volume_ml)]
    if not math.isnan(findings.tumour_burden_percent):  # no liver: no burden
        measurements.append(hd.sr.Measurement(name=codes.DCM.VolumeRatio, value=findings.tumour_burden_percent,
                                              unit=codes.UCUM.Percent))
    measurements.append(hd.sr.Measurement(name=codes.SCT.NumberOfLesions, value=len(findings.table),
                                          unit=codes.UCUM.NoUnits))
    tracking = hd.sr.TrackingIdentifier(uid=derived_uid(findings.source_series_uid, "all lesions"),
                                        identifier=ALL_LESIONS_GROUP)
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, finding_category=codes.SCT.MorphologicallyAbnormalStructure,
        finding_type=codes.SCT.Neoplasm, finding_sites=[hd.sr.FindingSite(codes.SCT.Liver)],
        algorithm_id=algorithm, measurements=measurements)


def _lesion_group(lesion: LesionFinding, segment, algorithm):
    """Lesion ``lesion.number``'s TID 1411 group: its SEG segment (``segment``), volume and longest axial
    diameter."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    tracking = hd.sr.TrackingIdentifier(uid=lesion.tracking_uid, identifier=lesion_label(lesion.number))
    diameter = hd.sr.Measurement(name=codes.SCT.LongAxis, value=float(lesion.diameter_mm),
                                 unit=codes.UCUM.Millimeter)
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, referenced_segment=segment,
        finding_category=codes.SCT.MorphologicallyAbnormalStructure, finding_type=codes.SCT.Neoplasm,
        finding_sites=[hd.sr.FindingSite(codes.SCT.Liver)], algorithm_id=algorithm,
        measurements=[_volume(lesion.volume_ml), diameter])
