"""Pre-processing (``data.preprocess``): normalisation, the prepared-case cache, its errors and the CLI.

The 1 mm in-plane grid and its inverse are ``io.geometry``'s (tests/io/test_geometry.py)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hepaseg.cli import main
from hepaseg.config import PreprocessConfig
from hepaseg.data.preprocess import (
    liver_percentiles,
    load_prepared,
    normalize,
    prepare_volume,
    preprocess_dataset,
    save_prepared_case,
)
from hepaseg.errors import InputError
from hepaseg.io.geometry import to_original
from hepaseg.io.volumes import read_volume, write_volume

from ..axis_order import write_dicom_case


def _affine(spacing, flips=(1, 1, 1), origin=(10.0, -20.0, 5.0)):
    a = np.diag([*(f * s for f, s in zip(flips, spacing)), 1.0])
    a[:3, 3] = origin
    return a


def _dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_normalisation_maps_percentiles_without_clipping():
    image = np.arange(1000, dtype=np.float64).reshape(10, 10, 10)
    liver = np.zeros_like(image, bool)
    liver[2:8, 2:8, 2:8] = True
    values = image[liver]
    p2, p98 = liver_percentiles(image, liver, 2, 98)
    assert (p2, p98) == (np.percentile(values, 2), np.percentile(values, 98))
    out = normalize(image, p2, p98)
    np.testing.assert_allclose(out, (image - p2) / (p98 - p2), rtol=1e-5, atol=1e-5)
    assert out.min() < 0 and out.max() > 1, "values outside the percentiles are not clipped"


def _write_case(root, case_id, rng, spacing=(0.8, 0.8, 3.0), flips=(-1, -1, 1)):
    shape = (64, 56, 10)
    affine = _affine(spacing, flips=flips)
    liver = np.zeros(shape, np.uint8)
    liver[10:50, 8:45, 2:9] = 1
    tumor = np.zeros(shape, np.uint8)
    tumor[20:30, 20:30, 4:7] = 1
    image = (400 + 600 * liver.astype(float) - 300.0 * tumor + rng.normal(0, 20, shape)).astype(np.int16)
    folder = root / case_id
    for name, arr in (("image", image), ("liver", liver), ("tumor_R1", tumor)):
        write_volume(arr, affine, folder / f"{name}.nii.gz")
    return {"id": case_id, "split": "train", "image": f"{case_id}/image.nii.gz",
            "liver": f"{case_id}/liver.nii.gz", "tumor": {"R1": f"{case_id}/tumor_R1.nii.gz"}}


def test_preprocess_dataset_caches_and_skips_unchanged(tmp_path, capsys):
    rng = np.random.default_rng(0)
    entries = [_write_case(tmp_path, f"c{i}", rng) for i in range(3)]
    entries[2]["split"] = "unlabeled"
    entries[2]["tumor"] = {}
    manifest = tmp_path / "dataset.json"
    manifest.write_text(json.dumps({"name": "t", "raters": ["R1"], "cases": entries}))
    cache = tmp_path / "prep"
    config = PreprocessConfig()
    summary = preprocess_dataset(manifest, cache, config, workers=2, progress=False)
    assert (summary.done, summary.skipped) == (3, 0)

    prepared = load_prepared(cache)
    assert [c.id for c in prepared.cases] == ["c0", "c1", "c2"]
    assert [c.id for c in prepared.split("unlabeled")] == ["c2"]
    case = prepared.cases[0]
    assert case.spacing == pytest.approx((1.0, 1.0, 3.0))
    image, liver = case.image(), case.liver()
    assert isinstance(image, np.memmap) and image.dtype == np.float32
    assert image.shape == liver.shape == case.tumor("R1").shape == (51, 45, 10)
    p2, p98 = np.percentile(image[liver > 0], [2, 98])
    assert abs(p2) < 0.1 and abs(p98 - 1) < 0.1, "liver intensities normalised to about [0, 1]"
    source = read_volume(tmp_path / "c0" / "liver.nii.gz")
    back = to_original(liver, case.grid(), mask=True)
    assert _dice(back.astype(bool), source.array > 0) >= 0.98
    with pytest.raises(InputError, match="no tumour mask of rater 'R2'"):
        case.tumor("R2")

    again = preprocess_dataset(manifest, cache, config, workers=1, progress=False)
    assert (again.done, again.skipped) == (0, 3)
    os.utime(tmp_path / "c1" / "image.nii.gz", ns=(1, 1))
    assert preprocess_dataset(manifest, cache, config, workers=1, progress=False).done == 1

    assert main(["preprocess", str(manifest), "-o", str(cache), "--workers", "1"]) == 0
    assert "0 cases prepared, 3 unchanged" in capsys.readouterr().out


def test_empty_liver_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    entry = _write_case(tmp_path, "c0", np.random.default_rng(1))
    write_volume(np.zeros((64, 56, 10), np.uint8), _affine((0.8, 0.8, 3.0), flips=(-1, -1, 1)),
                 tmp_path / "c0" / "liver.nii.gz")
    manifest = tmp_path / "dataset.json"
    manifest.write_text(json.dumps({"name": "t", "raters": ["R1"], "cases": [entry]}))
    assert main(["preprocess", str(manifest), "-o", str(tmp_path / "prep"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "liver.nii.gz: liver mask is empty" in err and "Traceback" not in err
    assert not (tmp_path / "prep" / "c0").exists()


def test_prepare_volume_rejects_constant_liver(tmp_path):
    path = write_volume(np.full((8, 8, 3), 7, np.int16), np.eye(4), tmp_path / "flat.nii.gz")
    liver = write_volume(np.ones((8, 8, 3), np.uint8), np.eye(4), tmp_path / "liver.nii.gz")
    with pytest.raises(InputError, match="constant"):
        prepare_volume(read_volume(path), read_volume(liver), PreprocessConfig())


def test_save_prepared_case_round_trips(tmp_path):
    image = np.random.default_rng(2).normal(size=(5, 6, 7)).astype(np.float32)
    liver = np.ones((5, 6, 7), np.uint8)
    save_prepared_case(tmp_path, "x", "val", image, liver, {"R1": liver}, (1.0, 1.0, 2.5))
    case = load_prepared(tmp_path).cases[0]
    np.testing.assert_array_equal(case.image(), image)
    assert (case.split, case.raters, case.spacing, case.grid()) == ("val", ("R1",), (1.0, 1.0, 2.5), None)


def test_errors_from_worker_processes_keep_file_and_message(tmp_path):
    entries = [_write_case(tmp_path, f"c{i}", np.random.default_rng(i)) for i in range(2)]
    write_volume(np.zeros((64, 56, 10), np.uint8), _affine((0.8, 0.8, 3.0), flips=(-1, -1, 1)),
                 tmp_path / "c1" / "liver.nii.gz")
    manifest = tmp_path / "dataset.json"
    manifest.write_text(json.dumps({"name": "t", "raters": ["R1"], "cases": entries}))
    with pytest.raises(InputError) as err:
        preprocess_dataset(manifest, tmp_path / "prep", PreprocessConfig(), workers=2, progress=False)
    assert err.value.path.endswith("c1/liver.nii.gz") and err.value.message == "liver mask is empty"


def test_a_chosen_series_and_a_liver_mask_in_another_axis_order_prepare_as_the_canonical_case(
        tmp_path, write_dicom_series):
    entry, uid = write_dicom_case(tmp_path, write_dicom_series)
    canonical = {**entry, "id": "canonical", "liver": "case/liver_canonical.nii.gz"}
    manifest = tmp_path / "dataset.json"
    manifest.write_text(json.dumps({"name": "t", "raters": ["R1"], "cases": [entry, canonical]}))
    preprocess_dataset(manifest, tmp_path / "prep", PreprocessConfig(), workers=1, progress=False)
    reordered, reference = load_prepared(tmp_path / "prep").cases
    for read in (lambda c: c.image(), lambda c: c.liver(), lambda c: c.tumor("R1")):
        np.testing.assert_array_equal(read(reordered), read(reference))
    hbp = read_volume(tmp_path / "hbp")  # the series alone in its folder
    np.testing.assert_allclose(reordered.grid().original_affine, hbp.affine)
    record = json.loads((tmp_path / "prep" / "case" / "record.json").read_text())
    assert record["source"]["series"] == uid


def test_a_liver_model_cache_has_the_whole_field_as_region_and_the_liver_as_target(tmp_path):
    rng = np.random.default_rng(1)
    entry = _write_case(tmp_path, "c0", rng)
    manifest = tmp_path / "dataset.json"
    manifest.write_text(json.dumps({"name": "t", "raters": ["R1"], "cases": [entry]}))
    config = PreprocessConfig(inplane_spacing_mm=2.0, normalisation="body", target="liver")
    preprocess_dataset(manifest, tmp_path / "prep", config, workers=1, progress=False)
    (case,) = load_prepared(tmp_path / "prep").cases
    assert case.raters == ("liver", "R1") and case.spacing == pytest.approx((2.0, 2.0, 3.0))
    assert np.all(case.liver() == 1), "the region is the whole field of view"
    source = read_volume(tmp_path / "c0" / "liver.nii.gz")
    back = to_original(case.tumor("liver"), case.grid(), mask=True)
    assert _dice(back.astype(bool), source.array > 0) >= 0.93, "the target is the liver mask (0.8 -> 2 mm -> 0.8)"
    # the lesions beside it (for lesion patches): the 8 mm cube of R1 is 4 x 4 x 3 voxels of 2 x 2 x 3 mm
    lesion = np.argwhere(case.tumor("R1"))
    assert len(lesion) == 4 * 4 * 3 and np.array_equal(np.ptp(lesion, axis=0), (3, 3, 2))
    # the percentiles come from the body: the voxels above the Otsu threshold of the original image
    from skimage.filters import threshold_otsu

    original = np.asarray(read_volume(tmp_path / "c0" / "image.nii.gz").array, dtype=np.float64)
    body = original > threshold_otsu(original.astype(np.float32))
    p2, p98 = np.percentile(original[body], [2, 98])
    assert case.record()["normalization"] == {"region": "body", "percentiles": [2.0, 98.0],
                                              "values": pytest.approx([p2, p98], rel=1e-4)}


def test_unknown_normalisation_or_target_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(2)
    entry = _write_case(tmp_path, "c0", rng)
    manifest = tmp_path / "dataset.json"
    manifest.write_text(json.dumps({"name": "t", "raters": ["R1"], "cases": [entry]}))
    with pytest.raises(InputError, match="unknown normalisation 'mean'"):
        preprocess_dataset(manifest, tmp_path / "p1", PreprocessConfig(normalisation="mean"), workers=1, progress=False)
    with pytest.raises(InputError, match="unknown preprocess target 'spleen'"):
        preprocess_dataset(manifest, tmp_path / "p2", PreprocessConfig(target="spleen"), workers=1, progress=False)


def test_a_rater_named_liver_clashes_with_the_liver_models_target(tmp_path):
    entry = _write_case(tmp_path, "c0", np.random.default_rng(3))
    entry["tumor"] = {"liver": entry["tumor"]["R1"]}
    manifest = tmp_path / "dataset.json"
    manifest.write_text(json.dumps({"name": "t", "raters": ["liver"], "cases": [entry]}))
    config = PreprocessConfig(inplane_spacing_mm=2.0, normalisation="body", target="liver")
    with pytest.raises(InputError, match="rater named 'liver' clashes") as err:
        preprocess_dataset(manifest, tmp_path / "prep", config, workers=1, progress=False)
    assert "tumor_R1.nii.gz" in str(err.value)
    assert not (tmp_path / "prep" / "c0").exists()


def test_body_normalisation_does_not_depend_on_the_stored_scale_or_type(tmp_path):
    """The liver model's intensity rule needs no liver: the same scan stored as int16, as float32 with
    a NIfTI scl_slope of 4385 (values up to millions), and as float64 prepares to the same image."""
    import nibabel as nib

    from hepaseg.data.preprocess import prepare_volume

    rng = np.random.default_rng(5)
    x, y, z = np.meshgrid(np.arange(64), np.arange(56), np.arange(12), indexing="ij")
    body = ((x - 32) / 28.0) ** 2 + ((y - 28) / 24.0) ** 2 < 1
    signal = np.where(body, 300 + 200 * (x > 32), 5) + rng.normal(0, 8, body.shape)
    stored = np.clip(np.rint(signal), 0, 32767).astype(np.int16)
    affine = _affine((1.5, 1.5, 4.0))
    config = PreprocessConfig(inplane_spacing_mm=3.0, slice_spacing_mm=4.0, normalisation="body", target="liver")
    as_int = tmp_path / "int16.nii.gz"
    nib.save(nib.Nifti1Image(stored, affine), as_int)
    scaled = nib.Nifti1Image(stored, affine)
    scaled.header.set_slope_inter(4385.0, 0.0)  # the same int16 on disk, read as int16 x 4385
    as_scaled = tmp_path / "scaled.nii.gz"
    nib.save(scaled, as_scaled)
    as_double = tmp_path / "double.nii.gz"
    nib.save(nib.Nifti1Image(stored.astype(np.float64) * 4385.0, affine), as_double)
    reference, _, _, _ = prepare_volume(read_volume(as_int), None, config)
    for path in (as_scaled, as_double):
        volume = read_volume(path)
        assert float(np.asarray(volume.array).max()) > 1e6
        prepared, _, _, _ = prepare_volume(volume, None, config)
        assert np.allclose(prepared, reference, atol=1e-4)
    as_float = tmp_path / "float.nii.gz"
    nib.save(nib.Nifti1Image(stored.astype(np.float32) / 1000.0, affine), as_float)  # values 0-0.5
    prepared, _, _, _ = prepare_volume(read_volume(as_float), None, config)
    assert np.allclose(prepared, reference, atol=1e-4)
