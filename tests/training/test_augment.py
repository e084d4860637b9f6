"""Augmentation: parameter laws (by moments on many draws), flips, contrast and brightness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hepaseg.config import AugmentConfig
from hepaseg.training.augment import AugmentParams, apply, apply_batch, draw_params, flip


def test_parameter_distributions():
    rng = np.random.default_rng(0)
    cfg = AugmentConfig()
    n = 20_000
    draws = [draw_params(rng, cfg) for _ in range(n)]
    alpha = np.array([d.alpha for d in draws])
    beta = np.array([d.beta for d in draws])
    flips = np.array([d.flips for d in draws], dtype=float)
    # alpha ~ U[0.75, 1.25): mean 1, variance 0.5^2 / 12; all in the half-open interval
    assert alpha.min() >= 0.75 and alpha.max() < 1.25
    assert alpha.mean() == pytest.approx(1.0, abs=4 * math.sqrt(0.5**2 / 12 / n))
    assert alpha.var() == pytest.approx(0.5**2 / 12, rel=0.05)
    # beta ~ N(0, 0.25): mean 0, sd 0.25, no skew
    assert beta.mean() == pytest.approx(0.0, abs=4 * 0.25 / math.sqrt(n))
    assert beta.std() == pytest.approx(0.25, rel=0.03)
    assert abs(((beta - beta.mean()) ** 3).mean() / beta.std() ** 3) < 0.1
    # each axis flipped with p = 0.5, independently
    assert np.allclose(flips.mean(axis=0), 0.5, atol=4 * math.sqrt(0.25 / n))
    assert abs(np.corrcoef(flips.T)[0, 1]) < 0.05


def test_same_generator_state_same_parameters():
    a = draw_params(np.random.default_rng(5), AugmentConfig())
    b = draw_params(np.random.default_rng(5), AugmentConfig())
    assert a == b


def test_flip_twice_is_identity_and_flips_the_right_axes():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(1, 2, 3, 4, 5)
    for flips in [(True, False, False), (False, True, True), (True, True, True)]:
        p = AugmentParams(flips, 1.0, 0.0)
        assert torch.equal(flip(p, flip(p, x)), x)
    y = flip(AugmentParams((False, True, False), 1.0, 0.0), x)
    assert torch.equal(y[..., 0, :], x[..., 3, :]) and torch.equal(y[..., 1, :], x[..., 2, :])  # y has 4 voxels


def test_contrast_and_brightness_around_the_patch_mean():
    x = torch.rand(1, 6, 6, 4, dtype=torch.float64) * 3
    p = AugmentParams((False, False, False), 1.2, -0.3)
    y, _ = apply(p, x)
    mean = x.mean()
    assert torch.allclose(y, mean + 1.2 * (x - mean) - 0.3)
    assert y.mean().item() == pytest.approx(mean.item() - 0.3)
    assert y.std().item() == pytest.approx(1.2 * x.std().item())


def test_masks_follow_the_image_flips_and_keep_their_values():
    image = torch.rand(2, 1, 10, 10, 6)
    mask = torch.zeros(2, 1, 4, 4, 2)
    mask[0, 0, 0, 1, 0] = 1
    mask[1, 0, 3, 3, 1] = 1
    params = [AugmentParams((True, True, False), 0.9, 0.1), AugmentParams((False, False, True), 1.1, 0.0)]
    img, out = apply_batch(params, image, mask)
    assert img.shape == image.shape and out.shape == mask.shape
    assert out[0, 0, 3, 2, 0] == 1 and out[1, 0, 3, 3, 0] == 1 and out.sum() == 2
    assert torch.allclose(img[0, 0, 9, 9], (image[0, 0].mean() + 0.9 * (image[0, 0, 0, 0] - image[0, 0].mean())) + 0.1)
