"""Validation during training (METHOD.md section 5): scores of whole-volume predictions.

Each validation case is predicted tile by tile over the liver (``inference.tiling.predict_tiled``),
restricted to the liver and thresholded (``inference.postprocess``: probability > threshold), and
compared with the training rater's mask, also restricted to the liver. ``validation_counts`` gives
per case the voxel counts (intersection, prediction, reference); ``validation_score`` turns them
into the score of ``train.validation_metric``:

- ``jaccard`` (the paper): mean over cases of the per-case Jaccard index (both masks empty = 1);
- ``dice``: mean over cases of the per-case Dice (both empty = 1);
- ``global_dice``: one Dice over all validation voxels pooled, ``2 sum I / (sum P + sum R)``, so a
  case weighs with its tumour volume and a small case's swing from 0 to 1 does not move the score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..checks import METRICS
from ..config import Config
from ..evaluation.metrics import dice_from_counts, jaccard_from_counts, overlap_counts
from ..inference.postprocess import restrict_to_liver, threshold
from ..inference.tiling import predict_tiled

LABELS = {"jaccard": "Jaccard", "dice": "mean Dice", "global_dice": "global Dice"}
Counts = tuple[int, int, int]  # (|P & R|, |P|, |R|) voxels


def validation_counts(net: torch.nn.Module, cases: Sequence[Any], config: Config, device: torch.device,
                      amp: bool = False, channels_last: bool = False) -> dict[str, Counts]:
    """Per case ``(intersection, predicted, reference)`` voxel counts of ``net`` (in eval mode for the
    duration) on prepared cases."""
    was_training = net.training
    net.eval()
    counts = {}
    try:
        for case in cases:
            liver = np.asarray(case.liver()) > 0
            prob = predict_tiled(net, config.model, case.image(), liver, config.infer.tile_output_size, device, amp,
                                 channels_last)
            prediction = threshold(restrict_to_liver(prob, liver), config.infer.threshold)
            reference = (np.asarray(case.tumor(config.train.rater)) > 0) & liver
            counts[case.id] = overlap_counts(prediction, reference)
    finally:
        net.train(was_training)
    return counts


def validation_score(counts: Mapping[str, Counts], metric: str) -> float:
    """The validation score of ``metric`` (one of ``checks.METRICS``) from per-case counts."""
    if metric not in METRICS:
        raise ValueError(f"unknown validation metric {metric!r} (one of {', '.join(METRICS)})")
    if metric == "global_dice":
        return dice_from_counts(*(sum(c[i] for c in counts.values()) for i in range(3)))
    per_case = jaccard_from_counts if metric == "jaccard" else dice_from_counts
    return sum(per_case(*c) for c in counts.values()) / len(counts)


def all_scores(counts: Mapping[str, Counts]) -> dict[str, float]:
    """Every metric's score, ``{"jaccard": ..., "dice": ..., "global_dice": ...}``."""
    return {m: validation_score(counts, m) for m in METRICS}


def metric_label(metric: str) -> str:
    """How outputs name the score of ``metric``: ``Jaccard``, ``mean Dice`` or ``global Dice``."""
    return LABELS.get(metric, metric)


def validate(net: torch.nn.Module, cases: Sequence[Any], config: Config, device: torch.device,
             amp: bool = False, channels_last: bool = False) -> dict[str, float]:
    """Per-case Jaccard of ``net`` (put in eval mode for the duration) on prepared cases."""
    return {cid: jaccard_from_counts(*c) for cid, c in validation_counts(net, cases, config, device, amp,
                                                                  channels_last).items()}
