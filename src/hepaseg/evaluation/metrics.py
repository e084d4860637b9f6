"""Overlap metrics on masks: Dice, Jaccard, and the uncertainty-aware score phi (METHOD.md section 8).

Pure functions on arrays, no file I/O. A mask is any array; non-zero voxels are foreground.
Empty-mask conventions (pinned by tests):

- ``dice`` / ``jaccard``: both masks empty -> 1.0 (perfect agreement on "no tumour");
  exactly one empty -> 0.0.
- ``phi``: when the raters agree perfectly (mean inter-rater Dice 1, denominator 0), phi is 1.0 if
  the algorithm also agrees perfectly (mean Dice 1) and 0.0 otherwise. When there is no rater pair
  (inter-rater Dice NaN) phi is NaN.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

PHI_ALPHA = 0.1  # METHOD.md section 8; the configurable value is EvalConfig.phi_alpha


def _foreground(mask: ArrayLike) -> NDArray[np.bool_]:
    array = np.asarray(mask)
    return array if array.dtype == np.bool_ else array != 0


def overlap_counts(a: ArrayLike, b: ArrayLike) -> tuple[int, int, int]:
    """(|a & b|, |a|, |b|) in voxels; raises ValueError on a shape mismatch."""
    fa, fb = _foreground(a), _foreground(b)
    if fa.shape != fb.shape:
        raise ValueError(f"mask shapes differ: {fa.shape} vs {fb.shape}")
    return int(np.count_nonzero(fa & fb)), int(np.count_nonzero(fa)), int(np.count_nonzero(fb))


def dice_from_counts(intersection: int, size_a: int, size_b: int) -> float:
    """Dice ``2 |A & B| / (|A| + |B|)`` from voxel counts; 1.0 when both sets are empty."""
    total = size_a + size_b
    return 1.0 if total == 0 else 2 * intersection / total


def jaccard_from_counts(intersection: int, size_a: int, size_b: int) -> float:
    """Jaccard ``|A & B| / |A | B|`` from voxel counts; 1.0 when both sets are empty."""
    union = size_a + size_b - intersection
    return 1.0 if union == 0 else intersection / union


def dice(a: ArrayLike, b: ArrayLike) -> float:
    """Dice similarity coefficient of two masks of the same shape.

    Args:
        a: mask, any shape; non-zero is foreground.
        b: mask of the same shape.

    Returns:
        ``2 |a & b| / (|a| + |b|)`` in [0, 1]; 1.0 when both masks are empty, 0.0 when exactly
        one is empty.

    Raises:
        ValueError: the shapes differ.
    """
    return dice_from_counts(*overlap_counts(a, b))


def jaccard(a: ArrayLike, b: ArrayLike) -> float:
    """Jaccard index ``|a & b| / |a | b|`` of two masks of the same shape.

    Same conventions as ``dice`` (both empty -> 1.0). Related to Dice by ``J = D / (2 - D)``.

    Raises:
        ValueError: the shapes differ.
    """
    return jaccard_from_counts(*overlap_counts(a, b))


def phi(mean_dice: float, inter_rater_dice: float, alpha: float = PHI_ALPHA) -> float:
    """Uncertainty-aware score of an algorithm against several raters.

    ``phi = max(1 - alpha * (1 - mean_dice) / (1 - inter_rater_dice), 0)``, so that phi = 1 - alpha
    (0.9 by default) means "as far from the raters as the raters are from each other".

    Args:
        mean_dice: mean over raters i of Dice(algorithm, R_i), for one case.
        inter_rater_dice: mean over rater pairs i < j of Dice(R_i, R_j), same case; NaN if there
            is no pair.
        alpha: weight of the relative error (METHOD.md: 0.1).

    Returns:
        phi in [0, 1]. Raters in perfect agreement (``inter_rater_dice == 1``): 1.0 if
        ``mean_dice == 1`` else 0.0. NaN if either input is NaN.
    """
    if math.isnan(mean_dice) or math.isnan(inter_rater_dice):
        return math.nan
    denominator = 1.0 - inter_rater_dice
    if denominator <= 0.0:
        return 1.0 if mean_dice >= 1.0 else 0.0
    return max(1.0 - alpha * (1.0 - mean_dice) / denominator, 0.0)
