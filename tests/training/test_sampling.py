"""Patch sampling (``training.sampling``): the liver weight mask, patch contents, the 90/10 split,
the sampler state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hepaseg.config import AugmentConfig, PatchConfig
from hepaseg.data.preprocess import load_prepared
from hepaseg.model.shapes import crop
from hepaseg.data.morphology import dilate_liver
from hepaseg.training.sampling import PatchSampler

OUT, MARGIN = (8, 8, 4), (6, 6, 2)


@pytest.fixture(scope="module")
def cases(tmp_path_factory, phantom_cache):
    root = phantom_cache(tmp_path_factory.mktemp("prep"), seed=1, n_train=2, n_val=0)
    return load_prepared(root).split("train")


def _sampler(cases, seed=0, **patch):
    return PatchSampler(cases, "R1", OUT, MARGIN, PatchConfig(**patch), AugmentConfig(), seed)


def test_dilation_is_a_disc_in_plane_and_slices_in_z():
    liver = np.zeros((9, 13, 5), np.uint8)
    liver[4, 6, 2] = 1
    d = dilate_liver(liver, (2.0, 1.0, 3.0), radius_mm=4.0, slices=1)
    # in-plane distance sqrt((2 dx)^2 + dy^2) <= 4, on slices 1..3
    expected = np.zeros_like(d)
    for dx in range(-2, 3):
        for dy in range(-4, 5):
            if (2 * dx) ** 2 + dy**2 <= 16:
                expected[4 + dx, 6 + dy, 1:4] = True
    assert np.array_equal(d, expected)
    assert not dilate_liver(np.zeros((3, 3, 3)), (1, 1, 1), 10.0, 1).any()


def test_patch_contents(cases, phantom_spacing):
    sampler, rng = _sampler(cases), np.random.default_rng(0)
    for _ in range(20):
        pos = sampler.draw_position(rng)
        image, target, weight = sampler.extract(pos)
        case, start = pos.case, pos.out_start
        assert image.shape == sampler.input_size and target.shape == weight.shape == OUT
        full = np.pad(np.asarray(case.image), [(m + 20, m + 20) for m in MARGIN], mode="edge")
        s = start + 20  # (start - margin) + (margin + 20)
        assert np.array_equal(image, full[s[0]:s[0] + image.shape[0], s[1]:s[1] + image.shape[1],
                                          s[2]:s[2] + image.shape[2]])
        weight_full = dilate_liver(case.liver, phantom_spacing, 10.0, 1)
        assert np.array_equal(weight, crop(weight_full.astype(np.uint8), start, OUT))
        assert np.array_equal(target, crop(np.asarray(case.tumor), start, OUT))


def test_ninety_ten_split_and_what_each_patch_holds(cases):
    sampler, rng = _sampler(cases), np.random.default_rng(7)
    n = 2000
    positions = [sampler.draw_position(rng) for _ in range(n)]
    tumour_patches = sum(p.tumor_patch for p in positions)
    sd = math.sqrt(n * 0.9 * 0.1)
    assert abs(tumour_patches - 0.9 * n) < 4 * sd
    for p in positions[:300]:
        region = crop(np.asarray(p.case.tumor if p.tumor_patch else p.case.liver), p.out_start, OUT)
        assert region.any()


def test_all_liver_patches_without_tumour_fraction(cases):
    sampler, rng = _sampler(cases, tumor_fraction=0.0), np.random.default_rng(0)
    assert not any(sampler.draw_position(rng).tumor_patch for _ in range(50))


def test_state_round_trip_repeats_the_batches(cases):
    sampler = _sampler(cases, seed=3)
    sampler.next_batch(2)
    state = sampler.state()
    first = sampler.next_batch(2)
    assert first.sampler_state == sampler.state() == state + 1 == 2 and first.index == 1
    sampler.set_state(state)
    again = sampler.next_batch(2)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.weight, again.weight)
    assert first.augment == again.augment
    assert first.image.shape == (2, 1, *sampler.input_size) and first.target.shape == (2, 1, *OUT)
    # a fresh sampler of the same seed draws batch 1 alike, without drawing batch 0 first
    other = _sampler(cases, seed=3).batch(1, 2)
    assert np.array_equal(other.image, first.image) and other.augment == first.augment


def test_a_batch_is_drawn_from_its_own_generator_of_seed_and_index(cases):
    """Batch i of seed s: per patch, a position and then augmentation parameters, from
    default_rng(SeedSequence([s, i])); replayed here with the sampler's public steps."""
    from hepaseg.training.augment import draw_params

    sampler = _sampler(cases, seed=11)
    batch = sampler.batch(5, 3)
    rng = np.random.default_rng(np.random.SeedSequence([11, 5]))
    for b in range(3):
        image, target, weight = sampler.extract(sampler.draw_position(rng))
        assert np.array_equal(batch.image[b, 0], image) and np.array_equal(batch.weight[b, 0], weight)
        assert np.array_equal(batch.target[b, 0], target)
        assert batch.augment[b] == draw_params(rng, AugmentConfig())
    assert sampler.state() == 0  # drawing by index leaves the sampler where it was
    assert not np.array_equal(_sampler(cases, seed=12).batch(5, 3).image, batch.image)
    assert not np.array_equal(sampler.batch(6, 3).image, batch.image)


@pytest.mark.parametrize("state", [{"state": {"state": 1}}, -1, True, 2.0])
def test_a_state_that_is_not_a_batch_index_is_an_input_error(cases, state):
    from hepaseg.errors import InputError

    with pytest.raises(InputError, match="batch index"):
        _sampler(cases).set_state(state)


class _ArrayCase:
    """A prepared case held in memory: one 1-voxel lesion and one 5 x 5 x 4 lesion (101 voxels)."""

    id, folder, spacing = "two-lesions", None, (1.0, 1.0, 3.0)

    def __init__(self):
        self.arrays = {"image": np.zeros((24, 24, 8), np.float32), "liver": np.ones((24, 24, 8), np.uint8)}
        tumor = np.zeros((24, 24, 8), np.uint8)
        tumor[2, 2, 1] = 1
        tumor[12:17, 12:17, 2:6] = 1
        self.arrays["tumor"] = tumor

    def image(self):
        return self.arrays["image"]

    def liver(self):
        return self.arrays["liver"]

    def tumor(self, rater):
        return self.arrays["tumor"]


@pytest.mark.parametrize("mode, small_share", [("voxel", 1 / 101), ("lesion", 1 / 2)])
def test_tumour_sampling_by_voxel_or_by_lesion(mode, small_share):
    sampler = PatchSampler([_ArrayCase()], "R1", OUT, MARGIN, PatchConfig(tumor_fraction=1.0, tumor_sampling=mode),
                           AugmentConfig(), 5)
    rng = np.random.default_rng(5)
    n = 4000
    # the drawn voxel lies at out_start + offset with 0 <= offset < OUT, and no 8 x 8 x 4 output region
    # reaches both lesions: the 1-voxel lesion was drawn exactly when the region holds (2, 2, 1)
    small = 0
    for _ in range(n):
        start = sampler.draw_position(rng).out_start
        small += int(all(s <= v < s + o for s, v, o in zip(start, (2, 2, 1), OUT)))
    sd = math.sqrt(n * small_share * (1 - small_share))
    assert abs(small - n * small_share) < 4 * sd + 1


def test_unknown_tumour_sampling_is_an_input_error():
    from hepaseg.errors import InputError

    with pytest.raises(InputError, match="tumor_sampling"):
        PatchSampler([_ArrayCase()], "R1", OUT, MARGIN, PatchConfig(tumor_sampling="size"), AugmentConfig(), 0)


class _LiverTargetCase(_ArrayCase):
    """A liver-model case: target ``liver`` (a block), and rater R1's one-voxel lesion beside it."""

    id, raters = "liver-target", ("liver", "R1")

    def __init__(self):
        super().__init__()
        target = np.zeros((24, 24, 8), np.uint8)
        target[8:20, 8:20, 2:7] = 1
        lesion = np.zeros((24, 24, 8), np.uint8)
        lesion[2, 2, 1] = 1
        self.arrays.update({"liver": np.ones((24, 24, 8), np.uint8), "target": target, "lesion": lesion})

    def tumor(self, rater):
        return self.arrays["target" if rater == "liver" else "lesion"]


def test_lesion_patches_of_the_liver_model_hold_a_lesion_voxel_in_their_share():
    sampler = PatchSampler([_LiverTargetCase()], "liver", OUT, MARGIN,
                           PatchConfig(tumor_fraction=0.0, lesion_fraction=0.3), AugmentConfig(), 2)
    rng = np.random.default_rng(2)
    n = 2000
    positions = [sampler.draw_position(rng) for _ in range(n)]
    lesion_patches = [p for p in positions if p.tumor_patch]  # tumor_fraction 0: only lesion patches are
    assert abs(len(lesion_patches) - 0.3 * n) < 4 * math.sqrt(n * 0.3 * 0.7)
    for p in lesion_patches:
        assert all(s <= v < s + o for s, v, o in zip(p.out_start, (2, 2, 1), OUT))


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_a_lesion_fraction_outside_zero_to_one_is_an_input_error(fraction):
    from hepaseg.errors import InputError

    with pytest.raises(InputError, match="lesion_fraction"):
        PatchSampler([_LiverTargetCase()], "liver", OUT, MARGIN, PatchConfig(lesion_fraction=fraction),
                     AugmentConfig(), 0)
