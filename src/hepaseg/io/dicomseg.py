"""DICOM-SEG of the findings: the liver and one segment per lesion, referencing the source series.

The masks are on the grid ``volumes.read_volume`` gives the series: axis i along the rows' direction
(DICOM columns), j along the columns' direction (DICOM rows), k across slices; frame ``f`` of the
segmentation is derived from, and references, source slice ``f`` (``dicom_results.source_slices``
checks that each slice lies on its k). One BINARY SEG, coded with SNOMED CT: segment 1 "Liver"
(Anatomical Structure / Liver, the liver mask the prediction used, lesions included) and segment
``n + 1`` "Lesion n" for lesion n (Morphologically Abnormal Structure / Neoplasm, anatomic region
Liver, tracking ID "Lesion n" and the lesion's tracking UID), all AUTOMATIC by the algorithm
"hepaseg". Without lesions the SEG holds the liver alone. A segment's empty frames are omitted
(highdicom's default).
"""

from __future__ import annotations

import numpy as np

from .dicom_results import (
    Findings,
    lesion_label,
    segment_number,
    series_attributes,
    software_version,
    source_slices,
)

LIVER_LABEL = "Liver"  # segment 1


def build_dicom_seg(findings: Findings, version: str = ""):
    """A binary DICOM-SEG dataset of ``findings`` (not written; see the module docstring).

    Args:
        findings: the liver and the numbered lesions on the source series' grid.
        version: recorded as SoftwareVersions and algorithm version (default: hepaseg's).

    Returns:
        a ``highdicom.seg.Segmentation``; ``write_dicom_object`` saves it.

    Raises:
        InputError / CannotBuild: what ``dicom_results.source_slices`` raises.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    slices = source_slices(findings, "seg")
    version = version or software_version()
    algorithm = hd.AlgorithmIdentificationSequence(name="hepaseg", family=codes.cid7162.ArtificialIntelligence,
                                                   version=version)
    automatic = hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    descriptions = [hd.seg.SegmentDescription(
        segment_number=1, segment_label=LIVER_LABEL, segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=codes.SCT.Liver, algorithm_type=automatic, algorithm_identification=algorithm)]
    for lesion in findings.table:
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=segment_number(lesion.number), segment_label=lesion_label(lesion.number),
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm, algorithm_type=automatic, algorithm_identification=algorithm,
            anatomic_regions=[codes.SCT.Liver], tracking_id=lesion_label(lesion.number),
            tracking_uid=lesion.tracking_uid))
    return hd.seg.Segmentation(
        source_images=slices,
        pixel_array=_frames(findings),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        **series_attributes(findings.source_series_uid, "seg", version),
    )


def _frames(findings: Findings) -> np.ndarray:
    """(frames, rows, columns, segments) bool: frame k is source slice k transposed to DICOM rows x
    columns; segment 1 the liver, segment n + 1 lesion n."""
    liver = np.asarray(findings.liver, dtype=bool)
    lesions = np.asarray(findings.lesions)
    if liver.shape != findings.image.shape or lesions.shape != findings.image.shape:
        raise ValueError(f"masks of shapes {liver.shape} / {lesions.shape} differ in shape from the image "
                         f"{findings.image.shape}")
    from scipy import ndimage

    out = np.zeros((liver.shape[2], liver.shape[1], liver.shape[0], 1 + len(findings.table)), dtype=bool)
    out[..., 0] = liver.transpose(2, 1, 0)
    boxes = ndimage.find_objects(lesions, max_label=len(findings.table))
    for lesion in findings.table:  # each lesion within its bounding box (i, j, k) -> (k, j, i)
        box = boxes[lesion.number - 1]
        if box is not None:
            out[box[2], box[1], box[0], segment_number(lesion.number) - 1] = \
                (lesions[box] == lesion.number).transpose(2, 1, 0)
    return out
