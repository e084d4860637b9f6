"""Pre-processing: the 1 mm in-plane grid, its inverse, normalisation and the prepared-case cache."""

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
from hepaseg.io.geometry import plan_grid, to_original, to_prepared
from hepaseg.io.volumes import read_volume, write_volume


def _affine(spacing, flips=(1, 1, 1), angle=0.0, perm=(0, 1, 2), origin=(10.0, -20.0, 5.0)):
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag(flips)
    rot = rot[:, list(perm)]
    a = np.eye(4)
    a[:3, :3] = rot * np.asarray(spacing)[None, :]
    a[:3, 3] = origin
    return a


GRIDS = [
    ((0.74, 0.74, 2.0), {}),
    ((1.76, 1.3, 5.0), {"flips": (-1, -1, 1)}),
    ((0.9, 0.9, 3.0), {"flips": (1, -1, -1), "angle": 0.25}),
    ((1.2, 1.2, 4.0), {"perm": (1, 0, 2), "flips": (-1, 1, 1)}),
]


def _dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def _ellipsoids(shape, spacing, rng, n=4):
    """Binary mask of n random ellipsoids with radii >= 3 mm in-plane and >= 1.5 slices in z."""
    idx = np.indices(shape).astype(np.float64)
    mask = np.zeros(shape, bool)
    for _ in range(n):
        centre = rng.uniform(0.3, 0.7, 3) * np.array(shape)
        radii_mm = rng.uniform(4, 12, 3)
        radii_mm[2] = max(radii_mm[2], 1.6 * spacing[2])
        d = sum(((idx[a] - centre[a]) * spacing[a] / radii_mm[a]) ** 2 for a in range(3))
        mask |= d <= 1
    return mask


@pytest.mark.parametrize("spacing,kw", GRIDS)
def test_mask_to_1mm_and_back_keeps_dice(spacing, kw):
    shape = (60, 50, 12)
    grid = plan_grid(shape, _affine(spacing, **kw), 1.0)
    np.testing.assert_allclose(sorted(grid.prepared_spacing[:2]), [1.0, 1.0], atol=1e-9)
    mask = _ellipsoids(shape, np.array(spacing)[list(kw.get("perm", (0, 1, 2)))], np.random.default_rng(7))
    prepared = to_prepared(mask, grid, mask=True)
    assert prepared.dtype == np.uint8 and set(np.unique(prepared)) <= {0, 1}
    back = to_original(prepared, grid, mask=True)
    assert back.shape == shape
    assert _dice(back.astype(bool), mask) >= 0.98


@pytest.mark.parametrize("spacing,kw", GRIDS)
def test_prepared_affine_places_values_at_their_world_position(spacing, kw):
    """A linear function of world position survives in-plane linear resampling exactly."""
    shape = (40, 36, 6)
    affine = _affine(spacing, **kw)
    grid = plan_grid(shape, affine, 1.0)
    coeffs = np.array([0.3, -0.7, 0.2])
    world = np.einsum("ij,jxyz->ixyz", affine[:3, :3], np.indices(shape)) + affine[:3, 3, None, None, None]
    image = np.einsum("i,ixyz->xyz", coeffs, world)
    prepared = to_prepared(image, grid)
    pshape = grid.prepared_shape
    assert prepared.shape == pshape
    assert pshape[2] == 6, "z must never be resampled"
    pa = grid.prepared_affine
    interior = tuple(slice(2, n - 2) for n in pshape[:2]) + (slice(None),)
    pworld = np.einsum("ij,jxyz->ixyz", pa[:3, :3], np.indices(pshape)) + pa[:3, 3, None, None, None]
    expected = np.einsum("i,ixyz->xyz", coeffs, pworld)
    np.testing.assert_allclose(prepared[interior], expected[interior], atol=1e-3)
    assert pa[2, 2] > 0 and pa[0, 0] != 0, "prepared grid is canonical RAS (z along S)"


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
