"""DICOM series in a folder: find them, choose one, check that its slices form one regular stack.

A folder may hold several series (a localiser, another sequence); ``choose_series`` picks the one
named by its Series Instance UID, or the only one, and refuses otherwise, listing them all. The
chosen series' files are checked before they are read: one matrix size, one slice orientation (a
tilted or non-parallel slice is refused), positions along the slice normal only (no gantry tilt),
and evenly spaced (a missing slice is refused); an enhanced (multi-frame) object's frames the same
way. ``stack_files`` returns single-frame files with their headers sorted along the slice normal
``row x column`` of ImageOrientationPatient, so that the volume's axis k runs along that normal
whatever order the files were stored in (a multi-frame object keeps its frame order, with the
matching geometry); ``io.volumes`` reads them into (i, j, k) = (column, row, slice) arrays and keeps
the headers, in that order, as the volume's ``dicom_source`` (each header is read once, here).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from pydicom import Dataset

ORIENTATION_TOL = 1e-4  # direction cosines, as io.geometry.DIRECTION_TOL
OFF_AXIS_TOL_MM = 1e-2  # slice positions off the stack's normal line, as io.geometry.ORIGIN_TOL_MM
GAP_TOL = 0.01  # relative deviation of a slice gap from the median gap (a missing slice doubles it)


@dataclass(frozen=True)
class Series:
    """One DICOM series of a folder: its UID, description, modality and headers (file, dataset)."""

    uid: str
    description: str
    modality: str
    headers: tuple[tuple[Path, Dataset], ...]

    def describe(self) -> str:
        return f"{self.uid} ({self.description or 'no description'}, {self.modality or '?'}, {len(self.headers)} files)"


def list_series(folder: str | Path) -> list[Series]:
    """Every series in ``folder`` (its files only, not sub-folders), by UID; non-DICOM files are ignored."""
    import pydicom

    found: dict[str, list[tuple[Path, Dataset]]] = {}
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (pydicom.errors.InvalidDicomError, OSError):
            continue
        if "SeriesInstanceUID" in ds:
            found.setdefault(str(ds.SeriesInstanceUID), []).append((path, ds))
    return [Series(uid, str(headers[0][1].get("SeriesDescription", "")), str(headers[0][1].get("Modality", "")),
                   tuple(headers)) for uid, headers in found.items()]


def choose_series(folder: str | Path, uid: str | None = None) -> Series:
    """The series of ``folder`` named by ``uid``, or its only series.

    Raises:
        InputError: no series, ``uid`` not among them, or several and no ``uid`` (each one listed).
    """
    series = list_series(folder)
    if not series:
        raise InputError(folder, "folder holds no DICOM series")
    listing = "; ".join(s.describe() for s in series)
    if uid is not None:
        for s in series:
            if s.uid == uid:
                return s
        raise InputError(folder, f"no DICOM series {uid} in the folder (it holds: {listing})")
    if len(series) > 1:
        raise InputError(folder, f"folder holds {len(series)} DICOM series: {listing}; choose one "
                                 "(--series UID, or \"series\" in the manifest)")
    return series[0]


def stack_files(folder: str | Path, series: Series) -> list[tuple[Path, Dataset]]:
    """The series' (file, header) pairs sorted along the slice normal, after checking they form one
    regular stack.

    An enhanced (multi-frame) object is one file: its frames are checked the same way (SimpleITK
    reads such a file as a 3D volume, k in frame order, with the frames' geometry).

    Raises:
        InputError: naming ``folder``: several multi-frame objects, mixed matrix sizes, slice
            orientations that differ, positions off the normal line, two slices at one position,
            uneven spacing, a file without position or orientation.
    """
    headers = series.headers
    multi = [path for path, ds in headers if int(ds.get("NumberOfFrames", 1) or 1) > 1]
    if multi and len(headers) > 1:
        raise InputError(folder, f"series {series.uid} has {len(headers)} files, {len(multi)} of them "
                                 "multi-frame; hepaseg reads one enhanced (multi-frame) object or single frames")
    sizes = Counter(f"{ds.get('Rows')}x{ds.get('Columns')}" for _, ds in headers)
    if len(sizes) > 1:
        shown = ", ".join(f"{size} ({n} files)" for size, n in sizes.most_common())
        raise InputError(folder, f"series {series.uid} mixes matrix sizes (rows x columns): {shown}")
    try:
        planes = _frame_planes(headers[0][1]) if multi else [_plane(ds) for _, ds in headers]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise InputError(folder, f"series {series.uid}: a slice lacks its position or orientation") from exc
    order = _check_stack(folder, series.uid, np.array([c for c, _ in planes]), np.array([p for _, p in planes]))
    return [headers[0]] if multi else [headers[int(i)] for i in order]


def _plane(ds) -> tuple[list[float], list[float]]:
    """(ImageOrientationPatient, ImagePositionPatient) of a single-frame dataset."""
    return [float(v) for v in ds.ImageOrientationPatient], [float(v) for v in ds.ImagePositionPatient]


def _frame_planes(ds) -> list[tuple[list[float], list[float]]]:
    """(orientation, position) of every frame of an enhanced object (per-frame or shared groups)."""
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    planes = []
    for frame in ds.PerFrameFunctionalGroupsSequence:
        groups = frame if "PlaneOrientationSequence" in frame else shared
        orientation = groups.PlaneOrientationSequence[0].ImageOrientationPatient
        position = frame.PlanePositionSequence[0].ImagePositionPatient
        planes.append(([float(v) for v in orientation], [float(v) for v in position]))
    return planes


def _check_stack(folder, uid: str, cosines: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The slices' order along the normal; InputError unless they form one regular, orthogonal stack."""
    if np.max(np.abs(cosines - cosines[0])) > ORIENTATION_TOL:
        raise InputError(folder, f"series {uid}: slice orientations differ (a tilted or non-parallel "
                                 "stack); hepaseg reads parallel slices only")
    normal = np.cross(cosines[0, :3], cosines[0, 3:])
    offsets = (positions - positions[0]) @ normal
    off_axis = positions - positions[0] - offsets[:, None] * normal[None, :]
    if np.max(np.linalg.norm(off_axis, axis=1)) > OFF_AXIS_TOL_MM:
        raise InputError(folder, f"series {uid}: slice positions are not along the slice normal "
                                 "(a gantry tilt or sheared stack); hepaseg reads orthogonal stacks only")
    order = np.argsort(offsets, kind="stable")
    gaps = np.diff(offsets[order])
    if gaps.size:
        typical = float(np.median(gaps))
        if float(gaps.min()) <= OFF_AXIS_TOL_MM:
            raise InputError(folder, f"series {uid}: two slices at the same position")
        worst = float(gaps[np.argmax(np.abs(gaps - typical))])
        if abs(worst - typical) > GAP_TOL * typical:
            raise InputError(folder, f"series {uid}: uneven slice spacing (a gap of {worst:.3g} mm where "
                                     f"the others are {typical:.3g} mm): a missing slice?")
    return order
