"""What hepaseg's DICOM result objects (SEG, SR, RTSTRUCT, Secondary Capture) share.

``Findings`` is what they encode, on the grid ``volumes.read_volume`` gives the source series (axes
i, j, k; ``Volume.dicom_source`` its headers in k order): the liver mask, the lesions numbered 1..N
as ``lesions.csv`` numbers them (largest first: ``data.components.number_by_size``), and each
lesion's measurements. A lesion keeps one tracking identifier across the objects: its number
(``lesion_label``) and a UID derived from the source series and the number (``tracking_uid``), so
that the SEG's segment, the SR's measurement group and the RTSTRUCT's ROI of a lesion say they are
the same lesion. The SEG's segment 1 is the liver and segment ``n + 1`` lesion ``n``.

Every object is a new series of the source study (``series_uid``, ``SERIES_NUMBERS``), with the
manufacturer, model and description of ``series_attributes``; UIDs are derived from the source
series' UID, so that writing the objects again gives the same UIDs. A source series that lacks an
attribute an object needs (``missing_attributes``) gets that object skipped by the caller, with one
line naming the attribute and the series.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .atomic import atomic_path
from .volumes import LPS_TO_RAS, Volume

if TYPE_CHECKING:
    from pydicom import Dataset

OBJECTS = ("seg", "sr", "rtstruct", "sc")  # --objects; file names in OBJECT_FILES
OBJECT_FILES = {"seg": "segmentation.dcm", "sr": "report.dcm", "rtstruct": "rtstruct.dcm", "sc": "overview.dcm"}
SERIES_NUMBERS = {"seg": 9100, "sr": 9101, "rtstruct": 9102, "sc": 9103}
OBJECT_TITLES = {"seg": "liver and lesions SEG", "sr": "liver tumour measurements SR",
                 "rtstruct": "liver and lesions RTSTRUCT", "sc": "liver tumour overview"}
MANUFACTURER = "hepaseg"
MODEL_NAME = "hepaseg aU-Net"
# what each object needs of the source series: the study's, series' and instances' UIDs, and for the
# objects in patient space its Frame of Reference UID (Type 1 of the MR Image IOD, but anonymisers
# strip it; a Secondary Capture has no frame of reference)
REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
REQUIRED_IN_SPACE = ("FrameOfReferenceUID",)
IN_PATIENT_SPACE = ("seg", "sr", "rtstruct")
POSITION_TOL_VOXELS = 0.05  # how far a slice's position may sit from a voxel centre
# Type-2 patient / study attributes the objects copy from the source; anonymised series may lack them.
_TYPE2 = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
          "StudyDate", "StudyTime", "ReferringPhysicianName")


@dataclass(frozen=True)
class LesionFinding:
    """One lesion of ``Findings``: its number, tracking UID and measurements (as in ``lesions.csv``)."""

    number: int  # 1..N, largest first
    tracking_uid: str
    voxels: int
    volume_ml: float
    diameter_mm: float  # longest in-plane (axial) diameter
    centroid_ras_mm: tuple[float, float, float]  # RAS+ patient coordinates (negate x, y for DICOM's LPS)


@dataclass(frozen=True)
class Findings:
    """What the DICOM objects encode, on the grid of ``image`` (a volume read from a DICOM series).

    Attributes:
        image: the source volume; its ``dicom_source`` are the headers the objects reference.
        liver: (i, j, k) bool liver mask.
        lesions: (i, j, k) uint32 lesion numbers (0: no lesion), numbered as ``table``.
        table: one ``LesionFinding`` per lesion, number 1 first.
        liver_volume_ml: the liver mask's volume.
    """

    image: Volume
    liver: NDArray[np.bool_]
    lesions: NDArray[np.uint32]
    table: tuple[LesionFinding, ...]
    liver_volume_ml: float

    @property
    def tumour_volume_ml(self) -> float:
        return float(sum(lesion.volume_ml for lesion in self.table))

    @property
    def tumour_burden_percent(self) -> float:
        """Total tumour volume / liver volume, in percent (NaN without a liver)."""
        return 100.0 * self.tumour_volume_ml / self.liver_volume_ml if self.liver_volume_ml > 0 else float("nan")

    @property
    def source_series_uid(self) -> str:
        return str(self.headers[0].SeriesInstanceUID)

    @property
    def headers(self) -> tuple[Dataset, ...]:
        """The source headers in k order; InputError naming the image if it has none."""
        if self.image.dicom_source is None:
            raise InputError(self.image.source, "DICOM results need an image read from a DICOM series folder; "
                                                "this volume has no DICOM source (write NIfTI or NRRD instead)")
        return self.image.dicom_source


def lesion_label(number: int) -> str:
    """How every object names lesion ``number``: ``Lesion 1``, ``Lesion 2``, ...; also its tracking ID."""
    return f"Lesion {number}"


def segment_number(lesion_number: int) -> int:
    """The SEG segment of lesion ``lesion_number`` (segment 1 is the liver)."""
    return lesion_number + 1


def derived_uid(source_series_uid: str, *parts: object) -> str:
    """A UID derived from the source series' UID and ``parts`` (the same inputs, the same UID)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[source_series_uid, "hepaseg", *map(str, parts)]))


def tracking_uid(source_series_uid: str, number: int) -> str:
    """Lesion ``number``'s Tracking UID, the same in every object made from one source series."""
    return derived_uid(source_series_uid, "lesion", number)


def series_uid(source_series_uid: str, kind: str) -> str:
    """The Series Instance UID of the result object ``kind`` (one of ``OBJECTS``)."""
    return derived_uid(source_series_uid, kind, "series")


def instance_uid(source_series_uid: str, kind: str) -> str:
    """The SOP Instance UID of the result object ``kind``."""
    return derived_uid(source_series_uid, kind, "instance")


def series_description(kind: str) -> str:
    """The object's Series Description: what it is, and that it is for research use."""
    return f"hepaseg {OBJECT_TITLES[kind]} (research use only)"  # LO: at most 64 characters


def series_attributes(source_series_uid: str, kind: str, version: str) -> dict[str, object]:
    """The new series' identity as keyword arguments of a highdicom object (SEG, SR, SC): series and
    instance UIDs derived from the source series, series number, manufacturer, model, software
    version ``version``, description."""
    return {"series_instance_uid": series_uid(source_series_uid, kind), "series_number": SERIES_NUMBERS[kind],
            "sop_instance_uid": instance_uid(source_series_uid, kind), "instance_number": 1,
            "manufacturer": MANUFACTURER, "manufacturer_model_name": MODEL_NAME, "software_versions": version,
            "device_serial_number": "none", "series_description": series_description(kind)}


def software_version() -> str:
    from ..version import __version__

    return __version__


def missing_attributes(headers: tuple[Dataset, ...], kind: str) -> list[str]:
    """The attributes object ``kind`` needs (``REQUIRED``, and ``REQUIRED_IN_SPACE`` for the objects
    ``IN_PATIENT_SPACE``) that some source header lacks or leaves empty, in that order."""
    needed = REQUIRED + (REQUIRED_IN_SPACE if kind in IN_PATIENT_SPACE else ())
    return [name for name in needed if any(not str(ds.get(name, "") or "") for ds in headers)]


class CannotBuild(InputError):
    """A result object that cannot be made from the source series (e.g. it lacks a required attribute);
    the caller skips that object and writes the others."""

    def __init__(self, kind: str, series: str, reason: str) -> None:
        super().__init__(None, f"no {kind.upper()} written: the source series {series} {reason}")
        self.kind = kind


def source_slices(findings: Findings, kind: str) -> list[Dataset]:
    """The headers of ``findings.image``'s slices in k order, checked for object ``kind``: every
    attribute it needs present (``missing_attributes``), header k's ImagePositionPatient the centre of voxel (0, 0, k);
    where type-2 patient / study attributes are missing, a copy gets them empty (the volume's headers
    stay as read).

    Raises:
        InputError: naming the image: no DICOM source, an enhanced (multi-frame) source, a header
            count other than the slice count, a slice off the grid.
        CannotBuild: a required attribute is missing (naming it and the series).
    """
    image, headers = findings.image, findings.headers
    if len(headers) == 1 and int(headers[0].get("NumberOfFrames", 1) or 1) > 1:
        raise InputError(image.source, "DICOM results of an enhanced (multi-frame) source are not supported; "
                                       "write NIfTI or NRRD instead (-o FILE.nii.gz)")
    if len(headers) != image.shape[2]:
        raise InputError(image.source, f"{len(headers)} DICOM headers for {image.shape[2]} slices")
    missing = missing_attributes(headers, kind)
    if missing:
        series = str(headers[0].get("SeriesInstanceUID", "") or image.source)
        raise CannotBuild(kind, series, f"lacks {', '.join(missing)} (required by the source image's IOD and "
                                        "by the result's)")
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


def write_dicom_object(dataset: Dataset, path: str | Path) -> Path:
    """Save a DICOM dataset (a SEG, SR, RTSTRUCT or SC of this package) to ``path`` atomically."""
    out = Path(path)
    with atomic_path(out) as tmp:
        dataset.save_as(tmp)
    return out
