"""DICOM-SEG of a prediction, referencing the DICOM series it was predicted on.

The masks are on the grid ``volumes.read_volume`` gives the series: axis i along the rows' direction
(DICOM columns), j along the columns' direction (DICOM rows), k across slices. The source slices are
the volume's own headers (``Volume.dicom_source``, read once with the volume, in k order); each
one's ImagePositionPatient is checked to lie on its k (through the volume's affine), so frame ``f``
of the segmentation is derived from, and references, exactly the slice it lies on. One BINARY SEG with
two segments, coded with SNOMED CT: 1 "Liver" (the liver mask the prediction used; Anatomical
Structure / Liver) and 2 "Neoplasm" (the tumour mask; Morphologically Abnormal Structure /
Neoplasm, anatomic region Liver), both AUTOMATIC by the algorithm "hepaseg". A segment's empty
frames are omitted (highdicom's default; all frames are kept when both masks are empty).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .atomic import atomic_path
from .volumes import LPS_TO_RAS, Volume

if TYPE_CHECKING:
    from pydicom import Dataset

POSITION_TOL_VOXELS = 0.05  # how far a slice's position may sit from a voxel centre
# Type-2 patient / study attributes highdicom copies from the source; anonymised series may lack them.
_TYPE2 = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
          "StudyDate", "StudyTime", "ReferringPhysicianName")


def source_slices(image: Volume) -> list[Dataset]:
    """The headers of ``image``'s slices in k order (``Volume.dicom_source``), checked against its
    grid: header k's ImagePositionPatient must be the centre of voxel (0, 0, k). Where type-2
    patient / study attributes are missing, a copy gets them empty (the volume's headers stay as read).

    Raises:
        InputError: naming the image: no DICOM source (not read from a DICOM folder), an enhanced
            (multi-frame) source, a header count other than the slice count, a slice off the grid.
    """
    headers = image.dicom_source
    if headers is None:
        raise InputError(image.source, "DICOM-SEG needs an image read from a DICOM series folder; this "
                                       "volume has no DICOM source (write NIfTI or NRRD instead)")
    if len(headers) == 1 and int(headers[0].get("NumberOfFrames", 1) or 1) > 1:
        raise InputError(image.source, "DICOM-SEG of an enhanced (multi-frame) source is not supported; "
                                       "write NIfTI or NRRD instead (-o FILE.nii.gz)")
    if len(headers) != image.shape[2]:
        raise InputError(image.source, f"{len(headers)} DICOM headers for {image.shape[2]} slices")
    to_index = np.linalg.inv(np.asarray(image.affine, dtype=np.float64))
    slices = []
    for k, ds in enumerate(headers):
        ras = LPS_TO_RAS[:3, :3] @ np.asarray(ds.ImagePositionPatient, dtype=np.float64)
        ijk = to_index[:3, :3] @ ras + to_index[:3, 3]
        if np.max(np.abs(ijk - [0, 0, k])) > POSITION_TOL_VOXELS:
            raise InputError(image.source, f"slice {k}'s position {np.round(ijk, 2).tolist()} (voxels) is off "
                                           "the series grid")
        slices.append(_with_type2(ds))
    return slices


def _with_type2(ds: Dataset) -> Dataset:
    """``ds`` itself, or a copy with the type-2 attributes it lacks (``_TYPE2``) present and empty."""
    import copy

    missing = [keyword for keyword in _TYPE2 if keyword not in ds]
    if not missing:
        return ds
    ds = copy.deepcopy(ds)
    for keyword in missing:
        setattr(ds, keyword, None)
    return ds


SEGMENT_LABELS = ("Liver", "Neoplasm")  # segment numbers 1 and 2


def build_dicom_seg(tumour: NDArray, liver: NDArray, image: Volume, series_number: int = 100,
                    software_version: str = ""):
    """A binary DICOM-SEG dataset of the liver and tumour masks referencing the DICOM series
    ``image`` was read from (not written; see the module docstring).

    Args:
        tumour: (i, j, k) binary tumour mask on ``image``'s grid.
        liver: (i, j, k) binary liver mask on the same grid (the one the prediction used).
        image: the source volume, as ``read_volume`` gave it for a DICOM folder (its ``dicom_source``).
        series_number: SeriesNumber of the new segmentation series.
        software_version: recorded as SoftwareVersions and algorithm version (default: hepaseg's).

    Returns:
        a ``highdicom.seg.Segmentation``; ``write_dicom_seg`` saves it.

    Raises:
        InputError: no DICOM source, or one that does not match the grid (``source_slices``);
            ValueError: masks of another shape.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    masks = [np.asarray(m) > 0 for m in (liver, tumour)]  # segment 1, segment 2
    if masks[0].shape != masks[1].shape:
        raise ValueError(f"liver mask {masks[0].shape} and tumour mask {masks[1].shape} differ in shape")
    if masks[0].shape != image.shape:
        raise ValueError(f"masks of shape {masks[0].shape} differ in shape from the image {image.shape}")
    slices = source_slices(image)
    # (frames, rows, cols, segments): frame k is source slice k, transposed to DICOM rows x columns
    frames = np.stack([np.stack([m[:, :, k].T for m in masks], axis=-1) for k in range(len(slices))]).astype(np.uint8)
    version = software_version or _version()
    algorithm = hd.AlgorithmIdentificationSequence(name="hepaseg", family=codes.cid7162.ArtificialIntelligence,
                                                   version=version)
    automatic = hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=1, segment_label=SEGMENT_LABELS[0], segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=codes.SCT.Liver, algorithm_type=automatic, algorithm_identification=algorithm),
        hd.seg.SegmentDescription(
            segment_number=2, segment_label=SEGMENT_LABELS[1],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm, algorithm_type=automatic, algorithm_identification=algorithm,
            anatomic_regions=[codes.SCT.Liver]),
    ]
    return hd.seg.Segmentation(
        source_images=slices,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="hepaseg",
        manufacturer_model_name="hepaseg aU-Net",
        software_versions=version,
        device_serial_number="none",
        series_description="liver and tumour (hepaseg)",
    )


def write_dicom_seg(seg, path: str | Path) -> Path:
    """Save a dataset from ``build_dicom_seg`` to ``path`` atomically."""
    out = Path(path)
    with atomic_path(out) as tmp:
        seg.save_as(tmp)
    return out


def _version() -> str:
    from ..version import __version__

    return __version__
