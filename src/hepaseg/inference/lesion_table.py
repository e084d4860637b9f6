"""The per-lesion table (``lesions.csv``): one row per connected tumour component of a case.

Lesions are the 3D connected components (26-connectivity by default) of the predicted mask on the
case's *original* grid, numbered by ``data.components.number_by_size``. Columns:

- ``case``, ``lesion``: case id; lesion number 1..N, largest lesion first (ties: scan order, i fastest).
- ``voxels``: voxel count; ``volume_ml``: voxels x voxel volume (|det| of the affine) / 1000.
- ``diameter_mm``: longest in-plane diameter: the largest distance between two points of the
  lesion within one slice, voxels taken as their full rectangles (edge to edge, so a 10 x 10 voxel
  square of 1 mm pixels measures 10 * sqrt(2) mm and one voxel its pixel diagonal); the maximum
  over slices. The slice axis is the voxel axis closest to superior-inferior (the prepared grid's z).
- ``centroid_ras_x_mm`` .. ``_z_mm``: mean of the voxel centres in RAS+ patient coordinates, mm
  (the NIfTI / 3D Slicer convention; negate x and y for DICOM's LPS).
- ``mean_probability``: mean network probability over the lesion's voxels (original grid).

A case without lesions contributes no row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..data.components import number_by_size
from ..io.atomic import write_text
from ..io.geometry import voxel_volume_ml
from ..io.volumes import Affine


@dataclass(frozen=True)
class Lesion:
    """One row of ``lesions.csv`` (see the module docstring for units and conventions)."""

    case: str
    lesion: int
    voxels: int
    volume_ml: float
    diameter_mm: float
    centroid_ras_x_mm: float
    centroid_ras_y_mm: float
    centroid_ras_z_mm: float
    mean_probability: float


COLUMNS = tuple(f.name for f in fields(Lesion))


def slice_axis(affine: Affine) -> int:
    """The voxel axis that is closest to superior-inferior (the axis the prepared grid keeps as z)."""
    from nibabel.orientations import io_orientation

    return int(np.flatnonzero(io_orientation(np.asarray(affine))[:, 0] == 2)[0])


def lesions(case: str, mask: NDArray, probability: NDArray | None, affine: Affine,
            connectivity: int = 26) -> list[Lesion]:
    """The lesions of one case.

    Args:
        case: case id for the ``case`` column.
        mask: (i, j, k) binary tumour mask on the original grid.
        probability: (i, j, k) float probability on the same grid, or None (mean_probability NaN).
        affine: (4, 4) voxel -> RAS+ mm of that grid.
        connectivity: 6, 18 or 26.

    Returns:
        One ``Lesion`` per connected component, largest first.
    """
    from scipy import ndimage

    labels, sizes = number_by_size(mask, connectivity)
    n = len(sizes)
    if n == 0:
        return []
    affine = np.asarray(affine, dtype=np.float64)
    voxel_ml = voxel_volume_ml(affine)
    axis = slice_axis(affine)
    inplane = [a for a in range(3) if a != axis]
    rows = []
    for label, box in enumerate(ndimage.find_objects(labels, max_label=n), start=1):
        idx = np.argwhere(labels[box] == label) + [s.start for s in box]
        centre = affine[:3, :3] @ idx.mean(axis=0) + affine[:3, 3]
        mean_p = float(np.mean(np.asarray(probability)[tuple(idx.T)])) if probability is not None else float("nan")
        diameter = _longest_inplane_diameter(idx, axis, affine[:3, inplane])
        rows.append(Lesion(case, label, len(idx), len(idx) * voxel_ml, diameter, *map(float, centre), mean_p))
    return rows


_CORNERS = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])


def _longest_inplane_diameter(idx: NDArray, axis: int, columns: NDArray) -> float:
    """Max over slices of the largest corner-to-corner distance (mm) of the lesion's voxels there.

    Args:
        idx: (n, 3) voxel indices of the lesion.
        axis: the slice axis.
        columns: (3, 2) the affine's columns of the two in-plane axes (mm per voxel step).
    """
    from scipy.spatial.distance import pdist

    inplane = [a for a in range(3) if a != axis]
    order = np.argsort(idx[:, axis], kind="stable")
    slices = np.split(idx[order][:, inplane], np.flatnonzero(np.diff(idx[order, axis])) + 1)
    best = 0.0
    for centres in slices:
        # The union of the voxels' squares has the convex hull of (hull of the centres) + corners,
        # and a linear map keeps convex hulls: the farthest pair lies among those points.
        corners = (_hull_vertices(centres.astype(np.float64))[:, None, :] + _CORNERS[None]).reshape(-1, 2)
        best = max(best, float(pdist(corners @ columns.T).max()))
    return best


def _hull_vertices(points: NDArray) -> NDArray:
    """The convex-hull vertices of (n, 2) points; all points when they are few or collinear."""
    if len(points) <= 8:
        return points
    from scipy.spatial import ConvexHull, QhullError

    try:
        return points[ConvexHull(points).vertices]
    except QhullError:  # collinear: the two extreme points along the line
        along = (points - points[0]) @ (points[-1] - points[0] if len(points) > 1 else np.ones(2))
        return points[[int(np.argmin(along)), int(np.argmax(along))]]


def to_csv(rows: Sequence[Lesion]) -> str:
    """CSV text with a header line; floats with 6 significant digits."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_fmt(v) for v in astuple(row)])
    return buffer.getvalue()


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def write_csv(rows: Sequence[Lesion], path: str | Path) -> Path:
    """Write ``rows`` to ``path`` atomically."""
    write_text(path, to_csv(rows))
    return Path(path)


def read_csv(path: str | Path) -> list[Lesion]:
    """Read a file written by ``write_csv``."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        kinds = {f.name: f.type for f in fields(Lesion)}
        return [Lesion(**{k: (int(v) if kinds[k] == "int" else v if kinds[k] == "str" else float(v))
                          for k, v in row.items()}) for row in reader]
