"""Whole-volume prediction by tiles over the liver (METHOD.md section 7, first step).

The network is fully convolutional with valid convolutions: an output tile of size T needs the
input tile T + 2 * margin around it, and a tile may be larger than a training patch. Tiles cover
the liver's bounding box; where an input tile reaches past the volume, the image is padded as in
training (``model.shapes.IMAGE_PAD_MODE``). Tile starts lie on the volume's lattice of ``align`` voxels
(the network's total pooling factor), so a tiled prediction equals one forward pass over the whole
region (in eval mode), up to floating-point rounding, and a voxel's probability does not depend on
the box (the given liver's or a predicted one's): U-Net pooling is not shift-invariant. Outside the
bounding box the probability is 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch
from numpy.typing import NDArray

from ..config import ModelConfig, Size3
from ..model.device import autocast, memory_format
from ..model.shapes import IMAGE_PAD_MODE, crop, input_size, pool_factor, valid_output_size
from ..model.shapes import margins as context_margins

Net = Callable[[torch.Tensor], torch.Tensor]  # (1, 1, X, Y, Z) input -> (1, 1, x, y, z) logits


def liver_box(liver: NDArray) -> tuple[NDArray[np.int64], NDArray[np.int64]] | None:
    """Bounding box ``[lo, hi)`` of a (x, y, z) mask, or None if it is empty."""
    voxels = np.argwhere(np.asarray(liver) > 0)
    if not len(voxels):
        return None
    return voxels.min(axis=0), voxels.max(axis=0) + 1


def tile_starts(lo: int, hi: int, tile: int, align: int) -> list[int]:
    """Output-tile starts along one axis covering ``[lo, hi)``, stepping by a multiple of ``align``; the
    first start is ``lo`` rounded down to a multiple of ``align``, so every start lies on the volume's
    pooling lattice and a voxel's probability does not depend on where the box begins."""
    if tile < align:
        raise ValueError(f"tile size {tile} is smaller than the pooling lattice {align}")
    step = tile - tile % align
    return list(range(lo - lo % align, hi, step))


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
        device: where ``net`` runs; align: tile-start lattice (``model.shapes.pool_factor``).
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
    fmt = memory_format(channels_last)
    with torch.inference_mode(), autocast(device, amp):
        for sx in starts[0]:
            for sy in starts[1]:
                for sz in starts[2]:
                    start = np.array([sx, sy, sz])
                    patch = crop(image, start - margin, tile + 2 * margin, IMAGE_PAD_MODE)
                    x = torch.from_numpy(patch.astype(np.float32, copy=False))[None, None]
                    x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
                    p = torch.sigmoid(net(x).float())[0, 0].cpu().numpy()
                    begin, end = np.maximum(start, lo), np.minimum(start + tile, hi)
                    a, b = begin - start, end - start
                    prob[begin[0]:end[0], begin[1]:end[1], begin[2]:end[2]] = p[a[0]:b[0], a[1]:b[1], a[2]:b[2]]
    return prob


def predict_tiled(net: Net, model: ModelConfig, image: NDArray, liver: NDArray, tile_output_size: Size3,
                  device: str | torch.device = "cpu", amp: bool = False,
                  channels_last: bool = False) -> NDArray[np.float32]:
    """``predict_volume`` with the margins and tile lattice that ``model`` implies for the tile size."""
    return predict_volume(net, image, liver, tile_output_size, context_margins(model, tile_output_size), device,
                          align=pool_factor(model), amp=amp, channels_last=channels_last)


# Peak memory of a forward pass ~ ACTIVATION_COPIES full-resolution feature maps of the input tile.
ACTIVATION_COPIES = 4


MEMORY_SHARE = 0.5  # share of the free (GPU or host) memory a tile may use


def lattice_extent(model: ModelConfig, box: tuple[NDArray, NDArray]) -> Size3:
    """(x, y, z) voxels the tiles of ``box`` (``liver_box``) span: from the pooling-lattice point at or
    below its start (``tile_starts``) to its end; what ``fit_tile`` must cover."""
    align = np.asarray(pool_factor(model))
    lo, hi = np.asarray(box[0]), np.asarray(box[1])
    return tuple(int(n) for n in hi - (lo - lo % align))  # type: ignore[return-value]


def fit_tile(model: ModelConfig, extent: Size3, max_tile: Size3, max_input_voxels: float = math.inf) -> Size3:
    """The output tile size for a liver box of ``extent`` (x, y, z) voxels.

    Per axis, the fewest tiles of at most ``max_tile`` (rounded down to a valid size) cover the box,
    and the tile is the smallest valid size, not below the pooling lattice, that covers it with
    that many tiles (a box of 200 voxels gets one tile of 212, not one of 244). While the input
    tile exceeds ``max_input_voxels``, the axis with the largest tile is split into more tiles.
    """
    align = pool_factor(model)
    cap = valid_output_size(model, max_tile)
    sizes = [_valid_sizes(model, a, align[a], cap[a]) or [cap[a]] for a in range(3)]

    def axis_tile(axis: int, count: int) -> int:
        """The smallest valid size whose ``count`` tiles (stepping on the lattice) cover the extent."""
        for m in sizes[axis]:
            if math.ceil(extent[axis] / (m - m % align[axis] or m)) <= count:
                return m
        return sizes[axis][-1]

    counts = [max(1, math.ceil(e / c)) for e, c in zip(extent, cap)]
    tile = [axis_tile(a, counts[a]) for a in range(3)]
    while math.prod(input_size(model, tuple(tile))) > max_input_voxels:
        for axis in np.argsort(tile)[::-1]:
            if tile[axis] > sizes[axis][0]:
                while axis_tile(axis, counts[axis]) >= tile[axis]:
                    counts[axis] += 1
                tile[axis] = axis_tile(axis, counts[axis])
                break
        else:
            break  # the smallest tiles already; the memory estimate is only an estimate
    return tuple(tile)  # type: ignore[return-value]


def _valid_sizes(model: ModelConfig, axis: int, lo: int, hi: int) -> list[int]:
    """The valid output sizes in ``[lo, hi]`` along ``axis``, ascending."""
    sizes, m = [], hi
    while m >= lo:
        m = valid_output_size(model, (m, m, m))[axis]  # the largest valid size <= m (or the smallest)
        if not lo <= m <= hi or (sizes and m >= sizes[-1]):
            break
        sizes.append(m)
        m -= 1
    return sizes[::-1]


def memory_budget_voxels(model: ModelConfig, device, bf16: bool) -> float:
    """How many input-tile voxels fit in ``MEMORY_SHARE`` of the free memory of ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        free = available_host_memory()
    bytes_per_value = 2 if bf16 else 4
    return MEMORY_SHARE * free / (ACTIVATION_COPIES * model.widths[0] * bytes_per_value)


def available_host_memory() -> int:
    """Bytes of host memory available (Linux MemAvailable, which counts reclaimable cache; else free)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
