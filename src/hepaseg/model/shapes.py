"""Shape arithmetic of the aU-Net's valid convolutions, and box crops of (x, y, z) arrays (numpy only).

Every convolution is unpadded ("valid"), so the output patch is smaller than the input patch and
centred in it: ``input_size(cfg, out)`` gives the input for a wanted output, ``output_size(cfg,
inp)`` the reverse; ``margins`` the context per side, ``pool_factor`` the lattice tiles start on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ..config import ModelConfig, Size3
from ..errors import InputError

IMAGE_PAD_MODE = "edge"  # image values past the volume border: the nearest border voxel


Z_KERNEL = (1, 1, 3)


def _shrink(cfg: ModelConfig, level: int, axis: int) -> int:
    """Voxels one block at ``level`` removes along ``axis`` (both sides together)."""
    z_extra = (Z_KERNEL[axis] - 1) * cfg.z_convs[level]
    return 2 * (cfg.kernel[axis] - 1) + z_extra


def _axis_output(cfg: ModelConfig, axis: int, n: int) -> int | None:
    """Output length along ``axis`` for input length ``n``, or None if ``n`` is not a valid input."""
    levels = len(cfg.widths)
    skips = []
    for level in range(levels - 1):
        n -= _shrink(cfg, level, axis)
        pool = cfg.pools[level][axis]
        if n < 1 or n % pool:
            return None
        skips.append(n)
        n //= pool
    n -= _shrink(cfg, levels - 1, axis)
    if n < 1:
        return None
    for level in reversed(range(levels - 1)):
        n *= cfg.pools[level][axis]
        crop = skips[level] - n
        if crop < 0 or crop % 2:
            return None
        n -= _shrink(cfg, level, axis)
        if n < 1:
            return None
    return n


def _axis_input(cfg: ModelConfig, axis: int, out: int) -> int | None:
    """Input length along ``axis`` for output length ``out``, or None if ``out`` is not reachable."""
    levels = len(cfg.widths)
    n = out
    for level in range(levels - 1):
        n += _shrink(cfg, level, axis)
        pool = cfg.pools[level][axis]
        if n % pool:
            return None
        n //= pool
    n += _shrink(cfg, levels - 1, axis)
    for level in reversed(range(levels - 1)):
        n = n * cfg.pools[level][axis] + _shrink(cfg, level, axis)
    return n if _axis_output(cfg, axis, n) == out else None


def check_config(cfg: ModelConfig) -> None:
    """Raise InputError if the configuration's lists do not fit together."""
    levels = len(cfg.widths)
    problems = []
    if levels < 1 or any(w < 1 for w in cfg.widths):
        problems.append("widths must be one or more positive numbers")
    if len(cfg.z_convs) != levels:
        problems.append(f"z_convs needs {levels} entries (one per level), got {len(cfg.z_convs)}")
    if len(cfg.pools) != levels - 1:
        problems.append(f"pools needs {levels - 1} entries (one per transition), got {len(cfg.pools)}")
    if any(k < 1 or k % 2 == 0 for k in cfg.kernel):
        problems.append(f"kernel sizes must be odd, got {cfg.kernel}")
    if not 0.0 <= cfg.dropout < 1.0:
        problems.append(f"dropout must lie in [0, 1), got {cfg.dropout}")
    if problems:
        raise InputError(None, "model config: " + "; ".join(problems))


def output_size(cfg: ModelConfig, input_size: Size3) -> Size3:
    """Output patch size for an input patch size; InputError if the input size is not valid."""
    check_config(cfg)
    out = tuple(_axis_output(cfg, a, int(n)) for a, n in enumerate(input_size))
    if None in out:
        raise InputError(None, f"input size {tuple(input_size)} is not valid for this network "
                               f"(try input_size(cfg, valid_output_size(cfg, ...)))")
    return out  # type: ignore[return-value]


def input_size(cfg: ModelConfig, output_size: Size3) -> Size3:
    """Input patch size that yields exactly ``output_size``; InputError if none does."""
    check_config(cfg)
    inp = tuple(_axis_input(cfg, a, int(n)) for a, n in enumerate(output_size))
    if None in inp:
        near = valid_output_size(cfg, output_size)
        raise InputError(None, f"output size {tuple(output_size)} is not reachable by this network "
                               f"(nearest smaller valid size: {near})")
    return inp  # type: ignore[return-value]


def margins(cfg: ModelConfig, output_size: Size3) -> Size3:
    """Context voxels per side around an output patch: (input - output) / 2 along each axis."""
    inp = input_size(cfg, output_size)
    return tuple((i - o) // 2 for i, o in zip(inp, output_size))  # type: ignore[return-value]


def valid_output_size(cfg: ModelConfig, wanted: Size3) -> Size3:
    """The largest valid output size <= ``wanted`` along each axis (the smallest one if none is)."""
    check_config(cfg)
    sizes = []
    for axis, n in enumerate(wanted):
        m = max(int(n), 1)
        while m > 1 and _axis_input(cfg, axis, m) is None:
            m -= 1
        while _axis_input(cfg, axis, m) is None:
            m += 1
        sizes.append(m)
    return tuple(sizes)  # type: ignore[return-value]


def pool_factor(cfg: ModelConfig) -> Size3:
    """Product of the poolings per axis: tiles must start on this lattice for exact tiling."""
    factor = [1, 1, 1]
    for pool in cfg.pools:
        factor = [f * p for f, p in zip(factor, pool)]
    return tuple(factor)  # type: ignore[return-value]


def crop(volume: NDArray, start: Sequence[int], size: Sequence[int], mode: str = "constant") -> NDArray:
    """The box ``[start, start + size)`` of an (x, y, z) array, padded where it leaves the volume.

    ``mode`` is a ``numpy.pad`` mode: ``"constant"`` pads with 0 (masks), ``IMAGE_PAD_MODE`` for
    images. The box must overlap the volume. The result is a new array (never a view).
    """
    lo = [max(0, s) for s in start]
    hi = [min(d, s + n) for d, s, n in zip(volume.shape, start, size)]
    if any(b <= a for a, b in zip(lo, hi)):
        raise ValueError(f"box at {tuple(start)} of size {tuple(size)} misses the volume {volume.shape}")
    inner = np.asarray(volume[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
    pad = [(a - s, s + n - b) for s, n, a, b in zip(start, size, lo, hi)]
    if not any(a or b for a, b in pad):
        return inner.copy()
    return np.pad(inner, pad, mode=mode)


def receptive_field(cfg: ModelConfig) -> Size3:
    """Input voxels per axis that one output voxel depends on (the largest over output positions).

    Derived layer by layer, exactly: along each axis every tensor of the network maps a feature index
    ``i`` to the interval of input indices it depends on - a valid convolution of size ``k`` joins
    ``i .. i + k - 1`` of its input, a pooling ``p`` joins ``p i .. p i + p - 1``, a transposed
    convolution with kernel = stride ``p`` takes ``i // p``, the concatenation the union of the
    centre-cropped skip's and the up-path's intervals. Because of the poolings the interval's length
    can depend on the output voxel's position modulo ``pool_factor``; the largest is returned. It is at
    most ``2 * margin + 1`` (the input patch around one output voxel) and smaller where an output voxel
    cannot see the whole pooling window at the margin's far end.
    """
    check_config(cfg)
    factor = pool_factor(cfg)
    out = valid_output_size(cfg, tuple(2 * f for f in factor))  # type: ignore[arg-type]
    inp = input_size(cfg, out)
    return tuple(_axis_receptive_field(cfg, a, inp[a]) for a in range(3))  # type: ignore[return-value]


def _axis_receptive_field(cfg: ModelConfig, axis: int, n_in: int) -> int:
    levels = len(cfg.widths)
    kernels = [[cfg.kernel[axis]] * 2 + [Z_KERNEL[axis]] * cfg.z_convs[level] for level in range(levels)]
    span = (np.arange(n_in), np.arange(n_in))  # (lo, hi) input index of each feature index

    def block(s: tuple[NDArray, NDArray], level: int) -> tuple[NDArray, NDArray]:
        lo, hi = s
        for k in kernels[level]:
            lo, hi = lo[:len(lo) - k + 1], hi[k - 1:]
        return lo, hi

    skips = []
    for level in range(levels - 1):
        span = block(span, level)
        skips.append(span)
        p = cfg.pools[level][axis]
        n = len(span[0]) // p
        span = (span[0][0:n * p:p], span[1][p - 1:n * p:p])
    span = block(span, levels - 1)
    for level in reversed(range(levels - 1)):
        p = cfg.pools[level][axis]
        up = (np.repeat(span[0], p), np.repeat(span[1], p))
        skip_lo, skip_hi = skips[level]
        c = (len(skip_lo) - len(up[0])) // 2
        n = len(up[0])
        span = block((np.minimum(up[0], skip_lo[c:c + n]), np.maximum(up[1], skip_hi[c:c + n])), level)
    lo, hi = span
    return int(np.max(hi - lo + 1))
