"""Lesions as connected components of a mask: the one labelling, and the one lesion numbering.

``label`` numbers the components 1..n in scan order (i fastest, then j, then k: the NIfTI storage
order, and the memory order of every array ``hepaseg.io`` reads) of each one's first voxel; the
lesion-wise evaluation (``evaluation.matching``) works in that order. ``number_by_size`` renumbers
them as hepaseg's outputs number lesions (``lesions.csv``, the DICOM objects): largest first, equal
sizes in scan order.
"""

from __future__ import annotations

import cc3d
import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..checks import CONNECTIVITIES



def label(mask: ArrayLike, connectivity: int = 26) -> tuple[NDArray[np.uint32], int]:
    """Connected components of a 3D mask.

    Args:
        mask: (i, j, k) array; non-zero is foreground.
        connectivity: 6, 18 or 26.

    Returns:
        ``(labels, n)``: uint32 labels of the mask's shape (Fortran memory order), 0 background and
        1..n in scan order (i fastest) of each lesion's first voxel; n the number of lesions.
        A Fortran-ordered mask (as read from files) is labelled without a copy.
    """
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of {CONNECTIVITIES}, got {connectivity}")
    array = np.asarray(mask)
    foreground = np.asfortranarray(array if array.dtype == np.bool_ else array != 0)
    # The transpose of a Fortran-ordered array is C-ordered: cc3d numbers it in C order, which is
    # the original's scan order with i fastest.
    labels, n = cc3d.connected_components(foreground.T, connectivity=connectivity, return_N=True,
                                          out_dtype=np.uint32)
    return labels.T, int(n)


def scan_order(array: ArrayLike) -> NDArray:
    """A 1-D view (a copy only for a non-Fortran-ordered input) of ``array`` in scan order, i fastest."""
    return np.asfortranarray(array).ravel(order="F")


def number_by_size(mask: ArrayLike, connectivity: int = 26) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
    """The lesions of ``mask`` numbered 1..n by size, largest first (equal sizes: scan order).

    Returns:
        ``(labels, voxels)``: uint32 labels of the mask's shape, 0 background; ``voxels[m - 1]`` the
        size of lesion ``m`` in voxels (non-increasing).
    """
    labels, n = label(mask, connectivity)
    sizes = np.bincount(scan_order(labels), minlength=n + 1)[1:]
    order = np.lexsort((np.arange(n), -sizes))  # scan-order labels, largest first
    renumber = np.zeros(n + 1, dtype=np.uint32)
    renumber[order + 1] = np.arange(1, n + 1, dtype=np.uint32)
    return renumber[labels], sizes[order].astype(np.int64)
