"""RT Structure Set of the findings: the liver and each lesion as an ROI of planar contours.

SIRT dosimetry and radiotherapy planning systems import RTSTRUCT, not SEG. ROI 1 is "Liver" (RT ROI
Interpreted Type ORGAN, SNOMED CT Anatomical Structure / Liver), ROI ``n + 1`` "Lesion n" (GTV,
Morphologically Abnormal Structure / Neoplasm, anatomic region Liver); the ROI numbers equal the
SEG's segment numbers. The RT Structure Set has no Tracking ID / UID attribute, so the lesion's
tracking UID is written in its ROI Description ("Lesion n, tracking UID <uid>"); its ROI Name is
the tracking ID. ROI Volume is the mask's volume (cm3 = mL, as ``lesions.csv``).

Contours: per source slice k, the boundary of the mask's slice ``[:, :, k]`` at level 0.5
(``skimage.measure.find_contours``: through the midpoints between voxel centres inside and outside,
so a voxel centre is inside a contour exactly where the mask is set), collinear points dropped;
one CLOSED_PLANAR contour per boundary, a contour inside another being a hole by the even-odd
(XOR) rule most readers apply (one that takes holes only cut by the keyhole technique shows them
filled). A point at voxel (i, j) of slice k is that slice's ImagePositionPatient + i x column
spacing x row direction + j x row spacing x column direction (axis i runs along DICOM columns, j
along rows), so every point lies on its slice's plane; each contour references its slice's SOP
Instance UID. Without lesions the set holds the liver; an
empty liver is an ROI without contours.

Built on highdicom's ``SOPClass`` (patient, study, series, equipment, SOP common) and pydicom
datasets for the structure-set modules. rt-utils 1.2.7 (last release 2023) was tried and not used:
it scales a contour's row and column offsets by each other's pixel spacing (qurit/rt-utils#92,
open), so contours of non-square pixels come out distorted; its read-back masks are (columns,
rows) (#88); and its contours run through the boundary voxels' centres, half a voxel inside the
mask's border.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .dicom_results import (
    MANUFACTURER,
    MODEL_NAME,
    SERIES_NUMBERS,
    Findings,
    instance_uid,
    lesion_label,
    segment_number,
    series_description,
    series_uid,
    software_version,
    source_slices,
)

if TYPE_CHECKING:
    from pydicom.sr.coding import Code

LIVER_LABEL = "Liver"  # ROI 1
STRUCTURE_SET_LABEL = "hepaseg"
LIVER_COLOUR = (221, 130, 101)  # 3D Slicer's liver
LESION_COLOURS = ((255, 255, 0), (0, 200, 255), (255, 0, 255), (0, 255, 0), (255, 128, 0), (255, 0, 0))
COLLINEAR_TOL = 1e-6  # voxels^2: a contour point whose neighbours' directions cross by less is dropped
# the Referenced SOP Class of a study in the RT Referenced Study Sequence (Study Component Management)
STUDY_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"


def build_rtstruct(findings: Findings, version: str = ""):
    """An RT Structure Set dataset of ``findings`` (not written; see the module docstring).

    Args:
        findings: the liver and the numbered lesions on the source series' grid.
        version: recorded as SoftwareVersions and algorithm version (default: hepaseg's).

    Returns:
        a ``highdicom.SOPClass`` (a pydicom Dataset); ``write_dicom_object`` saves it.

    Raises:
        InputError / CannotBuild: what ``dicom_results.source_slices`` raises; ValueError for masks
            of another shape than the image.
    """
    import datetime

    import highdicom as hd
    from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage

    slices = source_slices(findings, "rtstruct")
    version = version or software_version()
    _check_shapes(findings)
    first, source = slices[0], findings.source_series_uid
    ds = hd.SOPClass(
        study_instance_uid=first.StudyInstanceUID, series_instance_uid=series_uid(source, "rtstruct"),
        series_number=SERIES_NUMBERS["rtstruct"], sop_instance_uid=instance_uid(source, "rtstruct"),
        sop_class_uid=RTStructureSetStorage, instance_number=1, modality="RTSTRUCT", manufacturer=MANUFACTURER,
        transfer_syntax_uid=ExplicitVRLittleEndian,
        patient_id=first.PatientID, patient_name=first.PatientName, patient_birth_date=first.PatientBirthDate,
        patient_sex=first.PatientSex, accession_number=first.AccessionNumber, study_id=first.StudyID,
        study_date=first.StudyDate, study_time=first.StudyTime, referring_physician_name=first.ReferringPhysicianName,
        series_description=series_description("rtstruct"), manufacturer_model_name=MODEL_NAME,
        software_versions=version, device_serial_number="none",
        specific_character_set=first.get("SpecificCharacterSet"))
    now = datetime.datetime.now()
    ds.OperatorsName = None  # RT Series, type 2
    ds.FrameOfReferenceUID = first.FrameOfReferenceUID
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator")
    ds.StructureSetLabel = STRUCTURE_SET_LABEL
    ds.StructureSetDate, ds.StructureSetTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.ReferencedFrameOfReferenceSequence = [_frame_of_reference(slices)]
    rois = _rois(findings)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="hepaseg", family=_codes().cid7162.ArtificialIntelligence, version=version)
    ds.StructureSetROISequence = [_structure_set_roi(roi, first.FrameOfReferenceUID, algorithm) for roi in rois]
    ds.ROIContourSequence = [_roi_contour(roi, slices) for roi in rois]
    ds.RTROIObservationsSequence = [_observation(roi) for roi in rois]
    return ds


@dataclass(frozen=True)
class _Roi:
    """One ROI: its number, name, description, colour, interpreted type, SNOMED CT codes (category,
    type, anatomic regions), volume (mL), and its (i, j, k) bool mask within its bounding box
    ``box`` of the image (None where the mask is empty)."""

    number: int
    name: str
    description: str
    colour: tuple[int, int, int]
    interpreted: str
    category: Code
    kind: Code
    regions: tuple[Code, ...]
    volume_ml: float
    box: tuple[slice, slice, slice] | None
    mask: NDArray[np.bool_]


def _codes():
    from pydicom.sr.codedict import codes

    return codes


def _rois(findings: Findings) -> list[_Roi]:
    """The liver (ROI 1) and lesion n (ROI n + 1), each with its mask cropped to its box."""
    from scipy import ndimage

    sct = _codes().SCT
    liver = np.asarray(findings.liver, dtype=bool)
    liver_box = (ndimage.find_objects(liver.astype(np.uint8)) or [None])[0]
    rois = [_Roi(1, LIVER_LABEL, "liver (lesions included)", LIVER_COLOUR, "ORGAN", sct.AnatomicalStructure,
                 sct.Liver, (), findings.liver_volume_ml, liver_box, liver[liver_box] if liver_box else liver)]
    lesions = np.asarray(findings.lesions)
    boxes = ndimage.find_objects(lesions)
    for lesion in findings.table:
        label, box = lesion_label(lesion.number), boxes[lesion.number - 1]
        rois.append(_Roi(segment_number(lesion.number), label, f"{label}, tracking UID {lesion.tracking_uid}",
                         LESION_COLOURS[(lesion.number - 1) % len(LESION_COLOURS)], "GTV",
                         sct.MorphologicallyAbnormalStructure, sct.Neoplasm, (sct.Liver,), lesion.volume_ml, box,
                         lesions[box] == lesion.number))
    return rois


def _check_shapes(findings: Findings) -> None:
    shape = findings.image.shape
    if np.shape(findings.liver) != shape or np.shape(findings.lesions) != shape:
        raise ValueError(f"masks of shapes {np.shape(findings.liver)} / {np.shape(findings.lesions)} differ in "
                         f"shape from the image {shape}")


def _image_reference(ds):
    """A Contour Image Sequence item referencing source slice ``ds``."""
    from pydicom import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    return item


def _frame_of_reference(slices: Sequence):
    """The Referenced Frame of Reference item: the source's frame, study, series and every slice."""
    from pydicom import Dataset

    first = slices[0]
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = [_image_reference(ds) for ds in slices]
    study = Dataset()
    study.ReferencedSOPClassUID, study.ReferencedSOPInstanceUID = STUDY_SOP_CLASS, first.StudyInstanceUID
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame.RTReferencedStudySequence = [study]
    return frame


def _structure_set_roi(roi: _Roi, frame_uid: str, algorithm):
    from pydicom import Dataset

    item = Dataset()
    item.ROINumber, item.ReferencedFrameOfReferenceUID, item.ROIName = roi.number, frame_uid, roi.name
    item.ROIDescription = roi.description
    item.ROIVolume = f"{roi.volume_ml:.6g}"  # cm3
    item.ROIGenerationAlgorithm = "AUTOMATIC"
    item.ROIDerivationAlgorithmIdentificationSequence = algorithm
    return item


def _observation(roi: _Roi):
    """The RT ROI Observations item: interpreted type and SNOMED CT codes of ``roi``."""
    import highdicom as hd
    from pydicom import Dataset

    item = Dataset()
    item.ObservationNumber, item.ReferencedROINumber = roi.number, roi.number
    item.SegmentedPropertyCategoryCodeSequence = [hd.sr.CodedConcept.from_code(roi.category)]
    item.RTROIIdentificationCodeSequence = [hd.sr.CodedConcept.from_code(roi.kind)]
    if roi.regions:
        item.AnatomicRegionSequence = [hd.sr.CodedConcept.from_code(code) for code in roi.regions]
    item.RTROIInterpretedType, item.ROIInterpreter = roi.interpreted, None
    return item


def _roi_contour(roi: _Roi, slices: Sequence):
    """The ROI Contour item: the colour and the contours of ``roi`` on every slice it covers."""
    from pydicom import Dataset

    item = Dataset()
    item.ReferencedROINumber, item.ROIDisplayColor = roi.number, list(roi.colour)
    contours = []
    if roi.box is not None:
        box_i, box_j, box_k = roi.box
        for k in range(box_k.start, box_k.stop):
            for points in plane_contours(roi.mask[:, :, k - box_k.start]):
                contours.append(_contour(len(contours) + 1, slices[k], points + (box_i.start, box_j.start)))
    if contours:
        item.ContourSequence = contours
    return item


def plane_contours(plane: NDArray[np.bool_]) -> list[NDArray[np.float64]]:
    """The closed boundaries of a 2D (i, j) mask at level 0.5, each an (n, 2) array of (i, j) voxel
    coordinates, the first point not repeated and points on the line through their neighbours
    dropped; empty for an empty plane."""
    from skimage import measure

    if not plane.any():
        return []
    padded = np.pad(plane, 1).astype(np.float32)
    return [_corners(contour[:-1]) - 1.0 for contour in measure.find_contours(padded, 0.5)]


def _corners(ring: NDArray[np.float64]) -> NDArray[np.float64]:
    """The points of a closed (n, 2) polygon where it turns (its straight runs' inner points dropped)."""
    before, after = ring - np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0) - ring
    turn = np.abs(before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0])
    return ring[turn > COLLINEAR_TOL]


def patient_points(ds, points: NDArray[np.float64]) -> NDArray[np.float64]:
    """(n, 3) LPS patient coordinates (mm) of (n, 2) (i, j) voxel coordinates on slice ``ds``."""
    orientation = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    along_i, along_j = orientation[:3] * column_spacing, orientation[3:] * row_spacing
    return np.asarray(ds.ImagePositionPatient, dtype=np.float64) + points[:, :1] * along_i + points[:, 1:] * along_j


def _contour(number: int, ds, points: NDArray[np.float64]):
    """A CLOSED_PLANAR Contour Sequence item of (n, 2) (i, j) ``points`` on slice ``ds``."""
    from pydicom import DataElement, Dataset, config

    item = Dataset()
    item.ContourNumber = number
    item.ContourImageSequence = [_image_reference(ds)]
    item.ContourGeometricType = "CLOSED_PLANAR"
    item.NumberOfContourPoints = len(points)
    # 4 decimals (at most 16 characters for |x| < 1e10 mm), written as given (the values are valid DS)
    item.add(DataElement(0x30060050, "DS", [f"{v:.4f}" for v in patient_points(ds, points).ravel()],
                         validation_mode=config.IGNORE))  # Contour Data
    return item
