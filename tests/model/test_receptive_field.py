"""``model.shapes.receptive_field``: by hand on a one-axis net, and against the gradient support of
one output voxel of a real UNet (all-positive weights, max pooling swapped for average pooling so
that the gradient reaches every voxel of each pooling window)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hepaseg.config import ModelConfig
from hepaseg.model.shapes import input_size, margins, receptive_field, valid_output_size
from hepaseg.model.unet import UNet

from .variant_nets import unet_2d, unet_3d


def test_a_one_axis_two_level_net_by_hand():
    """x: block (3, 3), pool 2, block (3, 3), up 2, block (3, 3). Output i reads concatenated features
    i .. i + 4, bottom features i // 2 .. i // 2 + 2, pooled features i // 2 .. i // 2 + 6, level-0
    features 2 (i // 2) .. 2 (i // 2) + 13, input 2 (i // 2) .. 2 (i // 2) + 17: 18 voxels for every i,
    one more than the input margin's 2 * 8 + 1 = 17. y and z: 1x1 kernels, no pooling: 1."""
    cfg = ModelConfig(widths=(2, 2), kernel=(3, 1, 1), z_convs=(0, 0), pools=((2, 1, 1),), dropout=0.0)
    assert receptive_field(cfg) == (18, 1, 1)
    assert margins(cfg, (4, 1, 1)) == (8, 0, 0)


def _gradient_extent(cfg: ModelConfig, out: tuple[int, int, int]) -> tuple[int, int, int]:
    torch.manual_seed(0)
    net = UNet(cfg).double().eval()
    for name, module in list(net.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.MaxPool3d):
                setattr(module, child_name, nn.AvgPool3d(child.kernel_size, child.stride))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand_like(p) + 0.1)  # positive weights, biases, BN scales and shifts
    x = torch.rand(1, 1, *input_size(cfg, out), dtype=torch.float64) + 0.1
    x.requires_grad_(True)
    y = net(x)
    best = [0, 0, 0]
    for index in np.ndindex(*out):
        (grad,) = torch.autograd.grad(y[(0, 0, *index)], x, retain_graph=True)
        support = np.nonzero(grad[0, 0].numpy())
        for a in range(3):
            best[a] = max(best[a], int(support[a].max() - support[a].min() + 1))
    return tuple(best)  # type: ignore[return-value]


@pytest.mark.parametrize("cfg", [
    ModelConfig(widths=(2, 2, 2), z_convs=(0, 1, 1), pools=((2, 2, 2), (2, 2, 1)), dropout=0.0),  # aU-Net-like
    unet_2d(widths=(2, 2, 2), dropout=0.0),
    unet_3d(widths=(2, 2), dropout=0.0),
    ModelConfig(widths=(2, 2), kernel=(3, 1, 1), z_convs=(0, 1), pools=((2, 1, 2),), dropout=0.0),
])
def test_the_receptive_field_is_the_gradient_support_of_one_output_voxel(cfg):
    out = valid_output_size(cfg, (4, 4, 4) if cfg.kernel[2] == 3 or any(p[2] > 1 for p in cfg.pools) else (4, 4, 1))
    assert _gradient_extent(cfg, out) == receptive_field(cfg)
