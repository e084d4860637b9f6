"""Sample analytic shapes on the voxel grid with partial volume, and paint tissue maps.

The canonical grid has voxel index (i, j, k) along patient (x, y, z) in mm with x to the patient's
right, y anterior and z superior (RAS+); k is the slice axis. A voxel's value is the average of its
content over the slice thickness: shapes are evaluated at ``n_sub`` positions across each slice
and averaged; in-plane, a soft edge one pixel wide (a box filter across the boundary) stands in
for the pixel integral. All work happens inside the shape's bounding box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float32]
Box = tuple[slice, slice, slice]
Sdf = Callable[..., Array]  # sdf(x, y, z) -> mm, x/y/z broadcastable
Value = Callable[..., Array]  # value(x, y, z, sdf) -> signal
SUB_SLICE_MM = 1.25  # target distance between the sub-slice samples
BAND_MIN_VOXELS = 200_000  # smaller boxes are sampled densely
BAND_STRIDE_MM = 2.5  # in-plane spacing of the first, coarse pass (at least one pixel)
BAND_SAFETY = 2.0  # SDFs here may change up to this many mm per mm


@dataclass(frozen=True)
class Grid:
    """The canonical voxel grid of one case.

    Attributes:
        shape: (ni, nj, nk) voxels.
        spacing: (dx, dy, dz) mm; dx == dy (in-plane), dz the slice spacing.
        origin: patient coordinates (mm) of the centre of voxel (0, 0, 0).
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @property
    def n_sub(self) -> int:
        """Sub-slice samples per slice for partial volume along z."""
        return max(1, int(np.ceil(self.spacing[2] / SUB_SLICE_MM)))

    @property
    def pixel(self) -> float:
        return float(self.spacing[0])

    def axis(self, a: int, lo: int = 0, hi: int | None = None) -> NDArray[np.float32]:
        """Voxel-centre coordinates (mm, float32) along axis ``a`` for indices ``lo:hi``."""
        hi = self.shape[a] if hi is None else hi
        return (self.origin[a] + self.spacing[a] * np.arange(lo, hi, dtype=np.float64)).astype(np.float32)

    def sub_offsets(self) -> NDArray[np.float32]:
        """Offsets (mm) of the ``n_sub`` sub-slice samples from the slice centre."""
        n = self.n_sub
        return (((np.arange(n) + 0.5) / n - 0.5) * self.spacing[2]).astype(np.float32)

    def sub_z(self, lo: int, hi: int) -> NDArray[np.float32]:
        """Sub-slice sample positions (mm) for slices ``lo:hi``, shape ((hi - lo) * n_sub,)."""
        return (self.axis(2, lo, hi)[:, None] + self.sub_offsets()[None, :]).ravel()

    def box(self, lo_mm, hi_mm, margin_vox: int = 1) -> Box | None:
        """Index box covering the world box [lo_mm, hi_mm] plus a margin; None if outside the grid."""
        out = []
        for a in range(3):
            lo = int(np.floor((lo_mm[a] - self.origin[a]) / self.spacing[a])) - margin_vox
            hi = int(np.ceil((hi_mm[a] - self.origin[a]) / self.spacing[a])) + 1 + margin_vox
            lo, hi = max(lo, 0), min(hi, self.shape[a])
            if hi <= lo:
                return None
            out.append(slice(lo, hi))
        return tuple(out)  # type: ignore[return-value]

    def full(self) -> Box:
        return tuple(slice(0, n) for n in self.shape)  # type: ignore[return-value]

    def to_world(self, index) -> NDArray[np.float64]:
        """Patient coordinates (mm) of voxel index/indices (..., 3)."""
        return np.asarray(self.origin) + np.asarray(index, dtype=np.float64) * np.asarray(self.spacing)


def occupancy(sdf_mm: Array, pixel_mm: float) -> Array:
    """Fraction of a pixel inside a shape from its signed distance (a box filter across the edge)."""
    return np.clip(0.5 - sdf_mm / np.float32(pixel_mm), 0.0, 1.0).astype(np.float32, copy=False)


def sample(grid: Grid, box: Box, sdf: Sdf, value: Value | None = None, partial_volume: bool = True,
           chunk_voxels: int = 3_000_000) -> tuple[Array, Array | None]:
    """Fraction of each voxel of ``box`` inside ``sdf`` and, optionally, the averaged signal.

    Large boxes without a value function take a narrow-band shortcut (``_sample_band``): only voxels
    near the surface are sampled across the slice; the result is the same to within rounding.

    Args:
        grid: the case grid.
        box: index box to evaluate.
        sdf: signed distance function of the shape.
        value: optional signal inside the shape, ``value(x, y, z, sdf)``; its fraction-weighted
            average over each voxel is returned.
        partial_volume: average over sub-slices (False: evaluate at the slice centre only, for
            shapes that hardly change along z).
        chunk_voxels: samples evaluated at once (bounds memory).

    Returns:
        ``(fraction, paint)``, arrays of the box's shape; ``paint`` is None without ``value``.
    """
    size = int(np.prod([b.stop - b.start for b in box]))
    if value is None and partial_volume and size > BAND_MIN_VOXELS:
        return _sample_band(grid, box, sdf, chunk_voxels), None
    bi, bj, bk = box
    x = grid.axis(0, bi.start, bi.stop)[:, None, None]
    y = grid.axis(1, bj.start, bj.stop)[None, :, None]
    n_sub = grid.n_sub if partial_volume else 1
    nk = bk.stop - bk.start
    frac = np.empty((len(x), y.shape[1], nk), dtype=np.float32)
    paint = np.empty_like(frac) if value is not None else None
    step = max(1, chunk_voxels // max(1, frac.shape[0] * frac.shape[1] * n_sub))
    for k0 in range(0, nk, step):
        k1 = min(nk, k0 + step)
        lo, hi = bk.start + k0, bk.start + k1
        z = (grid.sub_z(lo, hi) if partial_volume else grid.axis(2, lo, hi))[None, None, :]
        d = np.broadcast_to(sdf(x, y, z), (frac.shape[0], frac.shape[1], z.shape[2]))
        occ = occupancy(d, grid.pixel)
        shape = (occ.shape[0], occ.shape[1], k1 - k0, n_sub)
        frac[:, :, k0:k1] = occ.reshape(shape).mean(axis=3)
        if value is not None:
            weighted = occ * value(x, y, z, d)
            paint[:, :, k0:k1] = weighted.reshape(shape).mean(axis=3)
    return frac, paint


def _sample_band(grid: Grid, box: Box, sdf: Sdf, chunk_voxels: int) -> Array:
    """Partial-volume fractions via a coarse pass and a narrow band.

    A coarse pass at the slice centres (about every ``BAND_STRIDE_MM`` in-plane) finds the voxels
    whose sub-slice samples could differ in sign (``|sdf|`` below the reach of the samples, times
    ``BAND_SAFETY``); all others are fully in or out. Band voxels are then sampled as in the dense path.
    """
    bi, bj, bk = box
    s = max(1, int(BAND_STRIDE_MM / grid.pixel))
    x = grid.axis(0, bi.start, bi.stop)
    y = grid.axis(1, bj.start, bj.stop)
    zc = grid.axis(2, bk.start, bk.stop)
    shape = (len(x), len(y), len(zc))
    coarse = np.broadcast_to(sdf(x[::s, None, None], y[None, ::s, None], zc[None, None, :]),
                             (len(x[::s]), len(y[::s]), len(zc)))
    d = np.repeat(np.repeat(coarse, s, axis=0)[: shape[0]], s, axis=1)[:, : shape[1]]
    reach = 0.5 * grid.spacing[2] + grid.pixel * (0.5 + 0.71 * s)
    band = np.abs(d) < BAND_SAFETY * reach
    frac = (d < 0).astype(np.float32)
    ii, jj, kk = np.nonzero(band)
    n_sub = grid.n_sub
    offsets = grid.sub_offsets()
    values = np.empty(len(ii), np.float32)
    step = max(1, chunk_voxels // n_sub)
    for p0 in range(0, len(ii), step):
        p1 = min(len(ii), p0 + step)
        px = x[ii[p0:p1], None]
        py = y[jj[p0:p1], None]
        pz = zc[kk[p0:p1], None] + offsets[None, :]
        values[p0:p1] = occupancy(np.broadcast_to(sdf(px, py, pz), pz.shape), grid.pixel).mean(axis=1)
    frac[band] = values
    return frac


@dataclass
class Canvas:
    """Tissue signal (liver parenchyma = 1.0) and a tissue label map, painted back to front.

    Attributes:
        signal: (ni, nj, nk) float32 relative signal without noise or bias.
        labels: (ni, nj, nk) uint8 tissue code of the dominant (last painted, >= half) tissue.
    """

    signal: Array
    labels: NDArray[np.uint8]

    @classmethod
    def empty(cls, grid: Grid) -> Canvas:
        return cls(np.zeros(grid.shape, np.float32), np.zeros(grid.shape, np.uint8))

    def paint(self, box: Box, frac: Array, value, label: int, paint: Array | None = None) -> None:
        """Composite a tissue over the canvas: ``s = s (1 - f) + f v`` inside ``box``.

        Args:
            box: index box of ``frac``.
            frac: fraction of each voxel covered by the tissue.
            value: the tissue's signal (scalar or array of the box's shape); ignored if ``paint``.
            label: tissue code written where ``frac >= 0.5``.
            paint: precomputed fraction-weighted signal (from ``sample`` with a value function).
        """
        s = self.signal[box]
        contribution = paint if paint is not None else frac * np.asarray(value, dtype=np.float32)
        s -= s * frac
        s += contribution
        np.copyto(self.labels[box], np.uint8(label), where=frac >= 0.5)
