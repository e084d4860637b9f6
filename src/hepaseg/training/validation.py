"""Validation during training (METHOD.md section 5): Jaccard of whole-volume predictions.

Each validation case is predicted tile by tile over the liver (``inference.tiling.predict_tiled``),
restricted to the liver and thresholded (``inference.postprocess``: probability > threshold); the score is
the mean of the per-case Jaccard indices (``evaluation.metrics.jaccard``: both masks empty counts as 1)
against the training rater's masks, also restricted to the liver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..config import Config
from ..evaluation.metrics import jaccard
from ..inference.postprocess import restrict_to_liver, threshold
from ..inference.tiling import predict_tiled


def validate(net: torch.nn.Module, cases: Sequence[Any], config: Config, device: torch.device,
             amp: bool = False, channels_last: bool = False) -> dict[str, float]:
    """Per-case Jaccard of ``net`` (put in eval mode for the duration) on prepared cases."""
    was_training = net.training
    net.eval()
    scores = {}
    try:
        for case in cases:
            liver = np.asarray(case.liver()) > 0
            prob = predict_tiled(net, config.model, case.image(), liver, config.infer.tile_output_size, device, amp,
                                 channels_last)
            prediction = threshold(restrict_to_liver(prob, liver), config.infer.threshold)
            scores[case.id] = jaccard(prediction, (np.asarray(case.tumor(config.train.rater)) > 0) & liver)
    finally:
        net.train(was_training)
    return scores
