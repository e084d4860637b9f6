"""Tiled whole-volume prediction (``inference.tiling``): exact against one forward pass; any callable
works; tile starts on the pooling lattice; tiles fitted to the liver box."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepaseg.config import Config, ModelConfig
from hepaseg.inference.tiling import fit_tile, lattice_extent, predict_volume, tile_starts
from hepaseg.model.shapes import IMAGE_PAD_MODE, crop, input_size, margins, pool_factor, valid_output_size
from hepaseg.model.unet import UNet, center_crop

# four levels: valid in-plane outputs are 4 + 8 k, not multiples of the pooling factor 8
CFG = ModelConfig(widths=(2, 2, 4, 4), z_convs=(0, 0, 1, 1), pools=((2, 2, 2), (2, 2, 1), (2, 2, 1)), dropout=0.5)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    net = UNet(CFG)
    for m in net.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _whole(net, image, lo, size):
    """One forward pass over the region [lo, lo + size) (with its margins, padded as in training)."""
    m = np.array(margins(CFG, size))
    x = crop(image, np.array(lo) - m, np.array(size) + 2 * m, IMAGE_PAD_MODE)
    with torch.no_grad():
        return torch.sigmoid(net(torch.from_numpy(x)[None, None]))[0, 0].numpy()


def test_tiles_equal_one_forward_pass(net):
    rng = np.random.default_rng(0)
    region = valid_output_size(CFG, (20, 12, 8))
    image = rng.normal(size=(40, 34, 18)).astype(np.float32)
    lo = np.array([9, 3, 4])  # the liver box leaves the volume on no side but needs padding on some
    liver = np.zeros(image.shape, np.uint8)
    liver[lo[0]:lo[0] + region[0], lo[1]:lo[1] + region[1], lo[2]:lo[2] + region[2]] = 1
    tile = valid_output_size(CFG, (12, 12, 4))
    assert tile[0] % pool_factor(CFG)[0]  # the step must be rounded to the pooling lattice here
    prob = predict_volume(net, image, liver, tile, margins(CFG, tile), "cpu", align=pool_factor(CFG))
    box = prob[lo[0]:lo[0] + region[0], lo[1]:lo[1] + region[1], lo[2]:lo[2] + region[2]]
    # the tiles start on the volume's pooling lattice: one pass from the lattice point at or below lo
    start = lo - lo % np.array(pool_factor(CFG))
    shift = lo - start
    whole = _whole(net, image, start, valid_output_size(CFG, tuple(shift + region + 8)))
    np.testing.assert_allclose(box, whole[shift[0]:shift[0] + region[0], shift[1]:shift[1] + region[1],
                                          shift[2]:shift[2] + region[2]], atol=1e-5)
    outside = np.ones(image.shape, bool)
    outside[lo[0]:lo[0] + region[0], lo[1]:lo[1] + region[1], lo[2]:lo[2] + region[2]] = False
    assert np.all(prob[outside] == 0)


def test_any_callable_and_tiles_past_the_border():
    """A 'network' that returns the centre of its input: the probability is sigmoid(image)."""
    image = np.random.default_rng(1).normal(size=(11, 9, 5)).astype(np.float32)
    liver = np.zeros(image.shape, np.uint8)
    liver[1:11, 0:7, 2:5] = 1
    margin = (2, 3, 1)

    def centre(x: torch.Tensor) -> torch.Tensor:
        return center_crop(x, tuple(n - 2 * m for n, m in zip(x.shape[2:], margin)))

    prob = predict_volume(centre, image, liver, (4, 3, 2), margin)
    expected = np.zeros_like(image)
    expected[1:11, 0:7, 2:5] = 1 / (1 + np.exp(-image[1:11, 0:7, 2:5]))
    np.testing.assert_allclose(prob, expected, rtol=1e-6)
    assert not predict_volume(centre, image, np.zeros_like(liver), (4, 3, 2), margin).any()


def test_a_voxels_probability_does_not_depend_on_the_liver_box(net):
    """Two livers whose boxes begin at different places off the lattice: one probability where both lie."""
    image = np.random.default_rng(4).normal(size=(48, 40, 16)).astype(np.float32)
    first, second = np.zeros(image.shape, np.uint8), np.zeros(image.shape, np.uint8)
    first[3:30, 5:28, 1:12] = 1
    second[13:45, 11:37, 4:15] = 1
    tile = valid_output_size(CFG, (12, 12, 4))
    kwargs = {"device": "cpu", "align": pool_factor(CFG)}
    a = predict_volume(net, image, first, tile, margins(CFG, tile), **kwargs)
    b = predict_volume(net, image, second, tile, margins(CFG, tile), **kwargs)
    both = (slice(13, 30), slice(11, 28), slice(4, 12))
    np.testing.assert_allclose(a[both], b[both], atol=1e-5)
    assert np.abs(a[both] - 0.5).max() > 1e-3, "a net whose output varies, or the test shows nothing"


def test_tile_starts_step_on_the_lattice():
    assert tile_starts(5, 40, 12, 8) == [0, 8, 16, 24, 32]
    assert tile_starts(16, 30, 12, 8) == [16, 24]
    # CFG's lattice is (8, 8, 2): the box [5, 40) x [16, 30) x [3, 9) is tiled from (0, 16, 2)
    assert lattice_extent(CFG, (np.array([5, 16, 3]), np.array([40, 30, 9]))) == (40, 14, 7)
    assert tile_starts(0, 10, 10, 1) == [0]
    with pytest.raises(ValueError, match="lattice"):
        tile_starts(0, 10, 3, 4)


def test_fit_tile_covers_the_box_with_valid_tiles():
    paper = Config().model
    assert fit_tile(paper, (200, 170, 20), (244, 244, 96)) == (212, 180, 20)  # one tile, not 244 x 244 x 96
    assert fit_tile(paper, (300, 250, 40), (244, 244, 96)) == (164, 132, 40)  # two tiles in-plane
    small = fit_tile(paper, (200, 170, 20), (244, 244, 96), max_input_voxels=5e6)
    assert np.prod(input_size(paper, small)) <= 5e6
