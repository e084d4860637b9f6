"""The per-lesion table on hand-made masks: counts, volume, diameter, centroid, probability, CSV."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hepaseg.inference.lesion_table import COLUMNS, lesions, read_csv, slice_axis, to_csv, write_csv


def _affine(spacing, origin=(0.0, 0.0, 0.0), flips=(1, 1, 1)) -> np.ndarray:
    a = np.diag([*(f * s for f, s in zip(flips, spacing)), 1.0])
    a[:3, 3] = origin
    return a


def test_square_lesion_size_diameter_centroid_and_probability():
    mask = np.zeros((20, 20, 6), np.uint8)
    mask[2:12, 4:14, 1:4] = 1  # 10 x 10 voxels in-plane, 3 slices
    prob = np.where(mask > 0, 0.75, 0.1).astype(np.float32)
    prob[2, 4, 1] = 0.0  # lowers the mean over the 300 voxels by 0.75 / 300
    affine = _affine((0.5, 0.5, 3.0), origin=(-10.0, 20.0, 5.0), flips=(-1, 1, 1))
    (lesion,) = lesions("c1", mask, prob, affine)
    assert (lesion.case, lesion.lesion, lesion.voxels) == ("c1", 1, 300)
    assert lesion.volume_ml == pytest.approx(300 * 0.5 * 0.5 * 3.0 / 1000)
    # Edge to edge: the square is 10 voxels x 0.5 mm = 5 mm a side, so its diagonal is 5 sqrt(2) mm.
    assert lesion.diameter_mm == pytest.approx(5 * math.sqrt(2))
    # Voxel-centre mean (6.5, 8.5, 2) -> RAS: x = -10 - 0.5 * 6.5, y = 20 + 0.5 * 8.5, z = 5 + 3 * 2.
    assert (lesion.centroid_ras_x_mm, lesion.centroid_ras_y_mm, lesion.centroid_ras_z_mm) == pytest.approx(
        (-13.25, 24.25, 11.0))
    assert lesion.mean_probability == pytest.approx(0.75 - 0.75 / 300)


def test_diameter_is_the_longest_over_slices_and_ignores_z():
    mask = np.zeros((30, 30, 5), np.uint8)
    mask[5, 5:25, 0] = 1  # a 20-voxel line on slice 0: 20 x 1 voxels -> sqrt(20² + 1²) mm edge to edge
    mask[5, 5, 1:5] = 1  # a column through four slices: long in z, but z is not in-plane
    (lesion,) = lesions("c", mask, None, np.eye(4))
    assert lesion.diameter_mm == pytest.approx(math.hypot(20, 1))
    assert math.isnan(lesion.mean_probability)
    single = np.zeros((3, 3, 3), np.uint8)
    single[1, 1, 1] = 1
    assert lesions("c", single, None, _affine((0.8, 0.6, 4.0)))[0].diameter_mm == pytest.approx(1.0)


def test_26_connectivity_order_and_empty():
    mask = np.zeros((10, 10, 10), np.uint8)
    mask[0, 0, 0] = mask[1, 1, 1] = 1  # diagonal neighbours: one lesion with 26-connectivity
    mask[5:8, 5:8, 5:8] = 1  # a larger lesion, listed first
    rows = lesions("c", mask, None, np.eye(4))
    assert [(r.lesion, r.voxels) for r in rows] == [(1, 27), (2, 2)]
    assert len(lesions("c", mask, None, np.eye(4), connectivity=6)) == 3
    assert lesions("c", np.zeros((4, 4, 4)), None, np.eye(4)) == []


def test_slice_axis_follows_the_superior_axis_of_the_affine():
    # Voxel axis 0 points superior: in-plane are axes 1 and 2.
    affine = np.array([[0, 1.0, 0, 0], [0, 0, 1.0, 0], [3.0, 0, 0, 0], [0, 0, 0, 1]])
    assert slice_axis(affine) == 0
    mask = np.zeros((4, 10, 10), np.uint8)
    mask[0, 0:3, 0:4] = 1  # 3 x 4 voxels of 1 mm in the plane of axes 1, 2
    assert lesions("c", mask, None, affine)[0].diameter_mm == pytest.approx(5.0)


def test_csv_round_trip(tmp_path):
    mask = np.zeros((8, 8, 3), np.uint8)
    mask[1:3, 1:3, 1] = 1
    mask[5:8, 5:8, 0:2] = 1
    rows = lesions("case 7", mask, np.full(mask.shape, 0.625, np.float32), _affine((0.7, 0.7, 2.5)))
    path = write_csv(rows, tmp_path / "out" / "lesions.csv")
    text = path.read_text()
    assert text.splitlines()[0] == ",".join(COLUMNS) and "centroid_ras_x_mm" in text
    back = read_csv(path)
    assert [r.voxels for r in back] == [18, 4] and back[0].case == "case 7"
    for a, b in zip(rows, back):
        assert b.volume_ml == pytest.approx(a.volume_ml, rel=1e-5)
        assert b.centroid_ras_z_mm == pytest.approx(a.centroid_ras_z_mm, rel=1e-5)
    assert to_csv([]) == ",".join(COLUMNS) + "\n"
