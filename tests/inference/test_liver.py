"""The liver model at prediction time (``inference.liver``): plausibility of a liver mask, the
liver mask of a whole field mapped back to the original grid, and ``load_case`` without a mask."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hepaseg.config import Config, InferConfig, ModelConfig, PreprocessConfig
from hepaseg.errors import InputError
from hepaseg.inference.liver import MIN_LIVER_ML, extend_liver_by_tumours, liver_problem, predict_liver
from hepaseg.inference.predictor import Predictor, load_case
from hepaseg.io.volumes import Volume, read_volume, write_volume
from hepaseg.model.shapes import output_size
from hepaseg.model.unet import center_crop

from .predict_cases import CONFIG, make_affine, mask_dice

LIVER_CONFIG = Config(
    preset="test-liver",
    preprocess=PreprocessConfig(inplane_spacing_mm=2.5, normalisation="body", target="liver"),
    model=ModelConfig(widths=(4, 8), z_convs=(0, 1), pools=((2, 2, 1),), dropout=0.0),
    infer=InferConfig(tile_output_size=(16, 16, 8), restrict_to_liver=False, border_opening=False,
                      largest_component=True, fill_holes=True))


def bright_is_liver(x: torch.Tensor) -> torch.Tensor:
    """A stand-in liver network with the test model's margins: liver where the body-normalised image exceeds 0.6."""
    return 20.0 * (center_crop(x, output_size(LIVER_CONFIG.model, tuple(x.shape[2:]))) - 0.6)


def ellipsoid(shape, spacing, centre_mm, radii_mm) -> np.ndarray:
    grids = np.meshgrid(*(np.arange(n) * s for n, s in zip(shape, spacing)), indexing="ij")
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre_mm, radii_mm)) <= 1.0


def body_with_liver(spacing=(1.5, 1.5, 4.0), shape=(120, 110, 20), seed=0):
    """(image, liver): a body (grey) holding a bright ellipsoid liver with a dark cyst, plus a
    bright speck far from it that the largest-component step must drop."""
    rng = np.random.default_rng(seed)
    body = ellipsoid(shape, spacing, (90, 82, 40), (72, 58, 200))  # air around it, as in an MRI
    liver = ellipsoid(shape, spacing, (80, 82, 40), (52, 40, 44))  # 383 mL
    cyst = ellipsoid(shape, spacing, (80, 82, 40), (6, 6, 6))
    image = np.where(body, 600, 20) + np.where(liver & ~cyst, 300, 0) + rng.normal(0, 10, shape)
    image[95:99, 40:44, 8:10] = 1000  # a bright speck in the body, outside the liver
    return image.astype(np.float32), liver  # the cyst belongs to the liver mask


def test_liver_problem_names_missing_small_huge_and_framing_livers():
    affine = np.diag([2.0, 2.0, 5.0, 1.0])  # 0.02 mL per voxel
    mask = np.zeros((60, 60, 20), bool)
    assert liver_problem(mask, affine) == "no liver found"
    mask[5:55, 5:35, 5:15] = True  # 15 000 voxels = 300 mL, away from the first and last slice
    mask[5, 5, 5] = False  # just under the limit
    assert int(MIN_LIVER_ML / 0.02) - 1 == mask.sum()
    assert "implausible liver" in liver_problem(mask, affine) and "< 300 mL" in liver_problem(mask, affine)
    plausible = np.zeros_like(mask)
    plausible[10:40, 15:45, 2:18] = True  # 14 400 voxels = 288 mL: too small as well
    assert "288 mL" in liver_problem(plausible, affine)
    plausible[10:45, 10:50, 0:20] = True  # 28 000 voxels = 560 mL, 39 % of the field, touching no edge
    assert liver_problem(plausible, affine) is None
    framing = np.zeros_like(mask)
    framing[:, 0:6, :] = framing[0:6, :54, :] = framing[54:60, :54, :] = True  # a U: 18 720 voxels, 374 mL
    assert "touches 3 of the 4" in liver_problem(framing, affine)
    filling = np.zeros_like(mask)
    filling[5:55, 5:55, :] = True  # 69 % of the field
    assert "fills 69 %" in liver_problem(filling, affine)


@pytest.mark.parametrize("axes", [(0, 1, 2), (2, 0, 1)])
def test_a_liver_cut_by_the_field_of_view_may_be_small(axes):
    """A liver touching the first or last slice (the stack's z axis, wherever it lies in the array) is
    cut by the field of view: under 300 mL is no reason to refuse it; the same away from the ends is."""
    spacing = np.array([2.0, 2.0, 5.0])[list(axes)]
    affine = np.diag([0.0, 0.0, 0.0, 1.0])
    for array_axis, patient_axis in enumerate(axes):
        affine[patient_axis, array_axis] = spacing[array_axis]
    shape = tuple(np.array([60, 60, 20])[list(axes)])
    tip = np.zeros(shape, bool)
    index = [slice(10, 40)] * 3
    z_axis = axes.index(2)
    index[z_axis] = slice(0, 3)  # the bottom 3 slices: 30 x 30 x 3 voxels = 54 mL
    tip[tuple(index)] = True
    assert liver_problem(tip, affine) is None
    index[z_axis] = slice(5, 8)  # the same 54 mL inside the stack
    inside = np.zeros(shape, bool)
    inside[tuple(index)] = True
    assert "54 mL (< 300 mL)" in liver_problem(inside, affine)
    index[z_axis] = slice(19, 20)  # 18 mL at the top slice: too little even for a cut liver
    top = np.zeros(shape, bool)
    top[tuple(index)] = True
    assert "cut by the field of view" in liver_problem(top, affine) and "< 30 mL" in liver_problem(top, affine)


def test_predicted_liver_on_the_original_grid_matches_the_drawn_one():
    image, liver = body_with_liver()
    affine = make_affine(spacing=(1.5, 1.5, 4.0))
    volume = Volume(image, affine, "body.nii.gz")
    mask = predict_liver(Predictor(bright_is_liver, LIVER_CONFIG), volume)
    assert mask.shape == image.shape and mask.dtype == bool
    assert mask_dice(mask, liver) > 0.95  # through a 2.5 mm grid and back
    assert not mask[95:99, 40:44, 8:10].any()  # the speck is not the largest component
    assert mask[liver].mean() > 0.97  # the dark cyst is filled: holes belong to the liver


def test_load_case_without_a_mask_uses_the_liver_model_and_a_given_mask_wins(tmp_path):
    image, liver = body_with_liver()
    affine = make_affine(spacing=(1.5, 1.5, 4.0))
    image_path = write_volume(image.astype(np.int16), affine, tmp_path / "image.nii.gz")
    liver_path = write_volume(liver.astype(np.uint8), affine, tmp_path / "liver.nii.gz")
    model = Predictor(bright_is_liver, LIVER_CONFIG)
    auto = load_case(image_path, None, CONFIG.preprocess, liver_model=model)
    assert auto.liver_origin == "predicted" and "liver" in auto.timings
    assert mask_dice(auto.liver, liver) > 0.95
    given = load_case(image_path, liver_path, CONFIG.preprocess, liver_model=model)
    assert given.liver_origin == "given" and "liver" not in given.timings
    np.testing.assert_array_equal(given.liver, np.asarray(read_volume(liver_path).array) > 0)
    with pytest.raises(InputError, match="no liver mask given .* has no liver model"):
        load_case(image_path, None, CONFIG.preprocess)


def test_a_case_without_a_plausible_liver_fails_clearly(tmp_path):
    affine = make_affine(spacing=(1.5, 1.5, 4.0))
    image, _ = body_with_liver()
    image_path = write_volume(image.astype(np.int16), affine, tmp_path / "none.nii.gz")

    def finds_nothing(x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(center_crop(x, output_size(LIVER_CONFIG.model, tuple(x.shape[2:]))), -20.0)

    with pytest.raises(InputError, match=r"none.nii.gz: liver model: no liver found; no tumour mask written"):
        load_case(image_path, None, CONFIG.preprocess, liver_model=Predictor(finds_nothing, LIVER_CONFIG))
    body = ellipsoid(image.shape, (1.5, 1.5, 4.0), (90, 82, 40), (72, 58, 200))
    small = ellipsoid(image.shape, (1.5, 1.5, 4.0), (80, 82, 40), (20, 20, 20))  # 34 mL
    image = np.where(body, 600, 20) + np.where(small, 300, 0) + np.random.default_rng(1).normal(0, 10, image.shape)
    image_path = write_volume(image.astype(np.int16), affine, tmp_path / "small.nii.gz")
    with pytest.raises(InputError, match=r"small.nii.gz: liver model: implausible liver: 3\d mL \(< 300 mL\)"):
        load_case(image_path, None, CONFIG.preprocess, liver_model=Predictor(bright_is_liver, LIVER_CONFIG))


def test_extend_liver_keeps_whole_components_that_touch_the_liver():
    liver = np.zeros((12, 10, 3), np.uint8)
    liver[2:8, 2:8, :] = 1
    region = np.zeros_like(liver)
    region[1:11, 1:9, :] = 1  # the liver dilated by one voxel, plus x = 9..10
    prob = np.zeros(liver.shape, np.float32)
    prob[6:10, 4:6, 1] = 0.9  # half inside the liver: added whole (x = 8, 9 outside it)
    prob[8:10, 8, 0] = 0.7  # next to the liver's corner (7, 7, *), not in it: added whole
    prob[10, 1:3, 0] = 0.8  # inside the region, 3 voxels from the liver, touching no other: dropped
    prob[0, 0, 0] = 0.9  # outside the region: never added
    prob[4, 4, 2] = 0.5  # not above the level
    out = extend_liver_by_tumours(prob, liver, region, level=0.5)
    expected = liver.copy()
    expected[6:10, 4:6, 1] = 1
    expected[8:10, 8, 0] = 1
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(extend_liver_by_tumours(np.zeros_like(prob), liver, region), liver)


def _band(low: float, high: float):
    """A stand-in tumour network with the tumour model's margins: tumour where low < normalised image < high."""
    def net(x: torch.Tensor) -> torch.Tensor:
        c = center_crop(x, output_size(CONFIG.model, tuple(x.shape[2:])))
        return 20.0 * torch.minimum(c - low, high - c)
    return net


def test_automatic_prediction_keeps_a_tumour_at_the_liver_edge(tmp_path):
    spacing = (1.5, 1.5, 4.0)
    image, liver = body_with_liver(spacing=spacing)
    edge = ellipsoid(image.shape, spacing, (30, 82, 40), (8, 8, 8))  # centred 2 mm inside the liver's surface
    apart = ellipsoid(image.shape, spacing, (80, 34, 40), (4, 4, 8))  # 4 mm outside it, within the margin
    noise = np.random.default_rng(2).normal(0, 10, image.shape)
    image = np.where(edge | apart, 450 + noise, image).astype(np.float32)
    affine = make_affine(spacing=spacing)
    image_path = write_volume(image.astype(np.int16), affine, tmp_path / "image.nii.gz")
    case = load_case(image_path, None, CONFIG.preprocess, liver_model=Predictor(bright_is_liver, LIVER_CONFIG))
    assert case.liver[edge & ~liver].mean() < 0.1  # the liver model leaves the dark lesion out
    assert case.liver[edge & liver].mean() < 0.5

    tumour = Predictor(_band(-13.0, -9.0), CONFIG)  # lesion about -10.8, body -7, air -21.5 after normalisation
    result = tumour.predict(case, "image")
    assert result.mask[edge].mean() > 0.8  # kept whole (but its partial-volume rim), also outside the liver
    assert not result.mask[apart].any()  # dark, within the margin, but not touching the liver
    assert result.liver[edge].mean() > 0.8 and not result.liver[apart].any()
    assert (result.liver >= case.liver).all()  # only added to

    inside_only = Predictor(_band(-13.0, -9.0), CONFIG.replace(infer=dataclasses.replace(CONFIG.infer,
                                                                                         auto_liver_margin_mm=0.0)))
    cut = inside_only.predict(case, "image")
    assert cut.mask[edge].mean() < 0.5
    np.testing.assert_array_equal(cut.liver, case.liver)


def test_a_given_liver_is_never_extended(tmp_path):
    spacing = (1.5, 1.5, 4.0)
    image, liver = body_with_liver(spacing=spacing)
    edge = ellipsoid(image.shape, spacing, (30, 82, 40), (8, 8, 8))
    image = np.where(edge, 450.0, image).astype(np.float32)
    affine = make_affine(spacing=spacing)
    image_path = write_volume(image.astype(np.int16), affine, tmp_path / "image.nii.gz")
    liver_path = write_volume(liver.astype(np.uint8), affine, tmp_path / "liver.nii.gz")
    case = load_case(image_path, liver_path, CONFIG.preprocess)
    default = Predictor(_band(-13.0, -9.0), CONFIG).predict(case, "image")
    off = Predictor(_band(-13.0, -9.0), CONFIG.replace(infer=dataclasses.replace(CONFIG.infer, auto_liver_margin_mm=0.0)))
    np.testing.assert_array_equal(default.mask, off.predict(case, "image").mask)
    np.testing.assert_array_equal(default.liver, case.liver)
    assert not default.mask[edge & ~liver].any()  # restricted to the given liver
