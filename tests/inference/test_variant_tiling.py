"""The 2d variant's net treats slices independently: tiled prediction over many slices at once equals
the prediction slice by slice."""

from __future__ import annotations

import numpy as np
import torch

from hepaseg.presets import variant_config
from hepaseg.inference.tiling import predict_tiled
from hepaseg.model.shapes import margins
from hepaseg.model.unet import UNet

from ..tiny_study import tiny_study_config


def test_a_2d_net_predicts_a_volume_tile_by_tile_as_slice_by_slice():
    cfg = variant_config(tiny_study_config(), "2d")
    assert margins(cfg.model, cfg.infer.tile_output_size)[2] == 0 and cfg.infer.tile_output_size[2] > 1
    torch.manual_seed(0)
    net = UNet(cfg.model).eval()
    rng = np.random.default_rng(0)
    image = rng.normal(size=(30, 26, 9)).astype(np.float32)
    liver = np.zeros(image.shape, np.uint8)
    liver[3:27, 2:22, :] = 1  # the same in-plane box on every slice, so the in-plane tiles are the same
    tile = (12, 12, 4)  # several tiles in-plane and along z
    whole = predict_tiled(net, cfg.model, image, liver, tile)
    by_slice = np.concatenate([predict_tiled(net, cfg.model, image[:, :, z:z + 1], liver[:, :, z:z + 1],
                                             (12, 12, 1)) for z in range(image.shape[2])], axis=2)
    assert whole.shape == image.shape and np.count_nonzero(whole) > 0
    np.testing.assert_allclose(whole, by_slice, atol=1e-5)
