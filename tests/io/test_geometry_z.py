"""The prepared grid resampled along z as well (``plan_grid(..., slice_mm=...)``, the isotropic 3D
variant): positions, round trips, the in-box map, old records, and nothing changed without it."""

from __future__ import annotations

import numpy as np
import pytest
from nibabel.orientations import apply_orientation

from hepaseg.io.geometry import (
    GridMap,
    plan_grid,
    resample_axis_linear,
    to_original,
    to_original_in_box,
    to_prepared,
)


def _affine(spacing, origin=(10.0, -20.0, 5.0), flip_z=False):
    a = np.diag([*spacing, 1.0])
    a[:3, 3] = origin
    if flip_z:
        a[2, 2] = -spacing[2]
    return a


def test_prepared_affine_puts_voxel_centres_where_the_pixel_area_convention_says():
    """4 mm slices to 2 mm: prepared slice p covers canonical [p / 2 - 0.5, p / 2], centre at canonical
    index 0.5 p - 0.25, i.e. z = 5 + 4 (0.5 p - 0.25) = 4 + 2 p mm (worked by hand)."""
    grid = plan_grid((10, 8, 5), _affine((1.0, 1.0, 4.0)), 1.0, slice_mm=2.0)
    assert grid.ratio == (1.0, 1.0, 0.5)
    assert grid.prepared_shape == (10, 8, 10)
    pa = grid.prepared_affine
    for p in range(10):
        assert pa[2] @ np.array([0, 0, p, 1.0]) == pytest.approx(4.0 + 2.0 * p)
    assert grid.prepared_spacing == pytest.approx((1.0, 1.0, 2.0))
    # 1 mm slices to 2 mm (ratio 2): prepared p at canonical 2 p + 0.5, z = 5 + 2 p + 0.5 mm
    down = plan_grid((10, 8, 9), _affine((1.0, 1.0, 1.0)), 1.0, slice_mm=2.0)
    assert down.ratio[2] == 2.0 and down.prepared_shape[2] == 4  # round(9 / 2) = 4 (banker's rounding of 4.5)
    assert down.prepared_affine[2, 3] == pytest.approx(5.5) and down.prepared_affine[2, 2] == pytest.approx(2.0)


@pytest.mark.parametrize("flip_z", [False, True])
def test_a_linear_function_of_z_survives_the_z_resampling_exactly(flip_z):
    """Linear interpolation reproduces a linear function: the prepared values are the function at the
    prepared affine's voxel centres, and the way back gives the original values (away from the ends)."""
    shape = (6, 5, 12)
    affine = _affine((1.0, 1.0, 1.0), flip_z=flip_z)
    grid = plan_grid(shape, affine, 1.0, slice_mm=2.0)  # z ratio 2
    assert grid.ratio[2] == 2.0
    world_z = lambda aff, shp: (aff[2, :3] @ np.indices(shp).reshape(3, -1) + aff[2, 3]).reshape(shp)  # noqa: E731
    image = 0.3 * world_z(affine, shape) + 1.0
    prepared = to_prepared(image, grid)
    assert prepared.shape == grid.prepared_shape == (6, 5, 6)
    np.testing.assert_allclose(prepared, 0.3 * world_z(grid.prepared_affine, prepared.shape) + 1.0, atol=1e-5)
    back = to_original(prepared, grid)
    assert back.shape == shape
    inner = slice(1, -1)  # the outer half-voxel lies beyond the last prepared centre: edge value there
    np.testing.assert_allclose(back[:, :, inner], image[:, :, inner], atol=1e-5)


def test_a_mask_goes_to_2mm_slices_and_back():
    shape = (30, 30, 16)
    idx = np.indices(shape)
    mask = ((idx[0] - 15) ** 2 + (idx[1] - 14) ** 2 + ((idx[2] - 8) * 4.0) ** 2 / 1.5 <= 81).astype(np.uint8)
    grid = plan_grid(shape, _affine((1.0, 1.0, 4.0)), 1.0, slice_mm=2.0)
    prepared = to_prepared(mask, grid, mask=True)
    assert prepared.shape == (30, 30, 32) and set(np.unique(prepared)) <= {0, 1}
    back = to_original(prepared, grid, mask=True)
    assert back.shape == shape and back.dtype == np.uint8
    np.testing.assert_array_equal(back, mask)  # 4 -> 2 -> 4 mm: each original centre falls between two copies


def test_the_in_box_map_equals_the_full_map_along_z_too():
    rng = np.random.default_rng(3)
    shape = (20, 18, 9)
    grid = plan_grid(shape, _affine((1.3, 0.8, 3.0)), 1.0, slice_mm=1.5)
    assert grid.ratio[2] == 0.5
    box = (np.array([5, 4, 6]), np.array([14, 11, 12]))
    array = np.zeros(grid.prepared_shape, np.float32)
    array[5:14, 4:11, 6:12] = rng.random((9, 7, 6))
    np.testing.assert_array_equal(to_original_in_box(array, grid, box), to_original(array, grid))


def test_a_record_with_a_two_entry_ratio_still_loads_as_unresampled_z():
    grid = plan_grid((12, 10, 7), _affine((0.8, 0.8, 3.0)), 1.0)
    record = grid.to_dict()
    assert len(record["ratio"]) == 3 and record["ratio"][2] == 1.0
    record["ratio"] = record["ratio"][:2]
    old = GridMap.from_dict(record)
    assert old.ratio == grid.ratio
    image = np.random.default_rng(0).random((12, 10, 7)).astype(np.float32)
    np.testing.assert_array_equal(to_prepared(image, old), to_prepared(image, grid))


def test_without_slice_spacing_the_grid_is_bit_identical_to_in_plane_only_resampling():
    """The computation as it was before z could be resampled, written out: axes 0 and 1 only."""
    shape = (17, 13, 6)
    affine = _affine((0.74, 0.9, 5.0))
    image = np.random.default_rng(1).random(shape).astype(np.float32)
    grid = plan_grid(shape, affine, 1.0)
    assert grid.ratio[2] == 1.0 and grid.prepared_shape[2] == 6
    assert plan_grid(shape, affine, 1.0, slice_mm=5.0).prepared_shape == grid.prepared_shape  # ratio exactly 1
    out = apply_orientation(image, grid.ornt).astype(np.float32)
    for axis in (0, 1):
        coords = (np.arange(grid.prepared_shape[axis]) + 0.5) * grid.ratio[axis] - 0.5
        out = resample_axis_linear(out, axis, coords)
    assert np.array_equal(to_prepared(image, grid), out)
    assert grid.prepared_affine[2, 2] == 5.0 and grid.prepared_affine[2, 3] == 5.0
