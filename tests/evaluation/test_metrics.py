"""Dice, Jaccard and phi: hand-derived values, empty-mask conventions, and independent cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import dice as scipy_dice_dissimilarity

from hepaseg.evaluation.metrics import dice, dice_from_counts, jaccard, phi


def test_dice_and_jaccard_by_hand():
    a = np.array([[[1, 1, 0, 0]]])
    b = np.array([[[0, 1, 1, 0]]])
    # |a & b| = 1, |a| = |b| = 2, |a | b| = 3
    assert dice(a, b) == pytest.approx(2 * 1 / 4)
    assert jaccard(a, b) == pytest.approx(1 / 3)


def test_dice_three_of_five_by_hand():
    a = np.zeros((2, 2, 2), dtype=bool)
    b = np.zeros((2, 2, 2), dtype=bool)
    a[0, :, :] = True  # 4 voxels
    b[0, 0, 0] = b[1, 1, 1] = True  # 2 voxels, 1 shared
    assert dice(a, b) == pytest.approx(2 / 6)
    assert jaccard(a, b) == pytest.approx(1 / 5)


def test_non_binary_values_count_as_foreground():
    a = np.array([0, 2, 7, 0], dtype=np.int16)
    b = np.array([0, 1, 0, 0], dtype=np.uint8)
    assert dice(a, b) == pytest.approx(2 / 3)


@pytest.mark.parametrize("metric", [dice, jaccard])
def test_empty_mask_conventions(metric):
    empty = np.zeros((3, 3, 3), dtype=bool)
    one = empty.copy()
    one[1, 1, 1] = True
    assert metric(empty, empty) == 1.0
    assert metric(empty, one) == 0.0
    assert metric(one, empty) == 0.0
    assert metric(one, one) == 1.0


def test_single_voxel_touching_the_border():
    a = np.zeros((4, 4, 4), dtype=bool)
    a[0, 0, 0] = True
    b = a.copy()
    b[3, 3, 3] = True
    assert dice(a, b) == pytest.approx(2 / 3)


@pytest.mark.parametrize("metric", [dice, jaccard])
def test_shape_mismatch_raises(metric):
    with pytest.raises(ValueError, match="shapes differ"):
        metric(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))


@pytest.mark.parametrize("seed", range(20))
def test_random_masks_agree_with_scipy_and_the_jaccard_identity(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(2, 12, size=3))
    a = rng.random(shape) < rng.uniform(0.05, 0.6)
    b = rng.random(shape) < rng.uniform(0.05, 0.6)
    d = dice(a, b)
    assert d == pytest.approx(1.0 - scipy_dice_dissimilarity(a.ravel(), b.ravel()), abs=1e-12)
    assert jaccard(a, b) == pytest.approx(d / (2.0 - d), abs=1e-12)
    assert d == dice_from_counts(int((a & b).sum()), int(a.sum()), int(b.sum()))


def test_phi_reproduces_the_paper():
    # Paper: mean Dice of A1 0.738, inter-rater Dice 0.781.
    assert round(phi(0.738, 0.781), 3) == 0.880
    # 1 - 0.1 * 0.262 / 0.219
    assert phi(0.738, 0.781) == pytest.approx(1 - 0.1 * (1 - 0.738) / (1 - 0.781))


def test_phi_is_0_9_at_rater_level_and_clipped_at_0():
    assert phi(0.6, 0.6) == pytest.approx(0.9)
    assert phi(0.0, 0.99) == 0.0
    assert phi(1.0, 0.5) == 1.0
    assert phi(0.8, 0.6, alpha=0.2) == pytest.approx(1 - 0.2 * 0.2 / 0.4)


def test_phi_when_raters_agree_perfectly():
    assert phi(1.0, 1.0) == 1.0
    assert phi(0.999, 1.0) == 0.0


def test_phi_without_a_rater_pair_is_nan():
    assert math.isnan(phi(0.7, math.nan))
    assert math.isnan(phi(math.nan, 0.7))
