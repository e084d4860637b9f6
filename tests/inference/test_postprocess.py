"""Post-processing on tiny arrays; every expected result is derived by hand in the comments."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hepaseg.config import InferConfig
from hepaseg.inference.postprocess import (
    border_opening,
    fill_holes,
    kernel_voxels,
    largest_component,
    liver_border,
    postprocess,
    restrict_to_liver,
    threshold,
)


def _liver(n: int = 24, lo: int = 2, hi: int = 22, slices: int = 1) -> np.ndarray:
    """An n x n x slices volume whose liver is the square [lo, hi)² in every slice."""
    liver = np.zeros((n, n, slices), np.uint8)
    liver[lo:hi, lo:hi, :] = 1
    return liver


def test_border_is_three_voxels_wide_for_a_7x7_erosion():
    # Liver [2, 22)²: the 7 x 7 erosion keeps [5, 19)², so the border is rows / columns 2-4 and 19-21.
    border = liver_border(_liver(), 7)
    expected = _liver().astype(bool)
    expected[5:19, 5:19] = False
    np.testing.assert_array_equal(border, expected)
    assert border.sum() == 20 * 20 - 14 * 14


def test_border_counts_the_array_edge_as_outside():
    # A liver filling the whole 8 x 8 slice: the erosion keeps only [3, 5)², everything else is border.
    border = liver_border(np.ones((8, 8, 1), np.uint8), 7)
    assert border.sum() == 64 - 4 and not border[3:5, 3:5].any()


def test_thin_line_along_the_border_disappears():
    liver = _liver()
    tumor = np.zeros_like(liver)
    tumor[2, 4:18, 0] = 1  # one voxel wide, on the liver's outermost row: all inside the border
    assert border_opening(tumor, liver).sum() == 0


def test_square_in_the_border_keeps_its_core_and_loses_its_spur():
    liver = _liver()
    tumor = np.zeros_like(liver)
    tumor[8:13, 2:7, 0] = 1  # 5 x 5, touching the liver edge: columns 2-4 lie in the border
    spur = np.zeros_like(liver)
    spur[13:16, 3, 0] = 1  # a one-voxel-wide spur below it, inside the border (column 3)
    out = border_opening(tumor | spur, liver)
    # The 3 x 3 opening keeps the whole 5 x 5 square (it is a union of 3 x 3 squares) and drops the spur.
    np.testing.assert_array_equal(out, tumor)


def test_nothing_changes_outside_the_border():
    liver = _liver()
    tumor = np.zeros_like(liver)
    tumor[12, 2:15, 0] = 1  # a thin line from the liver edge (column 2) into the interior
    tumor[8, 8, 0] = 1  # a single voxel in the interior
    out = border_opening(tumor, liver)
    expected = tumor.copy()
    expected[12, 2:5, 0] = 0  # only its part inside the border (columns 2-4) goes
    np.testing.assert_array_equal(out, expected)


def test_opening_is_in_plane_only():
    # A 5 x 5 tumour on one slice of a three-slice liver: a 3D opening would erase it (it is one
    # slice thick); the in-plane opening keeps it. The erosion is per slice too: the middle slice's
    # border is the same as in the others.
    liver = _liver(slices=3)
    tumor = np.zeros_like(liver)
    tumor[2:7, 8:13, 1] = 1
    np.testing.assert_array_equal(border_opening(tumor, liver), tumor)
    border = liver_border(liver)
    np.testing.assert_array_equal(border[..., 1], border[..., 0])


def test_restriction_and_threshold():
    prob = np.array([[[0.2], [0.5], [0.51], [0.9]]], np.float32)  # shape (1, 4, 1)
    liver = np.array([[[1], [1], [1], [0]]], np.uint8)
    np.testing.assert_array_equal(restrict_to_liver(prob, liver).ravel(), np.float32([0.2, 0.5, 0.51, 0.0]))
    np.testing.assert_array_equal(threshold(prob, 0.5).ravel(), [0, 0, 1, 1])  # 0.5 itself is not tumour


def test_postprocess_chain_and_switches():
    liver = _liver()
    prob = np.zeros(liver.shape, np.float32)
    prob[2, 4:18, 0] = 0.9  # thin line in the border: removed by the opening
    prob[10:13, 10:13, 0] = 0.8  # interior 3 x 3: kept
    prob[0, 0, 0] = 0.99  # outside the liver: removed by the restriction
    cfg = InferConfig()
    kept = np.zeros_like(liver)
    kept[10:13, 10:13, 0] = 1
    np.testing.assert_array_equal(postprocess(prob, liver, cfg, 1.0), kept)

    no_opening = postprocess(prob, liver, dataclasses.replace(cfg, border_opening=False), 1.0)
    np.testing.assert_array_equal(no_opening, kept | (prob > 0.5) & (liver > 0))
    no_restriction = postprocess(prob, liver, dataclasses.replace(cfg, restrict_to_liver=False), 1.0)
    assert no_restriction[0, 0, 0] == 1  # outside the liver there is no border either: it stays
    high = postprocess(prob, liver, dataclasses.replace(cfg, threshold=0.85, border_opening=False), 1.0)
    assert high.sum() == 14 and high.dtype == np.uint8


def test_largest_component_keeps_the_biggest_26_connected_piece():
    mask = np.zeros((6, 6, 3), np.uint8)
    mask[0:2, 0:2, 0] = 1  # 4 voxels
    mask[2, 2, 0] = 1  # touches the 4-voxel piece at a corner only: 26-connected to it -> 5
    mask[4:6, 2:6, 2] = 1  # 8 voxels, two voxels away from the rest
    expected = np.zeros_like(mask)
    expected[4:6, 2:6, 2] = 1
    np.testing.assert_array_equal(largest_component(mask), expected)
    assert not largest_component(np.zeros((3, 3, 3))).any()


def test_fill_holes_fills_enclosed_cavities_only():
    mask = np.ones((5, 5, 5), np.uint8)
    mask[2, 2, 2] = 0  # enclosed
    mask[0, 2, 2] = 0  # on the border: open to the outside
    filled = fill_holes(mask)
    assert filled[2, 2, 2] == 1 and filled[0, 2, 2] == 0 and filled.sum() == 124


def test_the_liver_steps_run_after_the_threshold():
    prob = np.zeros((8, 8, 3), np.float32)
    prob[0:5, 0:5, :] = 0.9
    prob[2, 2, 1] = 0.1  # a hole
    prob[7, 7, 0] = 0.9  # a speck
    config = InferConfig(restrict_to_liver=False, border_opening=False, largest_component=True, fill_holes=True)
    expected = np.zeros(prob.shape, np.uint8)
    expected[0:5, 0:5, :] = 1
    np.testing.assert_array_equal(postprocess(prob, np.ones(prob.shape), config, 3.0), expected)


def test_kernel_sides_in_mm_become_whole_voxels_of_the_prepared_grid():
    # by hand: 7 mm / 1 mm = 7; 14 / 2 = 7; 6 / 2 = 3; 7 / 3 = 2.33 -> 2; 2.5 / 1 -> 3 (halves up); 0.4 -> 1 (at least one)
    assert [kernel_voxels(mm, s) for mm, s in ((7, 1), (14, 2), (6, 2), (7, 3), (2.5, 1), (0.4, 1))] == [7, 7, 3, 2, 3, 1]
    with pytest.raises(ValueError, match="> 0 mm"):
        kernel_voxels(0, 1)


def test_the_demos_mm_kernels_on_its_2_mm_grid_are_the_7_and_3_voxel_kernels_it_always_ran():
    """The demo preset's 14 / 6 mm on its 2 mm grid give the masks of hepaseg 0.1's 7 x 7 / 3 x 3 voxels,
    computed here with scipy.ndimage directly."""
    from scipy import ndimage

    from hepaseg.presets import demo_config

    config = demo_config()
    rng = np.random.default_rng(3)
    liver = np.zeros((40, 36, 4), np.uint8)
    liver[4:34, 5:31, :] = 1
    liver[4:12, 5:12, 1] = 0  # a notch: the border follows it
    prob = ndimage.gaussian_filter(rng.random(liver.shape), (1.5, 1.5, 0)).astype(np.float32)
    prob = (prob - prob.min()) / (prob.max() - prob.min())
    mask = (prob * liver) > config.infer.threshold
    band = (liver > 0) & ~ndimage.binary_erosion(liver > 0, np.ones((7, 7, 1), bool), border_value=0)
    opened = ndimage.binary_opening(mask, np.ones((3, 3, 1), bool), border_value=0)
    expected = np.where(band, opened, mask).astype(np.uint8)
    assert 0 < expected.sum() < mask.sum(), "the opening must change something in the band"
    got = postprocess(prob, liver, config.infer, config.preprocess.inplane_spacing_mm)
    np.testing.assert_array_equal(got, expected)
