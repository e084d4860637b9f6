"""The radiological axial view of a volume, for pictures (the report's Fig. 3, a prediction's overview).

A volume is turned (permutation / flips only, ``geometry.canonical_orientation``) to its closest
canonical RAS+ grid, whose axis 2 is the slice axis of an axial scan; an axial slice ``k`` of that
grid is shown as radiologists look at it: rows anterior first, columns the patient's right first
(patient right on the image's left, anterior at the top).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel.orientations import apply_orientation
from numpy.typing import NDArray

from .geometry import canonical_orientation
from .volumes import Volume

Box = tuple[slice, slice]  # in-plane (x, y) part of a canonical slice
WHOLE: Box = (slice(None), slice(None))


@dataclass(frozen=True, eq=False)
class AxialView:
    """How the arrays of one volume's grid are turned into radiological axial slices.

    Attributes:
        ornt: (3, 2) nibabel orientation transform, the file's grid -> closest canonical RAS+.
        spacing: voxel size in mm along the canonical (x, y, z).
        shape: the file's (i, j, k) shape.
    """

    ornt: NDArray[np.float64]
    spacing: NDArray[np.float64]
    shape: tuple[int, int, int]

    @classmethod
    def of(cls, volume: Volume) -> AxialView:
        ornt, spacing = canonical_orientation(volume)
        return cls(ornt, spacing, volume.shape)

    @property
    def aspect(self) -> float:
        """Displayed pixel height / width (mm / mm), for ``imshow(aspect=...)``."""
        return float(self.spacing[1] / self.spacing[0])

    def canonical(self, array: NDArray) -> NDArray:
        """An (i, j, k) array of the volume's grid on the canonical (x, y, z) grid."""
        return apply_orientation(np.asarray(array), self.ornt)

    def canonical_index(self, ijk: NDArray) -> NDArray[np.float64]:
        """A (possibly fractional) voxel position (i, j, k) of the file -> (x, y, z) on the canonical grid."""
        out = np.empty(3)
        for axis, (target, flip) in enumerate(self.ornt):
            value = float(ijk[axis])
            out[int(target)] = self.shape[axis] - 1 - value if flip < 0 else value
        return out

    def file_slice(self, k: int) -> tuple[int, int]:
        """Canonical slice ``k`` as (voxel axis 0/1/2 of the file, index along it), to find it in a viewer."""
        axis = int(np.flatnonzero(self.ornt[:, 0] == 2)[0])
        return axis, int(k if self.ornt[axis, 1] > 0 else self.shape[axis] - 1 - k)

    @staticmethod
    def display(plane: NDArray, box: Box = WHOLE) -> NDArray:
        """A canonical (x, y) slice, cropped to ``box``, as rows anterior first and columns patient right first."""
        return plane[box].T[::-1, ::-1]


def plane_box(area: NDArray[np.bool_], margin: int) -> Box:
    """The in-plane box of the ``True`` pixels of a canonical (x, y) ``area`` plus ``margin`` pixels,
    clipped to the plane; the whole plane where ``area`` is empty."""
    if not area.any():
        return WHOLE
    xs, ys = np.nonzero(area)
    return (slice(max(int(xs.min()) - margin, 0), int(xs.max()) + margin + 1),
            slice(max(int(ys.min()) - margin, 0), int(ys.max()) + margin + 1))
