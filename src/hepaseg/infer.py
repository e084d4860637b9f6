"""Whole-volume prediction by tiles over the liver (METHOD.md section 7, first step).

The network is fully convolutional with valid convolutions: an output tile of size T needs the
input tile T + 2 * margin around it, and a tile may be larger than a training patch. Tiles cover
the liver's bounding box; where an input tile reaches past the volume, the image is padded as in
training (``sampling.IMAGE_PAD_MODE``). Tile starts lie on a lattice of ``align`` voxels (the
network's total pooling factor), so a tiled prediction equals one forward pass over the whole
region (in eval mode), up to floating-point rounding. Outside the bounding box the probability is 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch
from numpy.typing import NDArray

from .config import Config, Size3
from .model import margins as model_margins
from .model import pool_factor
from .sampling import IMAGE_PAD_MODE, crop

Net = Callable[[torch.Tensor], torch.Tensor]  # (1, 1, X, Y, Z) input -> (1, 1, x, y, z) logits


def liver_box(liver: NDArray) -> tuple[NDArray[np.int64], NDArray[np.int64]] | None:
    """Bounding box ``[lo, hi)`` of a (x, y, z) mask, or None if it is empty."""
    voxels = np.argwhere(np.asarray(liver) > 0)
    if not len(voxels):
        return None
    return voxels.min(axis=0), voxels.max(axis=0) + 1


def tile_starts(lo: int, hi: int, tile: int, align: int) -> list[int]:
    """Output-tile starts along one axis covering ``[lo, hi)``, stepping by a multiple of ``align``."""
    if tile < align:
        raise ValueError(f"tile size {tile} is smaller than the pooling lattice {align}")
    step = tile - tile % align
    return list(range(lo, hi, step))


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` (CUDA or CPU) when ``amp``; otherwise nothing."""
    if amp:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def predict_volume(net: Net, image: NDArray, liver: NDArray, tile_output_size: Size3, margins: Size3,
                   device: str | torch.device = "cpu", align: Size3 = (1, 1, 1), amp: bool = False,
                   channels_last: bool = False) -> NDArray[np.float32]:
    """Tumour probability of every voxel in the liver's bounding box, tile by tile.

    Args:
        net: a module in eval mode, or any callable mapping (1, 1, X, Y, Z) to logits (1, 1, x, y, z)
            with x = X - 2 * margins[0] etc. It is called under ``torch.inference_mode``.
        image: (x, y, z) float32 prepared image.
        liver: (x, y, z) mask; only its bounding box is predicted.
        tile_output_size: (x, y, z) output voxels per tile (a valid output size of the network).
        margins: (x, y, z) context voxels per side.
        device: where ``net`` runs; align: tile-start lattice (``model.pool_factor``).
        amp: bf16 autocast; channels_last: feed channels-last 3D tensors.

    Returns:
        (x, y, z) float32 sigmoid probabilities, 0 outside the liver's bounding box.
    """
    device = torch.device(device)
    prob = np.zeros(np.shape(image), dtype=np.float32)
    box = liver_box(liver)
    if box is None:
        return prob
    lo, hi = box
    tile = np.asarray(tile_output_size)
    margin = np.asarray(margins)
    starts = [tile_starts(int(lo[a]), int(hi[a]), int(tile[a]), int(align[a])) for a in range(3)]
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    with torch.inference_mode(), autocast(device, amp):
        for sx in starts[0]:
            for sy in starts[1]:
                for sz in starts[2]:
                    start = np.array([sx, sy, sz])
                    patch = crop(image, start - margin, tile + 2 * margin, IMAGE_PAD_MODE)
                    x = torch.from_numpy(patch.astype(np.float32, copy=False))[None, None]
                    x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
                    p = torch.sigmoid(net(x).float())[0, 0].cpu().numpy()
                    end = np.minimum(start + tile, hi)
                    n = end - start
                    prob[sx:end[0], sy:end[1], sz:end[2]] = p[:n[0], :n[1], :n[2]]
    return prob


def predict_with_config(net: Net, config: Config, image: NDArray, liver: NDArray,
                        device: str | torch.device = "cpu", amp: bool = False,
                        channels_last: bool = False) -> NDArray[np.float32]:
    """``predict_volume`` with the tile size, margins and lattice a configuration implies."""
    tile = config.infer.tile_output_size
    return predict_volume(net, image, liver, tile, model_margins(config.model, tile), device,
                          align=pool_factor(config.model), amp=amp, channels_last=channels_last)
