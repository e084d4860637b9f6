"""Surface distances between masks: average symmetric surface distance (ASSD) and the 95th-percentile
Hausdorff distance (HD95), in mm (METHOD.md section 8, docs/evaluation.md).

Conventions (pinned by tests/evaluation/test_surface.py):

- The surface of a mask is its foreground voxels with at least one of the six face neighbours in the
  background or outside the image; a point of the surface is the voxel's centre, at
  ``index * spacing`` mm along (i, j, k).
- ``d(a, B)`` is the Euclidean distance (mm) from a surface point a of A to the nearest surface
  point of B.
- ASSD = (sum over a of d(a, B) + sum over b of d(b, A)) / (|surface A| + |surface B|).
- HD95 = max(P95 of d(a, B) over a, P95 of d(b, A) over b), with numpy's default (linear)
  percentile; the same definition as MONAI's ``compute_hausdorff_distance(percentile=95)``.
- Both masks empty: 0.0 for both (agreement on "no tumour"). Exactly one empty: NaN for both
  (undefined; left out of means and tests, while the case's Dice of 0 still counts).

Only foreground voxels are touched (their face neighbours are looked up); a surface voxel shared by
both masks is at distance 0, and for the others the nearest surface point is found with a k-d tree
(``scipy.spatial.cKDTree``), so the cost scales with the tumour surface and not with the image size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

HD_PERCENTILE = 95.0


def surface_voxels(mask: ArrayLike, indices: NDArray | None = None) -> NDArray[np.int64]:
    """Flat indices (Fortran order, i fastest; ascending) of the surface voxels of ``mask``.

    Args:
        mask: (i, j, k) array; non-zero is foreground.
        indices: the ascending flat indices (Fortran order) of the mask's foreground voxels, if known
            (saves a pass over the image).
    """
    fg = np.asarray(mask)
    fg = fg if fg.dtype == np.bool_ else fg != 0
    if indices is None:
        indices = np.flatnonzero(fg.ravel(order="F"))
    ijk = np.stack(np.unravel_index(indices, fg.shape, order="F"), axis=1)
    on_surface = np.zeros(len(ijk), dtype=bool)
    for axis in range(3):
        for step in (-1, 1):
            neighbour = ijk.copy()
            neighbour[:, axis] += step
            outside = (neighbour[:, axis] < 0) | (neighbour[:, axis] >= fg.shape[axis])
            neighbour[outside, axis] = ijk[outside, axis]
            on_surface |= outside | ~fg[neighbour[:, 0], neighbour[:, 1], neighbour[:, 2]]
    return np.asarray(indices, dtype=np.int64)[on_surface]


class Surface:
    """The surface voxels of one mask: flat indices and centres in mm, with a k-d tree of the centres
    for nearest-point queries, built on first use.

    Args:
        voxels: ascending flat indices (Fortran order) of the surface voxels (``surface_voxels``).
        shape: the mask's (i, j, k) shape.
        spacing: voxel size in mm along (i, j, k).
    """

    def __init__(self, voxels: NDArray[np.int64], shape: Sequence[int], spacing: Sequence[float]) -> None:
        self.voxels = voxels
        self.points = np.stack(np.unravel_index(voxels, tuple(shape), order="F"), axis=1) * np.asarray(
            spacing, dtype=np.float64)
        self._tree: cKDTree | None = None

    @classmethod
    def of(cls, mask: ArrayLike, spacing: Sequence[float], indices: NDArray | None = None) -> Surface:
        """The surface of ``mask`` (see ``surface_voxels`` for ``indices``)."""
        return cls(surface_voxels(mask, indices), np.shape(mask), spacing)

    def distances_from(self, other: Surface) -> NDArray[np.float64]:
        """Distance (mm) from each of ``other``'s surface points to the nearest point of this surface;
        0 without a query where the voxel is on both surfaces."""
        out = np.zeros(len(other.voxels))
        rest = ~np.isin(other.voxels, self.voxels, assume_unique=True)
        if rest.any():
            if self._tree is None:
                self._tree = cKDTree(self.points)
            out[rest] = self._tree.query(other.points[rest], k=1)[0]
        return out


def surface_distances(a: Surface, b: Surface) -> tuple[float, float]:
    """``(assd_mm, hd95_mm)`` of two surfaces, with the empty-mask conventions of this module."""
    if len(a.voxels) == 0 and len(b.voxels) == 0:
        return 0.0, 0.0
    if len(a.voxels) == 0 or len(b.voxels) == 0:
        return math.nan, math.nan
    a_to_b, b_to_a = b.distances_from(a), a.distances_from(b)
    assd = (float(a_to_b.sum()) + float(b_to_a.sum())) / (len(a_to_b) + len(b_to_a))
    hd95 = max(float(np.percentile(a_to_b, HD_PERCENTILE)), float(np.percentile(b_to_a, HD_PERCENTILE)))
    return assd, hd95


def assd_hd95(a: ArrayLike, b: ArrayLike, spacing: Sequence[float]) -> tuple[float, float]:
    """``(assd_mm, hd95_mm)`` of two masks of the same shape with voxel size ``spacing`` (mm).

    Raises:
        ValueError: the shapes differ.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    return surface_distances(Surface.of(a, spacing), Surface.of(b, spacing))
