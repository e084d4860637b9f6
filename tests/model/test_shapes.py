"""Shape arithmetic of the valid-convolution networks (``model.shapes``): sizes by hand, invalid sizes,
the largest valid size, and crops with padding."""

from __future__ import annotations

import numpy as np
import pytest

from hepaseg.config import ModelConfig

from hepaseg.presets import demo_config
from hepaseg.errors import InputError
from hepaseg.model.shapes import IMAGE_PAD_MODE, crop, input_size, margins, output_size, pool_factor, valid_output_size
from .variant_nets import unet_2d, unet_3d

TINY_AUNET = ModelConfig(widths=(2, 4, 4), z_convs=(0, 1, 1), pools=((2, 2, 2), (2, 2, 1)), dropout=0.5)


def test_paper_default_shapes():
    cfg = ModelConfig()
    assert input_size(cfg, (52, 52, 32)) == (236, 236, 72)
    assert output_size(cfg, (236, 236, 72)) == (52, 52, 32)
    assert margins(cfg, (52, 52, 32)) == (92, 92, 20)
    assert pool_factor(cfg) == (16, 16, 4)
    # the inference tile: 244 x 244 x 96 out of 428 x 428 x 136
    assert input_size(cfg, (244, 244, 96)) == (428, 428, 136)


def test_variant_shapes_by_hand():
    # 2D U-Net: classic in-plane arithmetic, z untouched
    assert input_size(unet_2d(), (52, 52, 1)) == (236, 236, 1)
    # isotropic 3D U-Net, 4 levels: 44 -> 48/2=24 -> 28/2=14 -> 18/2=9; 9+4=13 -> 26+4=30 -> 64 -> 132
    assert input_size(unet_3d(), (44, 44, 44)) == (132, 132, 132)
    assert output_size(unet_3d(), (132, 132, 132)) == (44, 44, 44)


def test_invalid_sizes_are_input_errors():
    cfg = ModelConfig()
    with pytest.raises(InputError, match="not valid"):
        output_size(cfg, (235, 236, 72))
    with pytest.raises(InputError, match="nearest smaller valid size: \\(52, 52, 32\\)"):
        input_size(cfg, (53, 53, 33))
    with pytest.raises(InputError, match="pools needs 4"):
        output_size(ModelConfig(pools=((2, 2, 2),)), (236, 236, 72))


@pytest.mark.parametrize("cfg", [ModelConfig(), unet_2d(), unet_3d(), demo_config().model, TINY_AUNET])
def test_valid_output_size_is_the_largest_valid_one(cfg):
    for wanted in [(60, 61, 40), (100, 90, 37)]:
        best = valid_output_size(cfg, wanted)
        assert output_size(cfg, input_size(cfg, best)) == best
        for axis in range(3):
            assert best[axis] <= wanted[axis]
            for larger in range(best[axis] + 1, wanted[axis] + 1):
                probe = list(best)
                probe[axis] = larger
                with pytest.raises(InputError):
                    input_size(cfg, tuple(probe))


def test_crop_inside_and_past_the_border():
    vol = np.arange(5 * 6 * 4, dtype=np.float32).reshape(5, 6, 4)
    assert np.array_equal(crop(vol, (1, 2, 0), (3, 3, 2)), vol[1:4, 2:5, 0:2])
    padded = np.pad(vol, 3, mode="edge")
    assert np.array_equal(crop(vol, (-3, 4, -1), (6, 5, 6), IMAGE_PAD_MODE), padded[0:6, 7:12, 2:8])
    zeros = crop(vol, (-2, 0, 0), (4, 6, 4))
    assert np.all(zeros[:2] == 0) and np.array_equal(zeros[2:], vol[:2])
    with pytest.raises(ValueError, match="misses"):
        crop(vol, (5, 0, 0), (2, 2, 2))
