"""The anisotropic U-Net (aU-Net, METHOD.md section 4) and its variants.

Tensors are (N, C, X, Y, Z); sizes are (x, y, z) voxels. Every convolution is unpadded ("valid"),
so the output patch is smaller than the input patch and centred in it (``model.shapes`` does the
arithmetic). For the default configuration 236 x 236 x 72 <-> 52 x 52 x 32 (margin 92 / 92 / 20
voxels per side).

A block at level ``l`` is ``2 x (conv(kernel) + BN + ReLU)`` followed by ``z_convs[l] x
(conv(1, 1, 3) + BN + ReLU)``, on both paths. Down: max pooling by ``pools[l]``; up: transposed
convolution with kernel = stride = ``pools[l]`` halving the features, concatenation with the
centre-cropped skip features. Dropout (``dropout``, element-wise) follows the bottom block and
precedes every up-path block. Convolution kernels are Glorot-uniform, biases zero, batch norm with
momentum 0.99 / epsilon 1e-3 (the Keras defaults of the paper's stack; configurable).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..config import ModelConfig, Size3
from .shapes import Z_KERNEL, check_config

# --- network -----------------------------------------------------------------------------------


def _conv_bn_relu(c_in: int, c_out: int, kernel: Size3, cfg: ModelConfig) -> list[nn.Module]:
    bn = nn.BatchNorm3d(c_out, eps=cfg.bn_eps, momentum=cfg.bn_momentum)
    return [nn.Conv3d(c_in, c_out, kernel), bn, nn.ReLU(inplace=True)]


def _block(c_in: int, c_out: int, level: int, cfg: ModelConfig) -> nn.Sequential:
    layers = _conv_bn_relu(c_in, c_out, cfg.kernel, cfg) + _conv_bn_relu(c_out, c_out, cfg.kernel, cfg)
    for _ in range(cfg.z_convs[level]):
        layers += _conv_bn_relu(c_out, c_out, Z_KERNEL, cfg)
    return nn.Sequential(*layers)


class MaxPool(nn.Module):
    """Max pooling by ``size`` = stride (x, y, z) of (N, C, X, Y, Z) tensors.

    An in-plane pooling (z factor 1) runs as a 2D pooling of the (X, Y) planes, with the axes that
    lie innermost in memory (z for a contiguous tensor, z and channels for a channels-last one) as
    the 2D pooling's channels-last axis: the same values and gradients as ``max_pool3d`` (ties
    included) in the input's memory format, several times faster on CPUs, where ``max_pool3d`` has
    no vectorised kernel for the contiguous layout and a slow backward for the channels-last one
    (docs/benchmarks.md, "CPU training step"). Other cases use ``max_pool3d``.
    """

    def __init__(self, size: Size3) -> None:
        super().__init__()
        self.size = tuple(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kx, ky, kz = self.size
        order = _memory_order(x)
        if kz != 1 or order is None:
            return F.max_pool3d(x, self.size, self.size)
        stored = x.permute(order)  # contiguous: the batch-like axes, X, Y, then the innermost axes
        lead, inner = stored.shape[:order.index(2)], stored.shape[order.index(3) + 1:]
        planes = stored.reshape(-1, x.shape[2], x.shape[3], math.prod(inner)).permute(0, 3, 1, 2)
        pooled = F.max_pool2d(planes, (kx, ky), (kx, ky))  # channels-last 2D: the innermost axes vectorise
        pooled = pooled.permute(0, 2, 3, 1).reshape(*lead, x.shape[2] // kx, x.shape[3] // ky, *inner)
        return pooled.permute([order.index(axis) for axis in range(5)])


def _memory_order(x: torch.Tensor) -> tuple[int, ...] | None:
    """The axes of a (N, C, X, Y, Z) tensor in memory order, outermost first, for the contiguous
    and the channels-last 3D layouts (None: another layout)."""
    if x.is_contiguous():
        return (0, 1, 2, 3, 4)
    if x.is_contiguous(memory_format=torch.channels_last_3d):
        return (0, 2, 3, 4, 1)
    return None


def center_crop(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """The centre ``size`` (x, y, z) of a (N, C, X, Y, Z) tensor."""
    starts = [(d - s) // 2 for d, s in zip(x.shape[2:], size)]
    return x[:, :, starts[0]:starts[0] + size[0], starts[1]:starts[1] + size[1], starts[2]:starts[2] + size[2]]


class UNet(nn.Module):
    """The aU-Net and its variants, built from a ``ModelConfig``.

    ``forward`` maps (N, in_channels, X, Y, Z) with a valid input size (see ``input_size``) to
    one logit per output voxel, (N, 1, x, y, z).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        check_config(cfg)
        self.config = cfg
        w, levels = cfg.widths, len(cfg.widths)
        self.down = nn.ModuleList()
        c_in = cfg.in_channels
        for level in range(levels - 1):
            self.down.append(_block(c_in, w[level], level, cfg))
            c_in = w[level]
        self.pools = nn.ModuleList(MaxPool(p) for p in cfg.pools)
        self.bottom = _block(c_in, w[-1], levels - 1, cfg)
        self.ups = nn.ModuleList(nn.ConvTranspose3d(w[level + 1], w[level], cfg.pools[level], cfg.pools[level])
                                 for level in range(levels - 1))
        self.up_blocks = nn.ModuleList(_block(2 * w[level], w[level], level, cfg) for level in range(levels - 1))
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Conv3d(w[0], 1, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform kernels, zero biases (Keras defaults); BN weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block, pool in zip(self.down, self.pools):
            x = block(x)
            skips.append(x)
            x = pool(x)
        x = self.dropout(self.bottom(x))
        for level in reversed(range(len(self.ups))):
            x = self.ups[level](x)
            x = torch.cat([center_crop(skips[level], x.shape[2:]), x], dim=1)
            x = self.up_blocks[level](self.dropout(x))
        return self.head(x)


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
