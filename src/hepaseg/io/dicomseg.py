"""DICOM-SEG of a prediction, referencing the DICOM series it was predicted on.

The masks are on the grid ``volumes.read_volume`` gives the series: axis i along the rows' direction
(DICOM columns), j along the columns' direction (DICOM rows), k across slices. Each source slice
is matched to its k by its ImagePositionPatient (through the volume's affine), so frame ``f`` of
the segmentation is derived from, and references, exactly the slice it lies on. One BINARY SEG with
two segments, coded with SNOMED CT: 1 "Liver" (the liver mask the prediction used; Anatomical
Structure / Liver) and 2 "Neoplasm" (the tumour mask; Morphologically Abnormal Structure /
Neoplasm, anatomic region Liver), both AUTOMATIC by the algorithm "hepaseg". A segment's empty
frames are omitted (highdicom's default; all frames are kept when both masks are empty).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .atomic import atomic_path
from .volumes import LPS_TO_RAS, Affine

POSITION_TOL_VOXELS = 0.05  # how far a slice's position may sit from a voxel centre
# Type-2 patient / study attributes highdicom copies from the source; anonymised series may lack them.
_TYPE2 = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
          "StudyDate", "StudyTime", "ReferringPhysicianName")


def read_series(folder: str | Path, affine: Affine, shape: tuple[int, int, int],
                series_uid: str | None = None) -> list[tuple[int, object]]:
    """The series' datasets (headers only) with the slice index k each one lies on, sorted by k.

    Args:
        series_uid: read only this series' files (the folder may hold others); None: every file.

    Raises:
        InputError: a file does not lie on the volume's grid (another series, a localiser, ...), or
            the series is an enhanced (multi-frame) object.
    """
    import pydicom

    folder = Path(folder)
    to_index = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    matched: dict[int, object] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue
        if series_uid is not None and str(ds.get("SeriesInstanceUID", "")) != series_uid:
            continue
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise InputError(path, "DICOM-SEG of an enhanced (multi-frame) source is not supported; "
                                   "write NIfTI or NRRD instead (-o FILE.nii.gz)")
        if "ImagePositionPatient" not in ds:
            continue
        ras = LPS_TO_RAS[:3, :3] @ np.asarray(ds.ImagePositionPatient, dtype=np.float64)
        ijk = to_index[:3, :3] @ ras + to_index[:3, 3]
        k = int(round(ijk[2]))
        if np.max(np.abs(ijk - [0, 0, k])) > POSITION_TOL_VOXELS or not 0 <= k < shape[2]:
            raise InputError(path, f"slice position {np.round(ijk, 2).tolist()} (voxels) is off the series grid")
        for keyword in _TYPE2:  # in memory only; the files are never written
            if keyword not in ds:
                setattr(ds, keyword, None)
        matched[k] = ds
    missing = sorted(set(range(shape[2])) - set(matched))
    if missing:
        raise InputError(folder, f"no DICOM file for slice(s) {missing[:5]} of the series")
    return sorted(matched.items(), key=lambda item: item[0])


SEGMENT_LABELS = ("Liver", "Neoplasm")  # segment numbers 1 and 2


def build_dicom_seg(tumour: NDArray, liver: NDArray, affine: Affine, series_folder: str | Path,
                    series_number: int = 100, software_version: str = "", series_uid: str | None = None):
    """A binary DICOM-SEG dataset of the liver and tumour masks referencing the series in
    ``series_folder`` (not written; see the module docstring).

    Args:
        tumour: (i, j, k) binary tumour mask on the series' grid (as ``read_volume(series_folder)`` gives it).
        liver: (i, j, k) binary liver mask on the same grid (the one the prediction used).
        affine: that grid's (4, 4) voxel -> RAS+ mm.
        series_folder: the source DICOM series.
        series_number: SeriesNumber of the new segmentation series.
        software_version: recorded as SoftwareVersions and algorithm version (default: hepaseg's).
        series_uid: the source series' Series Instance UID, where the folder holds several.

    Returns:
        a ``highdicom.seg.Segmentation``; ``write_dicom_seg`` saves it.

    Raises:
        InputError: the series does not match the grid (``read_series``); ValueError: masks of
            another shape.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    masks = [np.asarray(m) > 0 for m in (liver, tumour)]  # segment 1, segment 2
    if masks[0].shape != masks[1].shape:
        raise ValueError(f"liver mask {masks[0].shape} and tumour mask {masks[1].shape} differ in shape")
    slices = read_series(series_folder, affine, masks[0].shape, series_uid)
    # (frames, rows, cols, segments): frame f is source slice k, transposed to DICOM rows x columns
    frames = np.stack([np.stack([m[:, :, k].T for m in masks], axis=-1) for k, _ in slices]).astype(np.uint8)
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
        source_images=[ds for _, ds in slices],
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
