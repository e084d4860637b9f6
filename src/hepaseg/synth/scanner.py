"""Scan geometry of one case: field of view, voxel size, slices, and the orientation written to file.

The anatomy is rendered on a canonical grid (i, j, k) = patient (x right, y anterior, z superior).
The file stores the same voxels with the in-plane axes possibly swapped and any axis flipped
(RAS-, LPS- and LAS-style arrays all occur in practice); the affine always maps file indices to
RAS+ mm, and the slice axis is always the file's third axis (axial slices).
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from .anatomy import Anatomy
from .raster import Grid
from .spec import CohortSpec


@dataclass(frozen=True)
class Scan:
    """Where the canonical grid sits in the scanner and how it is stored.

    Attributes:
        grid: canonical grid (patient frame).
        axes: file axis a holds canonical axis ``axes[a]``; ``axes[2] == 2`` (axial slices).
        flips: file axis a runs against its canonical axis.
        table: patient-frame to scanner-frame translation (mm).
    """

    grid: Grid
    axes: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    table: tuple[float, float, float]

    @property
    def file_shape(self) -> tuple[int, int, int]:
        return tuple(self.grid.shape[a] for a in self.axes)  # type: ignore[return-value]

    def to_file(self, array: NDArray) -> NDArray:
        """Canonical (i, j, k) array -> the file's voxel order (a Fortran-ordered copy, the NIfTI
        on-disk order, so that writing needs no further copy)."""
        out = np.transpose(array, self.axes)
        flip = tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)
        return np.asfortranarray(out[flip])

    def file_index(self, canonical_index) -> NDArray[np.float64]:
        """Canonical voxel index/indices (..., 3) -> file voxel index/indices."""
        c = np.asarray(canonical_index, dtype=np.float64)
        out = np.stack([c[..., a] for a in self.axes], axis=-1)
        n = np.asarray(self.file_shape, dtype=np.float64)
        return np.where(self.flips, n - 1 - out, out)

    def affine(self) -> NDArray[np.float64]:
        """(4, 4) file voxel index -> RAS+ mm (scanner frame)."""
        g = self.grid
        canonical = np.diag([*g.spacing, 1.0])
        canonical[:3, 3] = np.add(g.origin, self.table)
        to_canonical = np.zeros((4, 4))
        to_canonical[3, 3] = 1.0
        for a, (src, flip) in enumerate(zip(self.axes, self.flips)):
            to_canonical[src, a] = -1.0 if flip else 1.0
            to_canonical[src, 3] = self.file_shape[a] - 1 if flip else 0.0
        return canonical @ to_canonical

    def orientation(self) -> str:
        """Axis codes of the file, e.g. ``"RAS"`` or ``"LPS"`` (nibabel's ``aff2axcodes``)."""
        return "".join(nib.aff2axcodes(self.affine()))


def _matrix(fov_mm: float, pixel_mm: float, most: int) -> int:
    """Matrix size: the field of view in pixels, rounded up to a multiple of 16, at most ``most``."""
    return int(min(most, max(32, 16 * int(np.ceil(fov_mm / pixel_mm / 16)))))


def draw_scan(rng: np.random.Generator, spec: CohortSpec, anat: Anatomy) -> Scan:
    """Draw the scan geometry so that the body fits in-plane and the liver along z.

    The pixel size is drawn from ``spec.inplane_mm`` and raised where the body would not fit
    ``spec.matrix_max`` pixels; the slice spacing from ``spec.slice_mm``; the slice count covers the
    liver plus 10-40 mm of lung above and 10-60 mm below, clipped to ``spec.slices``.
    """
    body = anat.body
    width = 2 * body.a + rng.uniform(10, 40)
    depth = body.b_ant + body.b_post + rng.uniform(10, 40)
    fov_x = max(width, rng.uniform(330, 420))
    fov_y = max(depth, fov_x * (1.0 if rng.random() < 0.5 else rng.uniform(0.75, 0.9)))
    pixel = rng.uniform(*spec.inplane_mm)
    pixel = max(pixel, fov_x / spec.matrix_max, fov_y / spec.matrix_max)
    nx, ny = _matrix(fov_x, pixel, spec.matrix_max), _matrix(fov_y, pixel, spec.matrix_max)

    dz = float(rng.uniform(*spec.slice_mm))
    above, below = rng.uniform(10, 40), rng.uniform(10, 60)
    nz = int(np.clip(np.ceil((anat.span_mm + above + below) / dz), *spec.slices))
    centre = (rng.uniform(-15, 15), (body.b_ant - body.b_post) / 2 + rng.uniform(-15, 15))
    origin = (centre[0] - (nx - 1) / 2 * pixel, centre[1] - (ny - 1) / 2 * pixel,
              anat.diaphragm.right[2] + above - (nz - 1) * dz)
    grid = Grid((nx, ny, nz), (float(pixel), float(pixel), dz), tuple(float(o) for o in origin))

    axes = (1, 0, 2) if rng.random() < 0.25 else (0, 1, 2)
    flips = tuple(bool(f) for f in rng.random(3) < (0.5, 0.5, 0.3))
    table = tuple(float(t) for t in rng.uniform((-20, -40, -400), (20, 40, 100)))
    return Scan(grid, axes, flips, table)  # type: ignore[arg-type]
