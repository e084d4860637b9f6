"""The viewer's stacks: orientation, crop, intensity range, bit-packed masks, the largest lesions."""

from __future__ import annotations

import numpy as np

from hepaseg.io.volumes import Volume
from hepaseg.rating import images


def test_masks_survive_packing():
    rng = np.random.default_rng(0)
    stack = rng.random((3, 5, 7)) > 0.6  # 105 bits: not a multiple of 8
    data = images.pack_mask(stack)
    assert len(data) == 14
    assert np.array_equal(images.unpack_mask(data, stack.shape), stack)


def test_stacks_are_radiological_whatever_the_file_order():
    """The same anatomy stored in RAS and in LPS voxel order gives the same stack: rows anterior
    first, columns patient right first, slices inferior first."""
    rng = np.random.default_rng(1)
    ras = rng.integers(0, 1000, (20, 16, 6)).astype(np.float32)
    liver = np.zeros_like(ras, np.uint8)
    liver[3:17, 2:14, 1:5] = 1
    a_ras = np.diag([2.0, 2.0, 3.0, 1.0])
    a_lps = a_ras.copy()
    a_lps[0, 0] = a_lps[1, 1] = -2.0
    a_lps[:2, 3] = [2.0 * 19, 2.0 * 15]
    lps, liver_lps = ras[::-1, ::-1], liver[::-1, ::-1]
    stacks = []
    for image, mask, affine in ((ras, liver, a_ras), (lps, liver_lps, a_lps)):
        image_v, liver_v = Volume(image, affine), Volume(mask, affine)
        frame = images.frame_of(image_v, liver_v)
        stacks.append(images.mask_stack(liver_v, image_v, frame))
    assert np.array_equal(stacks[0], stacks[1])
    # the liver box (14 x 12 x 4) plus margins, clipped to the volume: all 20 x 16 in-plane, 6 slices
    assert stacks[0].shape == (6, 16, 20)
    expected = liver.transpose(2, 1, 0)[:, ::-1, ::-1] != 0
    assert np.array_equal(stacks[0], expected)


def test_image_stack_spans_the_fixed_range():
    rng = np.random.default_rng(2)
    image = Volume(rng.normal(100, 20, (30, 30, 8)).astype(np.float32), np.eye(4))
    liver = Volume(np.ones((30, 30, 8), np.uint8), np.eye(4))
    stack = images.image_stack(image, liver, images.frame_of(image, liver))
    assert stack.dtype == np.dtype("<u2") and stack.min() == 0 and stack.max() == images.IMAGE_MAX
    assert np.mean(stack == images.IMAGE_MAX) < 0.01  # only the top 0.5 % are clipped


def test_lesion_slices_largest_first_at_their_widest_slice():
    stack = np.zeros((10, 20, 20), bool)
    stack[2:5, 1:4, 1:4] = True          # 27 voxels, equal on slices 2-4: the first, 2
    stack[6:9, 10:16, 10:16] = True      # 108 voxels
    stack[7, 9:17, 9:17] = True          # widest on slice 7
    stack[0, 19, 19] = True              # one voxel
    assert images.lesion_slices(stack) == (7, 2, 0)
    assert images.lesion_slices(np.zeros((3, 3, 3), bool)) == ()
