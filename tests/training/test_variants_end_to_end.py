"""The ablation's 2d and 3d variants of the tiny study configuration end to end on the small synthetic
cohort: pre-process (the 3d cache resampled in z), train a few iterations, predict a test case back
onto its original grid (``hepaseg predict``'s one-case form)."""

from __future__ import annotations

import numpy as np
import pytest

from hepaseg.presets import variant_config
from hepaseg.data.manifest import load_manifest
from hepaseg.data.preprocess import load_prepared, preprocess_dataset
from hepaseg.inference.batch import predict_paths
from hepaseg.io.volumes import read_volume
from hepaseg.model.folder import load_model, model_dir
from hepaseg.training.train import train_run

from ..tiny_study import tiny_study_config


@pytest.fixture(scope="module")
def prepared(rating_cohort, tmp_path_factory):
    """variant -> (config, cache) for aunet, 2d and 3d."""
    root = tmp_path_factory.mktemp("variants")
    out = {}
    for variant in ("aunet", "2d", "3d"):
        cfg = variant_config(tiny_study_config(iterations=4), variant)
        preprocess_dataset(rating_cohort, root / f"prep-{variant}", cfg.preprocess, workers=1, progress=False)
        out[variant] = (cfg, root / f"prep-{variant}")
    return out


def test_the_3d_cache_has_more_slices_on_a_2_mm_like_grid(prepared):
    aunet, three = (load_prepared(prepared[v][1]) for v in ("aunet", "3d"))
    slice_mm = prepared["3d"][0].preprocess.slice_spacing_mm
    assert slice_mm == 4.0  # the tiny configuration's in-plane spacing; the cohort's slices are 5-7 mm
    for a, b in zip(aunet.cases, three.cases):
        assert a.id == b.id
        assert b.image().shape[:2] == a.image().shape[:2] and b.image().shape[2] > a.image().shape[2]
        assert b.spacing[2] == pytest.approx(slice_mm) and b.grid().prepared_spacing[2] == pytest.approx(slice_mm)
        assert a.grid().ratio[2] == 1.0 and b.grid().ratio[2] < 1.0


@pytest.mark.parametrize("variant", ["2d", "3d"])
def test_a_variant_trains_and_predicts_a_case_on_its_original_grid(prepared, rating_cohort, tmp_path, variant):
    cfg, cache = prepared[variant]
    result = train_run(cache, tmp_path / "run", cfg, seed=0, device="cpu", progress=False)
    assert result.iterations_done == 4
    net, loaded = load_model(model_dir(tmp_path / "run"), "cpu")
    assert loaded == cfg and loaded.preset == f"{tiny_study_config().preset}-{variant}"
    case = load_manifest(rating_cohort).split("test")[0]
    out = tmp_path / "mask.nii.gz"
    summary = predict_paths(model_dir(tmp_path / "run"), out, image=case.image, liver=case.liver, device="cpu",
                            progress=False)
    assert summary.exit_code == 0
    mask, image = read_volume(out), read_volume(case.image)
    assert mask.shape == image.shape
    np.testing.assert_allclose(mask.affine, image.affine, atol=1e-6)
    assert set(np.unique(mask.array)) <= {0, 1}
