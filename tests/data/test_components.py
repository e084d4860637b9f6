"""The one lesion labelling and numbering (``data.components``), on tiny masks numbered by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hepaseg.data.components import label, number_by_size
from hepaseg.inference.lesion_table import lesions


def _three_lesions() -> np.ndarray:
    """(6, 5, 3): a single voxel at (4, 0, 0) (first in scan order, i fastest), a 2 x 2 x 1 square at
    (0..1, 2..3, 1), a single voxel at (1, 0, 2) (last); none touch, even diagonally."""
    mask = np.zeros((6, 5, 3), np.uint8)
    mask[4, 0, 0] = 1
    mask[0:2, 2:4, 1] = 1
    mask[1, 0, 2] = 1
    return mask


def test_labels_in_scan_order_and_numbers_by_size():
    mask = _three_lesions()
    labels, n = label(mask)
    # scan order, i fastest: (4, 0, 0) has flat index 4; the square starts at (0, 2, 1) = 12 + 30 = 42;
    # (1, 0, 2) = 1 + 60 = 61
    assert n == 3 and (labels[4, 0, 0], labels[0, 2, 1], labels[1, 0, 2]) == (1, 2, 3)
    numbered, voxels = number_by_size(mask)
    # largest first (the square: 4 voxels), then the two single voxels in scan order
    assert voxels.tolist() == [4, 1, 1]
    assert (numbered[0, 2, 1], numbered[4, 0, 0], numbered[1, 0, 2]) == (1, 2, 3)
    assert set(np.unique(numbered[mask == 0])) == {0} and (numbered[0:2, 2:4, 1] == 1).all()
    empty, none = number_by_size(np.zeros((2, 2, 2)))
    assert not empty.any() and none.size == 0
    with pytest.raises(ValueError, match="connectivity"):
        label(mask, 8)


def test_lesions_csv_numbers_as_the_helper_does():
    mask = _three_lesions()
    rows = lesions("c", mask, None, np.eye(4))
    assert [(r.lesion, r.voxels) for r in rows] == [(1, 4), (2, 1), (3, 1)]
    # lesion 2 is the single voxel first in scan order, at (4, 0, 0): its centroid (identity affine)
    assert (rows[1].centroid_ras_x_mm, rows[1].centroid_ras_y_mm, rows[1].centroid_ras_z_mm) == (4.0, 0.0, 0.0)
    assert (rows[2].centroid_ras_x_mm, rows[2].centroid_ras_y_mm, rows[2].centroid_ras_z_mm) == (1.0, 0.0, 2.0)
