"""Surface distances (``evaluation.surface``): hand-derived cases, the empty-mask conventions, and a
cross-check against a second method (scipy's distance transform on the whole image)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from hepaseg.evaluation.surface import assd_hd95


def test_shifted_cube_by_hand():
    # A: 3x3x3 cube at i 0..2; B: the same cube at i 1..3; spacing 2 mm along i, 1 mm along j, k.
    # 26 surface voxels each (all but the centre). From A: the i=0 face (9) is 2 mm from B's face
    # at i=1; the i=1 layer (8) and 8 voxels of the i=2 face lie on B's surface (0); A's (2,1,1) is
    # B's centre, 1 mm from B's surface along j. Sum 9*2 + 1 = 19, the same from B by symmetry.
    a = np.zeros((4, 3, 3), bool)
    b = a.copy()
    a[0:3] = True
    b[1:4] = True
    assd, hd95 = assd_hd95(a, b, (2.0, 1.0, 1.0))
    assert assd == pytest.approx(38 / 52)
    # sorted distances: 16 x 0, 1 x 1, 9 x 2; the 95th percentile (position 23.75 of 0..25) is 2
    assert hd95 == pytest.approx(2.0)


def test_single_voxels_use_the_spacing():
    a = np.zeros((5, 2, 4), bool)
    b = a.copy()
    a[0, 0, 0] = True
    b[3, 0, 2] = True
    assd, hd95 = assd_hd95(a, b, (1.5, 1.0, 2.5))
    expected = math.hypot(3 * 1.5, 2 * 2.5)
    assert (assd, hd95) == (pytest.approx(expected), pytest.approx(expected))


def test_the_95th_percentile_ignores_one_outlier():
    # A: a line of 20 voxels; B: the line plus one voxel 10 mm away. A -> B: 20 zeros; B -> A: 20
    # zeros and 10. ASSD 10 / 41; HD95: position 0.95 * 20 = 19 of the 21 sorted values is 0.
    a = np.zeros((20, 11, 1), bool)
    a[:, 0, 0] = True
    b = a.copy()
    b[0, 10, 0] = True
    assd, hd95 = assd_hd95(a, b, (1.0, 1.0, 1.0))
    assert assd == pytest.approx(10 / 41)
    assert hd95 == 0.0


def test_empty_mask_conventions():
    empty = np.zeros((4, 4, 3), bool)
    mask = empty.copy()
    mask[1:3, 1:3, 1] = True
    assert assd_hd95(empty, empty, (1, 1, 1)) == (0.0, 0.0)
    assert all(math.isnan(v) for v in assd_hd95(mask, empty, (1, 1, 1)))
    assert all(math.isnan(v) for v in assd_hd95(empty, mask, (1, 1, 1)))
    assert assd_hd95(mask, mask, (0.7, 0.7, 3.0)) == (0.0, 0.0)


def _by_distance_transform(a: np.ndarray, b: np.ndarray, spacing) -> tuple[float, float]:
    """The same definitions, computed on the whole image with scipy's exact Euclidean distance transform."""
    cross = ndimage.generate_binary_structure(3, 1)
    surface_a = a & ~ndimage.binary_erosion(a, cross, border_value=0)
    surface_b = b & ~ndimage.binary_erosion(b, cross, border_value=0)
    to_b = ndimage.distance_transform_edt(~surface_b, sampling=spacing)[surface_a]
    to_a = ndimage.distance_transform_edt(~surface_a, sampling=spacing)[surface_b]
    assd = (to_b.sum() + to_a.sum()) / (to_b.size + to_a.size)
    return float(assd), float(max(np.percentile(to_b, 95), np.percentile(to_a, 95)))


@pytest.mark.parametrize("seed", range(4))
def test_matches_the_distance_transform(seed):
    rng = np.random.default_rng(seed)
    spacing = (0.7, 0.9, 2.5)
    a = ndimage.binary_dilation(rng.random((14, 12, 7)) < 0.04, iterations=1)
    b = ndimage.binary_dilation(rng.random((14, 12, 7)) < 0.04, iterations=1)
    expected = _by_distance_transform(a, b, spacing)
    assert assd_hd95(a, b, spacing) == (pytest.approx(expected[0]), pytest.approx(expected[1]))
    # Fortran-ordered input (the order read_volume returns) gives the same values
    assert assd_hd95(np.asfortranarray(a), b, spacing) == (pytest.approx(expected[0]), pytest.approx(expected[1]))
