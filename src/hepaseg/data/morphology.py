"""Mask morphology on a prepared grid in millimetres: the liver dilated by a cylinder.

Training's loss weight mask (the liver dilated by ``patch.loss_dilation_mm``) and the fully automatic
prediction's search region (the predicted liver dilated by ``infer.auto_liver_margin_mm``) are both
this dilation, so the tumour model predicts exactly where it was trained.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

_FAR = 1e9  # "mm" between slices, so that the in-plane distance transform never crosses slices


def dilation_reach(spacing: Sequence[float], radius_mm: float, slices: int) -> tuple[int, int, int]:
    """Voxels per side the dilation of ``dilate_liver`` can reach along (x, y, z)."""
    return (int(radius_mm // spacing[0]), int(radius_mm // spacing[1]), int(slices))


def dilate_liver(liver: NDArray, spacing: Sequence[float], radius_mm: float, slices: int) -> NDArray[np.bool_]:
    """The liver mask dilated by a cylinder: a disc of ``radius_mm`` in-plane, +- ``slices`` in z.

    Computed on the mask's bounding box grown by ``dilation_reach`` (nothing beyond it can be reached).

    Args:
        liver: (x, y, z) mask.
        spacing: (x, y, z) voxel size in mm; only x and y are used.
    """
    mask = np.asarray(liver) > 0
    out = np.zeros(mask.shape, dtype=bool)
    if not mask.any():
        return out
    reach = dilation_reach(spacing, radius_mm, slices)
    found = np.nonzero(mask)
    box = tuple(slice(max(0, int(f.min()) - r), int(f.max()) + r + 1) for f, r in zip(found, reach))
    distance = ndimage.distance_transform_edt(~mask[box], sampling=(spacing[0], spacing[1], _FAR))
    disc = distance <= radius_mm
    if slices > 0:
        disc = ndimage.maximum_filter1d(disc, size=2 * slices + 1, axis=2, mode="constant")
    out[box] = disc
    return out
