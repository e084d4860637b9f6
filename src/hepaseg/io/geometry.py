"""Voxel grids: the one check that two volumes share a grid (``on_grid``: a mask on the image's
grid, possibly in another axis order, returned in the image's voxel order), and the mapping
between an image's original grid and the prepared 1 mm in-plane grid.

The prepared grid is the original one reoriented (permutation / flips only: lossless) to the
closest canonical RAS+ orientation, so that axis 2 (z) is the slice axis of an axial scan, then
resampled in-plane (axes 0 and 1) to ``inplane_mm``; z is resampled only when a slice spacing
``slice_mm`` is asked for (the isotropic 3D variant), else the slices stay as they are (the paper).
Voxel centres follow the pixel-area convention on every resampled axis: prepared index ``p`` sits at
canonical index ``(p + 0.5) * r - 0.5`` with ``r = prepared spacing / canonical spacing``; an axis
whose ratio is exactly 1 is not resampled at all. Resampling is separable linear interpolation;
masks are interpolated and thresholded at 0.5, which never creates new labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .volumes import Affine, Volume, voxel_spacing


@dataclass(frozen=True, eq=False)
class GridMap:
    """Everything needed to map arrays between the original and the prepared grid.

    Attributes:
        original_shape: (i, j, k) of the file.
        original_affine: (4, 4) voxel -> RAS+ mm of the file.
        ornt: (3, 2) nibabel orientation transform, original -> canonical RAS+.
        canonical_shape: shape after reorientation.
        prepared_shape: shape after in-plane resampling, (x, y, z).
        prepared_affine: (4, 4) voxel -> RAS+ mm of the prepared grid.
        ratio: (rx, ry, rz) prepared spacing / canonical spacing (rz = 1.0: the slices as they are).
    """

    original_shape: tuple[int, int, int]
    original_affine: Affine
    ornt: NDArray[np.float64]
    canonical_shape: tuple[int, int, int]
    prepared_shape: tuple[int, int, int]
    prepared_affine: Affine
    ratio: tuple[float, float, float]

    @property
    def prepared_spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in voxel_spacing(self.prepared_affine))  # type: ignore[return-value]

    def to_dict(self) -> dict:
        return {
            "original_shape": list(self.original_shape),
            "original_affine": np.asarray(self.original_affine).tolist(),
            "ornt": np.asarray(self.ornt).tolist(),
            "canonical_shape": list(self.canonical_shape),
            "prepared_shape": list(self.prepared_shape),
            "prepared_affine": np.asarray(self.prepared_affine).tolist(),
            "ratio": list(self.ratio),
        }

    @classmethod
    def from_dict(cls, d: dict) -> GridMap:
        return cls(
            tuple(d["original_shape"]), np.array(d["original_affine"], dtype=np.float64),
            np.array(d["ornt"], dtype=np.float64), tuple(d["canonical_shape"]),
            tuple(d["prepared_shape"]), np.array(d["prepared_affine"], dtype=np.float64),
            _three(d["ratio"]),
        )


def _three(ratio: list[float]) -> tuple[float, float, float]:
    """A record's ratio; records written before z could be resampled hold (rx, ry): rz = 1."""
    r = tuple(float(v) for v in ratio)
    return r if len(r) == 3 else (r[0], r[1], 1.0)  # type: ignore[return-value]


def _resampled_axes(grid: GridMap) -> tuple[int, ...]:
    """The axes the prepared grid resamples: 0 and 1 always, 2 where its ratio is not exactly 1."""
    return (0, 1) if grid.ratio[2] == 1.0 else (0, 1, 2)


def canonical_orientation(volume: Volume) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The orientation transform of ``volume`` to the closest canonical RAS+ grid (nibabel's
    ``io_orientation``, for ``apply_orientation``) and the voxel spacing in mm along the canonical
    (x, y, z) axes."""
    from nibabel.orientations import io_orientation

    ornt = io_orientation(volume.affine)
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = volume.spacing
    return ornt, spacing


def plan_grid(shape: tuple[int, int, int], affine: Affine, inplane_mm: float = 1.0,
              slice_mm: float | None = None) -> GridMap:
    """The prepared grid for an image of ``shape`` and ``affine``: ``inplane_mm`` in-plane, and
    ``slice_mm`` between slices (None: the canonical slices as they are)."""
    from nibabel.orientations import inv_ornt_aff, io_orientation

    affine = np.asarray(affine, dtype=np.float64)
    ornt = io_orientation(affine)
    canonical_shape = tuple(int(shape[int(ax)]) for ax in np.argsort(ornt[:, 0]))
    canonical_affine = affine @ inv_ornt_aff(ornt, shape)
    spacing = voxel_spacing(canonical_affine)
    rz = 1.0 if slice_mm is None else float(slice_mm / spacing[2])
    ratio = (float(inplane_mm / spacing[0]), float(inplane_mm / spacing[1]), rz)
    prepared_shape = tuple(max(1, int(round(canonical_shape[a] / ratio[a]))) if ratio[a] != 1.0
                           else canonical_shape[a] for a in range(3))
    scale = np.eye(4)
    for axis, r in enumerate(ratio):
        scale[axis, axis] = r
        scale[axis, 3] = 0.5 * r - 0.5
    return GridMap(tuple(int(n) for n in shape), affine, ornt, canonical_shape,  # type: ignore[arg-type]
                   prepared_shape, canonical_affine @ scale, ratio)  # type: ignore[arg-type]


def to_prepared(array: NDArray, grid: GridMap, mask: bool = False) -> NDArray:
    """Map an array from the original grid to the prepared grid.

    Returns float32 for images; uint8 0/1 for ``mask=True`` (linear, then >= 0.5).
    """
    from nibabel.orientations import apply_orientation

    canonical = apply_orientation(np.asarray(array), grid.ornt).astype(np.float32, copy=False)
    out = canonical
    for axis in _resampled_axes(grid):
        n_out = grid.prepared_shape[axis]
        coords = (np.arange(n_out) + 0.5) * grid.ratio[axis] - 0.5
        out = resample_axis_linear(out, axis, coords)
    return (out >= 0.5).astype(np.uint8) if mask else np.ascontiguousarray(out, dtype=np.float32)


def to_original(array: NDArray, grid: GridMap, mask: bool = False) -> NDArray:
    """Map an array (probabilities or a mask) from the prepared grid back to the original grid.

    Returns float32 (``mask=False``) or uint8 0/1 (``mask=True``: linear, then >= 0.5).
    """
    out = np.asarray(array, dtype=np.float32)
    for axis in _resampled_axes(grid):
        out = resample_axis_linear(out, axis, canonical_coords(grid, axis))
    original = from_canonical(out, grid)
    return (original >= 0.5).astype(np.uint8) if mask else original.astype(np.float32, copy=False)


def canonical_coords(grid: GridMap, axis: int) -> NDArray[np.float64]:
    """Fractional prepared-grid index of every canonical voxel along ``axis``."""
    return (np.arange(grid.canonical_shape[axis]) + 0.5) / grid.ratio[axis] - 0.5


def from_canonical(array: NDArray, grid: GridMap) -> NDArray:
    """Undo the reorientation: an array on the canonical grid back in the file's voxel order."""
    from nibabel.orientations import apply_orientation, ornt_transform

    back = ornt_transform(np.column_stack([np.arange(3), np.ones(3)]), grid.ornt)
    return np.ascontiguousarray(apply_orientation(array, back))


def resample_axis_linear(array: NDArray, axis: int, coords: NDArray) -> NDArray:
    """Linear interpolation of ``array`` along ``axis`` at fractional indices ``coords``.

    Coordinates beyond the first / last sample take the edge value. Returns float32.
    """
    n = array.shape[axis]
    if n == 1:
        return np.repeat(np.asarray(array, dtype=np.float32), len(coords), axis=axis)
    c = np.clip(coords, 0.0, n - 1.0)
    lo = np.minimum(np.floor(c).astype(np.intp), n - 2)
    w = (c - lo).astype(np.float32)
    shape = [1] * array.ndim
    shape[axis] = len(coords)
    w = w.reshape(shape)
    a0 = np.take(array, lo, axis=axis).astype(np.float32, copy=False)
    a1 = np.take(array, lo + 1, axis=axis).astype(np.float32, copy=False)
    a1 -= a0
    a1 *= w
    a0 += a1
    return a0


# Grid tolerance between an image and its masks.
def to_original_in_box(array: NDArray, grid: GridMap, box: tuple[NDArray, NDArray]) -> NDArray[np.float32]:
    """``io.geometry.to_original(array, grid)`` for an array that is 0 outside ``box`` = (lo, hi), faster.

    Only the original voxels whose linear interpolation reaches into the box (plus a one-voxel
    zero rim, or the volume edge) are computed; every other value is 0, as the full computation gives.
    Returns (i, j, k) float32 on the original grid.
    """
    axes = _resampled_axes(grid)
    lo = [max(0, int(box[0][a]) - 1) if a in axes else 0 for a in range(3)]
    hi = [min(grid.prepared_shape[a], int(box[1][a]) + 1) if a in axes else grid.prepared_shape[a] for a in range(3)]
    part = np.asarray(array, dtype=np.float32)[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    region = [slice(None)] * 3
    for axis in axes:
        coords = canonical_coords(grid, axis)
        near = np.flatnonzero((coords > lo[axis] - 1) & (coords < hi[axis]))
        part = resample_axis_linear(part, axis, coords[near] - lo[axis])
        region[axis] = slice(int(near[0]), int(near[-1]) + 1)
    canonical = np.zeros(grid.canonical_shape, dtype=np.float32)
    canonical[tuple(region)] = part
    return from_canonical(canonical, grid)


SPACING_TOL_MM = 1e-3


ORIGIN_TOL_MM = 1e-2


DIRECTION_TOL = 1e-4


def grid_mismatch(a: Volume, b: Volume) -> str | None:
    """Describe how the grids of ``a`` and ``b`` differ beyond tolerance, or None if they match."""
    if a.shape != b.shape:
        return f"shape {b.shape} vs {a.shape}"
    sa, sb = a.spacing, b.spacing
    if np.max(np.abs(sa - sb)) > SPACING_TOL_MM:
        return f"spacing {np.round(sb, 4).tolist()} vs {np.round(sa, 4).tolist()} mm"
    if np.max(np.abs(a.affine[:3, 3] - b.affine[:3, 3])) > ORIGIN_TOL_MM:
        return f"origin {np.round(b.affine[:3, 3], 3).tolist()} vs {np.round(a.affine[:3, 3], 3).tolist()} mm"
    da, db = a.affine[:3, :3] / sa, b.affine[:3, :3] / sb
    if np.max(np.abs(da - db)) > DIRECTION_TOL:
        return "direction (orientation) differs"
    return None


def align_grid(reference: Volume, other: Volume) -> tuple[Volume | None, str | None]:
    """``other`` on ``reference``'s grid, or how the two grids differ.

    The grids match when ``grid_mismatch`` finds no difference, either as they are or after
    reordering ``other``'s axes (a permutation and / or flips of its array, no interpolation) into
    ``reference``'s voxel order, e.g. a mask drawn on a NIfTI conversion of a DICOM series whose
    slices run the other way. The tolerances are ``grid_mismatch``'s, applied to the reordered grid.

    Returns:
        ``(volume, None)`` when they match: ``other`` itself when its axis order is already the
        reference's, else a new Volume (array (i, j, k) in the reference's voxel order, the
        reference's affine, ``other``'s source); ``(None, how)`` otherwise, ``how`` describing the
        difference of the grids as they are.
    """
    mismatch = grid_mismatch(reference, other)
    if mismatch is None:
        return other, None
    reordered = _reorder(reference, other)
    if reordered is None or grid_mismatch(reference, reordered) is not None:
        return None, mismatch
    return Volume(reordered.array, reference.affine, other.source), None


def _reorder(reference: Volume, other: Volume) -> Volume | None:
    """``other`` with its axes permuted / flipped to best follow ``reference``'s, or None if its
    axes are not parallel to the reference's (or the order is already the reference's)."""
    try:
        index = np.linalg.solve(np.asarray(reference.affine, float)[:3, :3], np.asarray(other.affine, float)[:3, :3])
    except np.linalg.LinAlgError:  # a degenerate affine: no axis order to match
        return None
    signed = np.rint(index)  # reference axis r <- other axis a with sign signed[r, a]
    if not (np.all(np.abs(signed).sum(axis=0) == 1) and np.all(np.abs(signed).sum(axis=1) == 1)):
        return None
    axes = tuple(int(a) for a in np.argmax(np.abs(signed), axis=1))
    flips = tuple(r for r in range(3) if signed[r, axes[r]] < 0)
    if axes == (0, 1, 2) and not flips:
        return None
    array = np.flip(np.transpose(np.asarray(other.array), axes), flips)
    to_other = np.zeros((4, 4))  # reordered index -> other's index
    to_other[3, 3] = 1.0
    for r, a in enumerate(axes):
        sign = signed[r, a]
        to_other[a, r] = sign
        to_other[a, 3] = 0.0 if sign > 0 else array.shape[r] - 1
    return Volume(np.ascontiguousarray(array), np.asarray(other.affine, float) @ to_other, other.source)


def on_grid(reference: Volume, other: Volume) -> Volume:
    """``other`` on ``reference``'s grid (see ``align_grid``): the one rule every mask reader applies.

    Returns:
        ``other`` itself, or a new Volume with its array reordered exactly into the reference's voxel order.

    Raises:
        InputError: naming ``other``'s file, ``grid differs from the image <reference file>: <how>``.
    """
    aligned, mismatch = align_grid(reference, other)
    if aligned is None:
        raise InputError(other.source, f"grid differs from the image {reference.source}: {mismatch}")
    return aligned


def voxel_volume_ml(affine: Affine) -> float:
    """The volume of one voxel in mL (the absolute determinant of the affine's 3 x 3 part, in mm^3 / 1000)."""
    return abs(float(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3]))) / 1000.0
