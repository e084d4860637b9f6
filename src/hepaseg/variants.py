"""The architecture variants of the ablation (issue 18): 2D vs anisotropic 3D (the paper) vs isotropic 3D.

``presets.variant_config(base, variant)`` (re-exported there) turns any configuration into one of
``VARIANTS``. Only the model, the patch output size, the preprocessing z grid and the inference tile
change; the iteration budget, batch, learning rate and schedule, patch sampling, loss, augmentation,
post-processing and evaluation stay the base's.

- ``aunet``: the base itself.
- ``2d``: the base's levels, widths, dropout and batch norm with ``kernel x kernel x 1`` convolutions,
  no 1x1x3 convolution and no pooling in z; one output slice per patch (its input is that slice alone,
  in-plane context only). The inference tile keeps its z: the net treats slices independently.
- ``3d``: ``k x k x k`` convolutions and 2x2x2 pooling at every level, no 1x1x3 convolution, on a grid
  resampled in z to the in-plane spacing (``PreprocessConfig.slice_spacing_mm``). The output patch's z
  covers the base's physical extent on ``TYPICAL_SLICE_MM`` slices (the synthetic cohort's are 3-5 mm):
  the demo's 12 slices of ~4 mm become 24 slices of 2 mm, the paper's 32 become 128 of 1 mm; the tile
  likewise. The widths are the base's divided by ``WIDTH_DIVISOR_3D`` (see there).

This module sits below ``config`` (``presets`` re-exports it) and so works on the configuration values by
``dataclasses.replace`` alone; its shape arithmetic covers only the uniform 3D net and is checked
against ``model.shapes`` by the tests.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import InputError

VARIANTS = ("aunet", "2d", "3d")
TYPICAL_SLICE_MM = 4.0  # the synthetic cohort's slices: 3-5 mm
# The isotropic net's widths: the base's / 2. Measured on the 2-core CPU (1 thread, float32,
# ``training.feasibility.seconds_per_step``, under load from another job): a demo step 0.34-0.36 s,
# demo-3d with half widths (8, 16, 32) 0.68-0.71 s (2x), with the demo's widths 1.36-1.48 s (4x,
# over the 3x allowed). paper-3d at batch 2 with half widths (32 .. 512): an estimated 32 GiB in
# float32, 17 GiB under bf16 (``training.feasibility.step_memory_bytes``; the paper preset's estimate
# of 17 GiB was measured at 15 GiB), so it fits an 80 GB GPU; with the paper's widths 65 / 33 GiB.
WIDTH_DIVISOR_3D = 2


def variant_config(base: Any, variant: str) -> Any:
    """``base`` (a ``config.Config``) as the given variant; ``"aunet"`` returns ``base`` itself.

    Raises:
        InputError: an unknown variant.
    """
    if variant not in VARIANTS:
        raise InputError(None, f"unknown variant {variant!r} (choose from {', '.join(VARIANTS)})")
    if variant == "aunet":
        return base
    model, patch, infer = base.model, base.patch, base.infer
    levels = len(model.widths)
    kx, ky = model.kernel[0], model.kernel[1]
    if variant == "2d":
        net = dataclasses.replace(model, kernel=(kx, ky, 1), z_convs=(0,) * levels,
                                  pools=tuple((p[0], p[1], 1) for p in model.pools))
        return base.replace(preset=f"{base.preset}-2d", model=net,
                            patch=dataclasses.replace(patch, output_size=(*patch.output_size[:2], 1)))
    if kx != ky:
        raise InputError(None, f"the 3d variant needs a square in-plane kernel, got {model.kernel}")
    net = dataclasses.replace(model, kernel=(kx, kx, kx), z_convs=(0,) * levels, pools=((2, 2, 2),) * (levels - 1),
                              widths=tuple(max(1, w // WIDTH_DIVISOR_3D) for w in model.widths))
    slice_mm = base.preprocess.inplane_spacing_mm
    scale = TYPICAL_SLICE_MM / slice_mm

    def size(s: tuple[int, int, int]) -> tuple[int, int, int]:
        return tuple(uniform_valid_output(levels, kx, n) for n in (s[0], s[1], round(s[2] * scale)))  # type: ignore

    return base.replace(
        preset=f"{base.preset}-3d", model=net,
        preprocess=dataclasses.replace(base.preprocess, slice_spacing_mm=slice_mm),
        patch=dataclasses.replace(patch, output_size=size(patch.output_size)),
        infer=dataclasses.replace(infer, tile_output_size=size(infer.tile_output_size)))


def uniform_valid_output(levels: int, kernel: int, wanted: int) -> int:
    """The largest valid output length <= ``wanted`` (else the smallest valid one) along an axis of a
    valid U-Net with ``levels`` levels, two convolutions of ``kernel`` per block and pooling 2 between
    levels (``model.shapes.valid_output_size`` for that net, which the tests check it against)."""
    n = max(int(wanted), 1)
    while n > 1 and not _uniform_valid(levels, kernel, n):
        n -= 1
    while not _uniform_valid(levels, kernel, n):
        n += 1
    return n


def _uniform_valid(levels: int, kernel: int, out: int) -> bool:
    shrink = 2 * (kernel - 1)
    n = out
    for _ in range(levels - 1):  # up the up path: the input of each up block, then the pooled size
        n += shrink
        if n % 2:
            return False
        n //= 2
    n += shrink  # the bottom block's input
    for _ in range(levels - 1):  # down the down path again: each level's input
        n = 2 * n + shrink
    size = n  # the network's input; check it forward
    skips = []
    for _ in range(levels - 1):
        size -= shrink
        if size < 1 or size % 2:
            return False
        skips.append(size)
        size //= 2
    size -= shrink
    if size < 1:
        return False
    for skip in reversed(skips):
        size *= 2
        if skip < size or (skip - size) % 2:
            return False
        size -= shrink
        if size < 1:
            return False
    return size == out
