"""Masked soft Dice loss: a hand-computed value and blindness outside the weight mask."""

from __future__ import annotations

import math

import pytest
import torch

from hepaseg.training.loss import masked_soft_dice_loss


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_hand_computed_value():
    # four voxels; the last one lies outside the weight mask
    probs = [0.8, 0.4, 0.1, 0.9]
    logits = torch.tensor([_logit(p) for p in probs]).reshape(1, 1, 4, 1, 1)
    target = torch.tensor([1.0, 1.0, 0.0, 1.0]).reshape(1, 1, 4, 1, 1)
    weight = torch.tensor([1.0, 1.0, 1.0, 0.0]).reshape(1, 1, 4, 1, 1)
    # inside: sum(p g) = 0.8 + 0.4 = 1.2; sum(p) = 1.3; sum(g) = 2
    expected = 1 - (2 * 1.2 + 1.0) / (1.3 + 2 + 1.0)
    loss = masked_soft_dice_loss(logits, target, weight)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert masked_soft_dice_loss(logits, target, weight, smooth=0.0).item() == pytest.approx(1 - 2.4 / 3.3, rel=1e-6)


def test_changes_outside_the_mask_change_nothing():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 5, 5, 3, requires_grad=True)
    target = (torch.rand(2, 1, 5, 5, 3) > 0.6).float()
    weight = (torch.rand(2, 1, 5, 5, 3) > 0.4).float()
    loss = masked_soft_dice_loss(logits, target, weight)
    loss.backward()
    outside = weight == 0
    assert torch.all(logits.grad[outside] == 0) and torch.any(logits.grad[~outside] != 0)
    other_logits = torch.where(outside, torch.randn_like(logits) * 10, logits.detach())
    other_target = torch.where(outside, 1 - target, target)
    assert masked_soft_dice_loss(other_logits, other_target, weight).item() == loss.item()


def test_bf16_logits_are_scored_in_float32():
    logits = torch.zeros(1, 1, 2, 2, 2, dtype=torch.bfloat16)
    loss = masked_soft_dice_loss(logits, torch.ones(1, 1, 2, 2, 2), torch.ones(1, 1, 2, 2, 2))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(1 - (2 * 4 + 1) / (4 + 8 + 1))
