"""The DICOM results of a case: its findings, and the objects written from them.

``make_findings`` turns a tumour and a liver mask on a DICOM image's grid into
``io.dicom_results.Findings``: the lesions numbered as ``lesions.csv`` numbers them
(``data.components.number_by_size``, largest first) with the table's measurements
(``inference.lesion_table``). ``build_objects`` builds the objects asked for (all of them before any
is written, so bad input leaves nothing behind); one that the source series cannot give
(``CannotBuild``: a missing required attribute) is skipped and named, the others are built.
``write_objects`` writes them into one folder (``io.dicom_results.OBJECT_FILES``), each atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..data.components import number_by_size
from ..errors import InputError
from ..io.dicom_results import (
    OBJECT_FILES,
    OBJECTS,
    CannotBuild,
    Findings,
    LesionFinding,
    tracking_uid,
    write_dicom_object,
)
from ..io.geometry import voxel_volume_ml
from ..io.volumes import Volume
from .lesion_table import Lesion, lesions


def make_findings(image: Volume, tumour: NDArray, liver: NDArray, table: Sequence[Lesion] | None = None,
                  connectivity: int = 26) -> Findings:
    """The findings of a tumour mask and a liver mask on ``image``'s grid (a DICOM series).

    Args:
        image: the source volume (``read_volume`` of a DICOM folder).
        tumour, liver: (i, j, k) binary masks on its grid.
        table: the lesions' rows as ``inference.lesion_table.lesions`` gave them for ``tumour`` (computed
            here where None).
        connectivity: 6, 18 or 26, as the table's.
    """
    tumour = np.asarray(tumour) > 0
    labels, _ = number_by_size(tumour, connectivity)
    rows = lesions("", tumour, None, image.affine, connectivity) if table is None else table
    source = "" if image.dicom_source is None else str(image.dicom_source[0].get("SeriesInstanceUID", ""))
    found = tuple(LesionFinding(r.lesion, tracking_uid(source, r.lesion), r.voxels, r.volume_ml, r.diameter_mm,
                                (r.centroid_ras_x_mm, r.centroid_ras_y_mm, r.centroid_ras_z_mm)) for r in rows)
    liver = np.asarray(liver) > 0
    return Findings(image, liver, labels, found, float(np.count_nonzero(liver)) * voxel_volume_ml(image.affine))


def parse_objects(text: str) -> tuple[str, ...]:
    """``--objects seg,sr,...`` as a tuple in ``OBJECTS`` order; InputError for an unknown one."""
    asked = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(asked) - set(OBJECTS))
    if unknown or not asked:
        raise InputError("--objects", f"unknown DICOM object(s) {', '.join(unknown) or '(none given)'} "
                                      f"(choose from {', '.join(OBJECTS)})")
    return tuple(kind for kind in OBJECTS if kind in asked)


def build_object(kind: str, findings: Findings, overview_png: bytes | None = None, seg=None):
    """The DICOM dataset of object ``kind`` (one of ``OBJECTS``) for ``findings``; the SR references the
    SEG ``seg`` (built here where None: the same UIDs as ``segmentation.dcm``)."""
    if kind == "seg":
        from ..io.dicomseg import build_dicom_seg

        return build_dicom_seg(findings)
    if kind == "sr":
        from ..io.dicom_results import source_slices
        from ..io.dicomseg import build_dicom_seg
        from ..io.dicomsr import build_measurement_report

        source_slices(findings, "sr")  # a source the SR cannot give is named as the SR's, not its SEG's
        return build_measurement_report(findings, build_dicom_seg(findings) if seg is None else seg)
    if kind == "rtstruct":
        from ..io.rtstruct import build_rtstruct

        return build_rtstruct(findings)
    if kind == "sc":
        from ..io.dicomsc import build_secondary_capture

        if overview_png is None:
            raise CannotBuild(kind, findings.source_series_uid, "cannot give this object: no overview picture given")
        return build_secondary_capture(findings, overview_png)
    raise ValueError(f"unknown DICOM object {kind!r} (one of {', '.join(OBJECTS)})")


def build_objects(findings: Findings, objects: Sequence[str], overview_png: bytes | None = None,
                  skipped: Callable[[str], None] | None = None) -> dict[str, object]:
    """The datasets of ``objects`` (kinds of ``OBJECTS``) for ``findings``, by kind; an object the source
    series cannot give (``CannotBuild``) is left out and its one-line reason passed to ``skipped``.

    Raises:
        InputError: what the builders raise for bad input (no DICOM source, a slice off the grid, ...).
    """
    built = {}
    for kind in objects:
        try:
            built[kind] = build_object(kind, findings, overview_png, built.get("seg"))
        except CannotBuild as exc:
            if skipped is not None:
                skipped(exc.message)
    return built


def write_objects(built: dict[str, object], folder: str | Path) -> list[Path]:
    """Write datasets of ``build_objects`` into ``folder`` under their ``OBJECT_FILES`` names (atomically)."""
    return [write_dicom_object(dataset, Path(folder) / OBJECT_FILES[kind]) for kind, dataset in built.items()]
