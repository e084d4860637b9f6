"""The grids of ``io.geometry``: the in-plane resampling grid (masks to 1 mm and back, world positions
kept), and a mask on the image's grid in another axis order (reordered exactly, or today's error)."""

from __future__ import annotations

import numpy as np
import pytest

from hepaseg.errors import InputError
from hepaseg.io.geometry import align_grid, on_grid, plan_grid, to_original, to_prepared
from hepaseg.io.volumes import Volume


def _affine(spacing, flips=(1, 1, 1), angle=0.0, perm=(0, 1, 2), origin=(10.0, -20.0, 5.0)):
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag(flips)
    rot = rot[:, list(perm)]
    a = np.eye(4)
    a[:3, :3] = rot * np.asarray(spacing)[None, :]
    a[:3, 3] = origin
    return a


GRIDS = [
    ((0.74, 0.74, 2.0), {}),
    ((1.76, 1.3, 5.0), {"flips": (-1, -1, 1)}),
    ((0.9, 0.9, 3.0), {"flips": (1, -1, -1), "angle": 0.25}),
    ((1.2, 1.2, 4.0), {"perm": (1, 0, 2), "flips": (-1, 1, 1)}),
]


def _dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def _ellipsoids(shape, spacing, rng, n=4):
    """Binary mask of n random ellipsoids with radii >= 3 mm in-plane and >= 1.5 slices in z."""
    idx = np.indices(shape).astype(np.float64)
    mask = np.zeros(shape, bool)
    for _ in range(n):
        centre = rng.uniform(0.3, 0.7, 3) * np.array(shape)
        radii_mm = rng.uniform(4, 12, 3)
        radii_mm[2] = max(radii_mm[2], 1.6 * spacing[2])
        d = sum(((idx[a] - centre[a]) * spacing[a] / radii_mm[a]) ** 2 for a in range(3))
        mask |= d <= 1
    return mask


@pytest.mark.parametrize("spacing,kw", GRIDS)
def test_mask_to_1mm_and_back_keeps_dice(spacing, kw):
    shape = (60, 50, 12)
    grid = plan_grid(shape, _affine(spacing, **kw), 1.0)
    np.testing.assert_allclose(sorted(grid.prepared_spacing[:2]), [1.0, 1.0], atol=1e-9)
    mask = _ellipsoids(shape, np.array(spacing)[list(kw.get("perm", (0, 1, 2)))], np.random.default_rng(7))
    prepared = to_prepared(mask, grid, mask=True)
    assert prepared.dtype == np.uint8 and set(np.unique(prepared)) <= {0, 1}
    back = to_original(prepared, grid, mask=True)
    assert back.shape == shape
    assert _dice(back.astype(bool), mask) >= 0.98


@pytest.mark.parametrize("spacing,kw", GRIDS)
def test_prepared_affine_places_values_at_their_world_position(spacing, kw):
    """A linear function of world position survives in-plane linear resampling exactly."""
    shape = (40, 36, 6)
    affine = _affine(spacing, **kw)
    grid = plan_grid(shape, affine, 1.0)
    coeffs = np.array([0.3, -0.7, 0.2])
    world = np.einsum("ij,jxyz->ixyz", affine[:3, :3], np.indices(shape)) + affine[:3, 3, None, None, None]
    image = np.einsum("i,ixyz->xyz", coeffs, world)
    prepared = to_prepared(image, grid)
    pshape = grid.prepared_shape
    assert prepared.shape == pshape
    assert pshape[2] == 6, "z must never be resampled"
    pa = grid.prepared_affine
    interior = tuple(slice(2, n - 2) for n in pshape[:2]) + (slice(None),)
    pworld = np.einsum("ij,jxyz->ixyz", pa[:3, :3], np.indices(pshape)) + pa[:3, 3, None, None, None]
    expected = np.einsum("i,ixyz->xyz", coeffs, pworld)
    np.testing.assert_allclose(prepared[interior], expected[interior], atol=1e-3)
    assert pa[2, 2] > 0 and pa[0, 0] != 0, "prepared grid is canonical RAS (z along S)"


# --- a mask on the image's grid in another axis order (``align_grid`` / ``on_grid``) -------------

REF_SHAPE = (2, 3, 4)


def _reference() -> Volume:
    return Volume(np.arange(24).reshape(REF_SHAPE), _affine((0.8, 0.9, 3.0), angle=0.3), "image.nii.gz")


def _reordered_by_hand(ref: Volume, shift=(0.0, 0.0, 0.0)) -> Volume:
    """other[p, q, r] = ref[1 - q, r, p]: axis 0 is the reference's k, axis 1 its i flipped, axis 2 its j.

    Built voxel by voxel; its affine maps (p, q, r) to the world position of the reference's voxel
    (1 - q, r, p) (plus ``shift`` in mm), i.e. ref.affine @ M with M written out below.
    """
    n_i, n_j, n_k = REF_SHAPE
    other = np.empty((n_k, n_i, n_j), int)
    for p in range(n_k):
        for q in range(n_i):
            for r in range(n_j):
                other[p, q, r] = ref.array[n_i - 1 - q, r, p]
    m = np.array([[0, -1, 0, n_i - 1], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    affine = ref.affine @ m
    affine[:3, 3] += shift
    return Volume(other, affine, "mask.nii.gz")


def test_a_mask_in_another_axis_order_is_reordered_exactly():
    ref = _reference()
    other = _reordered_by_hand(ref)
    assert np.linalg.det(other.affine[:3, :3]) < 0 < np.linalg.det(ref.affine[:3, :3])  # left-handed
    aligned = on_grid(ref, other)
    np.testing.assert_array_equal(aligned.array, ref.array)
    np.testing.assert_allclose(aligned.affine, ref.affine)
    assert aligned.source == "mask.nii.gz"
    same = Volume(ref.array.copy(), ref.affine.copy(), "same.nii.gz")
    assert align_grid(ref, same) == (same, None), "the same axis order: the volume itself"


def test_a_flip_of_one_axis_alone_is_reordered():
    ref = _reference()
    flip = np.eye(4)
    flip[2, 2], flip[2, 3] = -1.0, REF_SHAPE[2] - 1  # k -> 3 - k: slices stored the other way
    other = Volume(ref.array[:, :, ::-1], ref.affine @ flip, "flipped.nii.gz")
    np.testing.assert_array_equal(on_grid(ref, other).array, ref.array)


@pytest.mark.parametrize("shift", [(0.4, 0.0, 0.0), (0.0, 0.0, 3.0)])
def test_a_reordered_grid_that_is_moved_keeps_today_s_message(shift):
    ref = _reference()
    other = _reordered_by_hand(ref, shift)
    aligned, how = align_grid(ref, other)
    assert aligned is None and how == "shape (4, 2, 3) vs (2, 3, 4)"
    with pytest.raises(InputError) as info:
        on_grid(ref, other)
    assert info.value.path == "mask.nii.gz"
    assert info.value.message == "grid differs from the image image.nii.gz: shape (4, 2, 3) vs (2, 3, 4)"


def test_a_moved_or_rotated_grid_in_the_same_order_stays_an_error():
    ref = _reference()
    moved = ref.affine.copy()
    moved[0, 3] += 0.5
    with pytest.raises(InputError, match=r"^moved.nii.gz: grid differs from the image image.nii.gz: origin"):
        on_grid(ref, Volume(ref.array, moved, "moved.nii.gz"))
    rotated = Volume(ref.array, _affine((0.8, 0.9, 3.0), angle=0.3 + np.pi / 4), "rotated.nii.gz")
    with pytest.raises(InputError, match="direction"):
        on_grid(ref, rotated)
