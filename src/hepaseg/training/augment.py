"""On-the-fly augmentation (METHOD.md section 3): draw the parameters, then apply them.

Per patch: flip along each axis with probability ``flip_probability``; contrast
``x -> mean + alpha (x - mean)`` with ``alpha ~ U[lo, hi)``; brightness ``x -> x + beta`` with
``beta ~ N(0, brightness_sd)``; ``mean`` is the patch's gray value mean. ``draw_params`` takes an
explicit numpy Generator (on the host, in the sampler); ``apply`` works on torch tensors on any
device, so on a GPU the arithmetic runs there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..config import AugmentConfig


@dataclass(frozen=True)
class AugmentParams:
    """One patch's augmentation: flips along (x, y, z), contrast factor, brightness shift."""

    flips: tuple[bool, bool, bool]
    alpha: float
    beta: float


def draw_params(rng: np.random.Generator, cfg: AugmentConfig) -> AugmentParams:
    """Draw one patch's parameters: 3 flip coins, then alpha, then beta (in this order)."""
    flips = rng.random(3) < cfg.flip_probability
    alpha = rng.uniform(cfg.contrast_range[0], cfg.contrast_range[1])
    beta = rng.normal(0.0, cfg.brightness_sd)
    return AugmentParams((bool(flips[0]), bool(flips[1]), bool(flips[2])), float(alpha), float(beta))


def flip(params: AugmentParams, x: torch.Tensor) -> torch.Tensor:
    """Flip the last three (x, y, z) axes of ``x`` where ``params.flips`` says so."""
    dims = [x.ndim - 3 + axis for axis, f in enumerate(params.flips) if f]
    return torch.flip(x, dims) if dims else x


def intensity(params: AugmentParams, x: torch.Tensor) -> torch.Tensor:
    """Contrast and brightness: ``mean + alpha (x - mean) + beta``; ``mean`` over all of ``x``."""
    mean = x.mean()
    return (x - mean) * params.alpha + (mean + params.beta)


def apply(params: AugmentParams, image: torch.Tensor, masks: Sequence[torch.Tensor] = ()
          ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Augment one patch: ``image`` (C, X, Y, Z) and its masks (C, x, y, z), flipped alike.

    Input and output regions are centred on each other, so flipping both keeps them aligned.
    """
    return intensity(params, flip(params, image)), [flip(params, m) for m in masks]


def apply_batch(params: Sequence[AugmentParams], images: torch.Tensor, *masks: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
    """``apply`` to each patch of a batch: images (B, C, X, Y, Z), masks (B, C, x, y, z)."""
    out_images, out_masks = [], [[] for _ in masks]
    for b, p in enumerate(params):
        image, ms = apply(p, images[b], [m[b] for m in masks])
        out_images.append(image)
        for acc, m in zip(out_masks, ms):
            acc.append(m)
    return (torch.stack(out_images), *(torch.stack(acc) for acc in out_masks))
