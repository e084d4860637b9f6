"""The liver model's randomised cohort (``synth.appearance``, ``synth.distort``, ``randomized_spec``).

Expected values come from the issue's ranges (in-plane 0.7-2 mm, slices 2-9 mm, contrast inversions,
a liver cut at its top or bottom), from hand-made grids, and from a second way of computing (a
deformation with zero displacement is the identity; a cut grid's slices are the old grid's).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hepaseg.synth import default_raters, make_case, randomized_spec
from hepaseg.synth.appearance import DARK_RANGE, draw_appearance, texture
from hepaseg.synth.distort import CONTROL_POINTS, Deformation, cut_field_of_view
from hepaseg.synth.raster import Grid


def test_appearance_draws_are_reproducible_and_cover_the_ranges():
    draws = [draw_appearance(np.random.default_rng([7, i])) for i in range(300)]
    again = [draw_appearance(np.random.default_rng([7, i])) for i in range(300)]
    assert [d.to_dict() for d in draws] == [d.to_dict() for d in again]
    random = [d for d in draws if not d.hbp]
    assert 0.1 < 1 - len(random) / len(draws) < 0.3, "about a fifth keep the hepatobiliary-phase appearance"
    livers = np.array([d.liver_signal for d in random])
    spleens = np.array([d.signals.spleen for d in random])
    assert (livers < spleens).mean() > 0.2 and (livers > spleens).mean() > 0.2, "the liver darker and brighter"
    assert livers.min() < 0.2 and livers.max() > 1.2
    assert all(DARK_RANGE[0] <= d.signals.air <= DARK_RANGE[1] for d in random), "air stays dark"
    snrs = [d.acquisition.snr for d in random]
    assert min(snrs) < 10 and max(snrs) > 30
    scales = [d.acquisition.scale for d in random]
    assert max(scales) / min(scales) > 100, "stored scales over several decades"


def test_a_cut_field_of_view_leaves_out_the_livers_top_or_bottom():
    grid = Grid((8, 8, 60), (2.0, 2.0, 5.0), (0.0, 0.0, -250.0))  # z from -250 to 45 mm
    top, span = 0.0, 200.0  # liver from z = 0 down to -200
    seen = set()
    for seed in range(60):
        cut, kept = cut_field_of_view(np.random.default_rng(seed), grid, top, span)
        z_old = grid.axis(2)[kept]
        assert np.allclose(cut.axis(2), z_old), "the cut grid's slices are the old grid's"
        if cut.shape[2] == grid.shape[2]:
            seen.add("whole")
            continue
        if z_old[-1] < top:  # the top is gone: between 10 and 40 % of the liver's height
            assert top - 0.4 * span - 5.0 <= z_old[-1] <= top - 0.1 * span
            assert z_old[0] == grid.axis(2)[0]
            seen.add("top")
        else:
            assert top - 0.9 * span <= z_old[0] <= top - 0.6 * span + 5.0
            assert z_old[-1] == grid.axis(2)[-1]
            seen.add("bottom")
    assert seen == {"whole", "top", "bottom"}


def test_deformation_without_displacement_is_the_identity_and_with_one_moves_smoothly():
    grid = Grid((20, 16, 12), (2.0, 2.0, 4.0), (0.0, 0.0, 0.0))
    image = np.random.default_rng(0).random(grid.shape).astype(np.float32)
    labels = (image > 0.5).astype(np.uint8)
    still = Deformation(np.zeros((3, CONTROL_POINTS, CONTROL_POINTS, CONTROL_POINTS), np.float32))
    out_image, out_labels = still.apply([image, labels], grid, [1, 0])
    assert np.allclose(out_image, image, atol=1e-6) and np.array_equal(out_labels, labels)
    assert out_labels.dtype == np.uint8
    shift = np.zeros((3, CONTROL_POINTS, CONTROL_POINTS, CONTROL_POINTS), np.float32)
    shift[0] = 4.0  # 4 mm along x everywhere = 2 voxels
    coords = Deformation(shift).coordinates(grid)
    assert np.allclose(coords[0] - np.arange(20)[:, None, None], 2.0, atol=1e-5)
    assert np.allclose(coords[1] - np.arange(16)[None, :, None], 0.0, atol=1e-5)


@pytest.fixture(scope="module")
def randomized_cases():
    spec = dataclasses.replace(randomized_spec(n_train=6, n_val=0), matrix_max=128)
    return spec, [make_case(spec, 0, i) for i in range(6)]


def test_randomized_cases_follow_the_spec_and_the_seed(randomized_cases):
    spec, cases = randomized_cases
    again = make_case(spec, 0, 3)
    assert np.array_equal(again.image, cases[3].image) and np.array_equal(again.liver, cases[3].liver)
    for case in cases:
        dx, dy, dz = case.meta["geometry"]["spacing_mm"]
        assert 2.0 <= dz <= 9.0 and dx == dy and dx >= 0.7
        assert case.liver.any() and not case.raters
        assert case.meta["appearance"] is not None
        assert case.image.dtype == np.int16 and case.image.shape == case.liver.shape


def test_a_randomized_spec_has_no_raters():
    with pytest.raises(ValueError, match="no raters"):
        dataclasses.replace(randomized_spec(), raters=default_raters())


def test_texture_scales_each_tissue_by_its_own_sd():
    look = next(d for d in (draw_appearance(np.random.default_rng([3, i])) for i in range(50)) if not d.hbp)
    sd = [0.0] * 20
    sd[2], sd[14] = 0.1, 0.3  # muscle and spleen textured, everything else flat
    look = dataclasses.replace(look, tissue_sd=tuple(sd), texture_mm=2.0)
    labels = np.zeros((40, 40, 20), np.uint8)
    labels[:20], labels[20:30] = 2, 14
    signal = np.ones(labels.shape, np.float32)
    out = texture(signal.copy(), labels, look, (1.0, 1.0, 2.0), seed=9)
    assert np.array_equal(out[30:], signal[30:]), "a tissue with SD 0 keeps its signal"
    assert abs(float(out[:20].std()) - 0.1) < 0.03 and abs(float(out[20:30].std()) - 0.3) < 0.09
    assert np.array_equal(texture(signal.copy(), labels, look, (1.0, 1.0, 2.0), seed=9), out), "seeded"
    hbp = dataclasses.replace(look, tissue_sd=())
    assert np.array_equal(texture(signal.copy(), labels, hbp, (1.0, 1.0, 2.0), seed=9), signal)
