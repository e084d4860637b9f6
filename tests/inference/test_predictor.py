"""Predicting one case (``inference.predictor``): mapping back near the liver box, mirror TTA, the
dark phantom tumour found and tabled, bf16 on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepaseg.config import InferConfig
from hepaseg.errors import InputError
from hepaseg.inference.predictor import Predictor, load_case, with_mirror_tta
from hepaseg.inference.tiling import predict_volume
from hepaseg.io.geometry import plan_grid, to_original, to_original_in_box
from hepaseg.io.volumes import read_volume
from hepaseg.model.unet import UNet

from .predict_cases import CONFIG, SHAPE, TUMOUR, dark_is_tumour, make_affine, mask_dice, write_case


@pytest.mark.parametrize("box", [((5, 4, 1), (20, 15, 5)), ((0, 0, 0), (26, 30, 6))])
def test_mapping_back_near_the_box_equals_the_full_mapping(box):
    grid = plan_grid((24, 30, 6), make_affine(spacing=(1.3, 0.8, 3.0)))
    lo, hi = (np.minimum(b, grid.prepared_shape) for b in box)
    prob = np.zeros(grid.prepared_shape, np.float32)
    prob[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = np.random.default_rng(0).random(tuple(hi - lo))
    fast = to_original_in_box(prob, grid, (lo, hi))
    np.testing.assert_allclose(fast, to_original(prob, grid), atol=1e-6)
    mask = (prob > 0.5).astype(np.uint8)
    np.testing.assert_array_equal(to_original_in_box(mask, grid, (lo, hi)) >= 0.5, to_original(mask, grid, mask=True))


def test_tta_of_a_flip_equivariant_predictor_equals_the_plain_prediction():
    # A valid 5 x 5 x 3 box filter is mirror-symmetric, and tiles do not change a per-voxel result.
    def box_filter(x):
        return torch.nn.functional.avg_pool3d(x, (5, 5, 3), stride=1) * 4 - 2

    def predict(image, liver):
        return predict_volume(box_filter, image, liver, (5, 4, 3), (2, 2, 1))

    rng = np.random.default_rng(0)
    image = rng.normal(size=(13, 11, 7)).astype(np.float32)
    liver = np.zeros(image.shape, np.uint8)
    liver[2:12, 1:9, 1:6] = 1
    plain = predict(image, liver)
    np.testing.assert_allclose(with_mirror_tta(predict)(image, liver), plain, atol=1e-6)

    calls = []
    with_mirror_tta(lambda i, l: calls.append(i.strides) or np.zeros(i.shape, np.float32))(image, liver)
    assert len(calls) == 4 and len(set(calls)) == 4  # the 4 in-plane mirrorings, each a different view
    calls.clear()
    with_mirror_tta(lambda i, l: calls.append(i.strides) or np.zeros(i.shape, np.float32), (0, 1, 2))(image, liver)
    assert len(calls) == 8 and len(set(calls)) == 8  # with z: the 8 mirrorings


def test_predictor_finds_the_dark_tumour_and_tables_it(tmp_path):
    image_path, liver_path = write_case(tmp_path / "c")
    case = load_case(image_path, liver_path, CONFIG.preprocess)
    result = Predictor(dark_is_tumour, CONFIG).predict(case, "c")
    painted = np.zeros(SHAPE, np.uint8)
    painted[TUMOUR] = 1
    assert result.mask.shape == SHAPE and mask_dice(result.mask, painted) > 0.85
    (lesion,) = result.lesions
    affine = read_volume(image_path).affine
    idx = np.argwhere(result.mask > 0)
    assert lesion.voxels == len(idx)
    assert lesion.volume_ml == pytest.approx(len(idx) * abs(np.linalg.det(affine[:3, :3])) / 1000)
    np.testing.assert_allclose([lesion.centroid_ras_x_mm, lesion.centroid_ras_y_mm, lesion.centroid_ras_z_mm],
                               affine[:3, :3] @ idx.mean(axis=0) + affine[:3, 3], atol=1e-4)
    assert lesion.mean_probability == pytest.approx(result.probability[result.mask > 0].mean(), rel=1e-5)
    assert lesion.mean_probability > 0.9
    # The painted square is 6 x 6 voxels of 1.25 x 1.1 mm: about hypot(7.5, 6.6) mm edge to edge.
    assert abs(lesion.diameter_mm - np.hypot(7.5, 6.6)) < 2.5

    tta = Predictor(dark_is_tumour, CONFIG.replace(infer=InferConfig(tile_output_size=(24, 24, 8), tta=True)))
    np.testing.assert_array_equal(tta.predict(case, "c").mask, result.mask)


def test_bf16_on_the_cpu_stays_close_to_float32(tmp_path):
    image, liver = write_case(tmp_path / "c")
    case = load_case(image, liver, CONFIG.preprocess)
    torch.manual_seed(0)
    net = UNet(CONFIG.model)
    fp32 = Predictor(net, CONFIG, "cpu", precision="fp32").probability(case.prepared, case.prepared_liver)
    bf16 = Predictor(net, CONFIG, "cpu", precision="bf16").probability(case.prepared, case.prepared_liver)
    assert fp32.any() and np.abs(bf16 - fp32).max() < 0.02
    with pytest.raises(InputError, match="unknown precision"):
        Predictor(net, CONFIG, "cpu", precision="fp8")
