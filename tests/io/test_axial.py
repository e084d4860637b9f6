"""The radiological axial view (``io.axial``): patient right on the image's left, anterior at the
top, whatever the file's axis order; expectations from the voxels' world (RAS+) positions."""

from __future__ import annotations

import numpy as np
import pytest

from hepaseg.io.axial import AxialView, plane_box
from hepaseg.io.volumes import Volume

SHAPE = (12, 10, 7)


def _affines():
    """A plain RAS grid, an LPS-stored one (i, j flipped), one with i and j swapped, slices reversed,
    and one stored sagittally-first (k along x) with a small rotation."""
    c, s = np.cos(0.1), np.sin(0.1)
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    columns = {
        "ras": np.diag([1.0, 1.1, 3.0]),
        "lps": np.diag([-1.0, -1.1, 3.0]),
        "swapped": np.array([[0, 1.1, 0], [1.0, 0, 0], [0, 0, -3.0]]),
        "rotated": rotation @ np.array([[0, 0, 2.0], [1.2, 0, 0], [0, 1.0, 0]]),
    }
    out = {}
    for name, m in columns.items():
        a = np.eye(4)
        a[:3, :3] = m
        a[:3, 3] = (5.0, -7.0, 11.0)
        out[name] = a
    return out


@pytest.mark.parametrize("name", list(_affines()))
def test_display_puts_the_patients_right_left_and_anterior_up(name):
    affine = _affines()[name]
    view = AxialView.of(Volume(np.zeros(SHAPE), affine))
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), axis=-1).reshape(-1, 3)
    ras = ijk @ affine[:3, :3].T + affine[:3, 3]
    world = {axis: view.canonical(ras[:, axis].reshape(SHAPE)) for axis in range(3)}
    k = 3
    x, y, z = (view.display(world[axis][:, :, k]) for axis in range(3))
    assert np.ptp(z) < 2.0, "one display slice is one axial level (up to the small rotation)"
    assert np.all(np.diff(x, axis=1) < 0), "columns run from the patient's right (high x) to the left"
    assert np.all(np.diff(y, axis=0) < 0), "rows run from anterior (high y) to posterior"
    aspect = np.abs(np.diff(y, axis=0)).mean() / np.abs(np.diff(x, axis=1)).mean()
    assert view.aspect == pytest.approx(aspect, rel=0.02)

    axis, index = view.file_slice(k)
    marker = np.zeros(SHAPE)
    marker[(slice(None),) * axis + (index,)] = 1
    assert view.canonical(marker)[:, :, k].all() and view.canonical(marker).sum() == marker.sum()
    for point in ([0, 0, 0], [11, 2, 6], [3, 7, 1]):
        expected = np.argwhere(view.canonical(_one_voxel(point)))[0]
        np.testing.assert_allclose(view.canonical_index(np.array(point, float)), expected)
    step = view.canonical_index(np.array([3.5, 7.25, 1.0])) - view.canonical_index(np.array([3.0, 7.0, 1.0]))
    assert sorted(np.abs(step)) == [0.0, 0.25, 0.5], "a fractional position moves linearly"


def _one_voxel(index):
    out = np.zeros(SHAPE, bool)
    out[tuple(index)] = True
    return out


def test_plane_box_adds_the_margin_within_the_plane():
    area = np.zeros((20, 16), bool)
    area[5:8, 2:4] = True
    assert plane_box(area, 3) == (slice(2, 11), slice(0, 7))
    assert plane_box(np.zeros((4, 4), bool), 3) == (slice(None), slice(None))
