"""Training loss (METHOD.md section 5).

The loss is the soft Dice loss of the sigmoid output, counted only where the weight mask (the
dilated liver) is 1, over the whole batch at once:

    L = 1 - (2 sum(w p g) + s) / (sum(w p) + sum(w g) + s),  p = sigmoid(logit), s = ``smooth``.

Voxels with w = 0 neither count nor receive gradient.
"""

from __future__ import annotations

import torch

SMOOTH = 1.0  # voxels; keeps the loss defined for patches without tumour


def masked_soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                          smooth: float = SMOOTH) -> torch.Tensor:
    """Soft Dice loss inside the weight mask, in float32.

    Args:
        logits: (N, 1, x, y, z) network output (any float dtype).
        target: (N, 1, x, y, z) tumour labels 0/1.
        weight: (N, 1, x, y, z) loss mask 0/1.

    Returns:
        A scalar tensor in [0, 1].
    """
    p = torch.sigmoid(logits.float()) * weight
    g = target.float() * weight
    intersection = (p * g).sum()
    return 1.0 - (2.0 * intersection + smooth) / (p.sum() + g.sum() + smooth)
