"""Geometric randomisation of a rendered case (the liver model's randomised cohort, issue 28).

- ``cut_field_of_view``: a partial field of view along z, the liver cut at its top or bottom
  (a scan that covers only part of the liver, as real stacks often do);
- ``Deformation``: a smooth random displacement field (control points on a coarse lattice, cubic
  spline upsampled), applied to the canonical arrays of one case, the signal linearly, labels and
  masks by nearest neighbour, so that the liver's and its neighbours' shapes vary beyond the
  phantom's ellipsoids.

Every draw comes from the generator it is given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .raster import Grid

CUT_PROBABILITY = 0.35  # a case whose field of view cuts the liver
CUT_FRACTION = (0.1, 0.4)  # of the liver's height left out, at its top or its bottom
MIN_SLICES = 8
CONTROL_POINTS = 5  # per axis
DISPLACEMENT_SD_MM = (0.0, 10.0)  # per case, the control points' SD


def cut_field_of_view(rng: np.random.Generator, grid: Grid, top_mm: float, span_mm: float) -> tuple[Grid, slice]:
    """Maybe cut the liver (from ``top_mm`` down to ``top_mm - span_mm`` in z) at its top or bottom.

    Returns:
        The new grid and the slice of the old grid's k indices it keeps (the whole grid when not cut).
    """
    cut, at_top, fraction = rng.random() < CUT_PROBABILITY, rng.random() < 0.5, rng.uniform(*CUT_FRACTION)
    n = grid.shape[2]
    if not cut:
        return grid, slice(0, n)
    z = grid.axis(2)
    if at_top:
        keep = np.flatnonzero(z <= top_mm - fraction * span_mm)
    else:
        keep = np.flatnonzero(z >= top_mm - (1.0 - fraction) * span_mm)
    if len(keep) < MIN_SLICES:
        return grid, slice(0, n)
    lo, hi = int(keep[0]), int(keep[-1]) + 1
    origin = (grid.origin[0], grid.origin[1], float(z[lo]))
    return dataclasses.replace(grid, shape=(grid.shape[0], grid.shape[1], hi - lo), origin=origin), slice(lo, hi)


@dataclass(frozen=True)
class Deformation:
    """A smooth displacement: ``control`` (3, n, n, n) mm at a lattice spanning the grid."""

    control: NDArray[np.float32]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Deformation:
        sd = rng.uniform(*DISPLACEMENT_SD_MM)
        return cls(rng.normal(0.0, sd, (3, CONTROL_POINTS, CONTROL_POINTS, CONTROL_POINTS)).astype(np.float32))

    def coordinates(self, grid: Grid) -> NDArray[np.float32]:
        """(3, i, j, k) voxel coordinates to sample each output voxel from: the control points
        interpolated by cubic splines along each axis in turn (a tensor product)."""
        weights = [_spline_weights(n) for n in grid.shape]  # (n_axis, CONTROL_POINTS) each
        coords = np.empty((3, *grid.shape), np.float32)
        for axis in range(3):
            field = np.einsum("abc,ia,jb,kc->ijk", self.control[axis], *weights, optimize=True)
            index = np.arange(grid.shape[axis], dtype=np.float32).reshape([-1 if a == axis else 1 for a in range(3)])
            coords[axis] = index + field / np.float32(grid.spacing[axis])
        return coords

    def apply(self, arrays: list[NDArray], grid: Grid, orders: list[int]) -> list[NDArray]:
        """Each canonical (i, j, k) array warped (``orders``: 1 linear, 0 nearest), dtype kept."""
        from scipy import ndimage

        coords = self.coordinates(grid)
        return [ndimage.map_coordinates(a, coords, order=order, mode="nearest").astype(a.dtype, copy=False)
                for a, order in zip(arrays, orders)]


def _spline_weights(n: int) -> NDArray[np.float32]:
    """(n, CONTROL_POINTS) weights of the control points at each of ``n`` voxels: a natural cubic
    spline through the lattice, its first and last points on the first and last voxel."""
    from scipy.interpolate import CubicSpline

    if n == 1:
        return np.full((1, CONTROL_POINTS), 1.0 / CONTROL_POINTS, np.float32)
    knots = np.linspace(0.0, n - 1.0, CONTROL_POINTS)
    return CubicSpline(knots, np.eye(CONTROL_POINTS), bc_type="natural")(np.arange(n)).astype(np.float32)
