"""The synthetic cohort (``hepaseg.synth``): files, determinism, geometry, signal, raters.

Expected values come from shared/PHANTOM.md and the issue, never from the generator's own
constants: e.g. the liver must be brighter than spleen, muscle and its own vessels in the stored
integers once scale and offset are undone, and the liver must lie on the patient's right (+x in
RAS+) whatever orientation the file has.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from hepaseg.data.manifest import check_dataset
from hepaseg.io.volumes import read_volume, voxel_spacing
from hepaseg.synth import CohortSpec, default_spec, make_case, small_spec, write_cohort
from hepaseg.synth.anatomy import draw_anatomy
from hepaseg.synth.case import STREAMS, case_rng
from hepaseg.synth.scanner import draw_scan

SMALL_SPLITS = {"train": 4, "val": 1, "test": 2, "unlabeled": 1}
RATERS_BY_SPLIT = {"train": {"R1"}, "val": {"R1"}, "test": {"R1", "R2", "R3"}, "unlabeled": set()}


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """The small cohort, written with two worker processes."""
    out = tmp_path_factory.mktemp("synth") / "small"
    write_cohort(out, seed=3, small=True, workers=2, progress=False)
    return out


@pytest.fixture(scope="module")
def manifest(cohort) -> dict:
    return json.loads((cohort / "dataset.json").read_text())


def _load(cohort: Path, case: dict) -> dict:
    """Every volume of one case, plus its meta.json."""
    cid = case["id"]
    arrays = {"image": read_volume(cohort / case["image"]), "liver": read_volume(cohort / case["liver"]),
              "truth": read_volume(cohort / cid / "tumor_truth.nii.gz"),
              "tissues": read_volume(cohort / cid / "tissues.nii.gz")}
    for rater, rel in case["tumor"].items():
        arrays[rater] = read_volume(cohort / rel)
    meta = json.loads((cohort / cid / "meta.json").read_text())
    return {"volumes": arrays, "meta": meta}


def _relative_signal(image: np.ndarray, meta: dict) -> np.ndarray:
    return (image.astype(np.float64) - meta["intensity"]["offset"]) / meta["intensity"]["scale"]


def test_same_seed_same_bytes_any_workers(cohort, tmp_path):
    again = tmp_path / "again"
    write_cohort(again, seed=3, small=True, workers=1, progress=False)
    assert _hashes(again) == _hashes(cohort)


def test_different_seed_different_case():
    spec = dataclasses.replace(small_spec(), n_train=1, n_val=0, n_test=0, n_unlabeled=0)
    a, b = make_case(spec, 3, 0), make_case(spec, 4, 0)
    assert a.image.shape != b.image.shape or not np.array_equal(a.image, b.image)


def test_splits_files_and_raters(cohort, manifest):
    assert manifest["raters"] == ["R1", "R2", "R3"]
    splits = [c["split"] for c in manifest["cases"]]
    assert {s: splits.count(s) for s in SMALL_SPLITS} == SMALL_SPLITS
    assert len({c["id"] for c in manifest["cases"]}) == len(manifest["cases"])
    for case in manifest["cases"]:
        assert set(case["tumor"]) == RATERS_BY_SPLIT[case["split"]]
        for rel in (case["image"], case["liver"], *case["tumor"].values()):
            assert not Path(rel).is_absolute() and (cohort / rel).is_file()
        assert (cohort / case["id"] / "tumor_truth.nii.gz").is_file()
        assert (cohort / case["id"] / "meta.json").is_file()
    assert not check_dataset(cohort / "dataset.json").errors


def test_volumes_readable_binary_and_on_one_grid(cohort, manifest):
    for case in manifest["cases"]:
        loaded = _load(cohort, case)
        vols, meta = loaded["volumes"], loaded["meta"]
        image = vols["image"]
        assert image.array.dtype == np.int16
        assert list(image.shape) == meta["geometry"]["shape"]
        for name, vol in vols.items():
            assert vol.shape == image.shape and np.allclose(vol.affine, image.affine), name
            if name not in ("image", "tissues"):
                assert vol.array.dtype == np.uint8 and set(np.unique(vol.array)) <= {0, 1}, name
        liver = vols["liver"].array > 0
        assert liver.sum() > 1000
        for name in ("truth", *case["tumor"]):
            tumour = vols[name].array > 0
            assert not np.any(tumour & ~liver), f"{case['id']} {name}: tumour outside the liver"


def test_small_cohort_geometry_within_its_spec(cohort, manifest):
    spec = small_spec()
    for case in manifest["cases"]:
        vol = read_volume(cohort / case["image"])
        dx, dy, dz = voxel_spacing(vol.affine)
        assert dx == pytest.approx(dy)
        # the pixel is drawn in range and raised only where the body would not fit the matrix
        assert spec.inplane_mm[0] - 1e-6 <= dx
        assert dx <= spec.inplane_mm[1] + 1e-6 or max(vol.shape[:2]) == spec.matrix_max
        assert spec.slice_mm[0] - 1e-6 <= dz <= spec.slice_mm[1] + 1e-6
        assert spec.slices[0] <= vol.shape[2] <= spec.slices[1]
        assert max(vol.shape[:2]) <= spec.matrix_max


def test_default_geometry_ranges_and_orientations():
    """Scan geometry of 30 default cases, drawn without rendering."""
    spec = default_spec()
    codes, swapped = set(), 0
    for index in range(30):
        rng = case_rng(0, index, STREAMS["anatomy"])
        anat = draw_anatomy(rng, cirrhotic=bool(rng.random() < 0.35))
        scan = draw_scan(case_rng(0, index, STREAMS["scan"]), spec, anat)
        affine = scan.affine()
        dx, dy, dz = voxel_spacing(affine)
        assert 0.74 <= dx <= 1.76 and dx == pytest.approx(dy)
        assert 2.0 <= dz <= 5.0
        nx, ny, nz = scan.file_shape
        assert max(nx, ny) <= 512 and 40 <= nz <= 120
        # axial slices: the third file axis runs along z only, the first two have no z component
        assert np.allclose(affine[:2, 2], 0) and abs(affine[2, 2]) == pytest.approx(dz)
        assert np.allclose(affine[2, :2], 0)
        codes.add(scan.orientation())
        swapped += scan.axes[0] == 1
    assert len(codes) >= 4 and swapped >= 1


def _world_centroid(labels: np.ndarray, code: int, affine: np.ndarray) -> np.ndarray:
    idx = np.argwhere(labels == code).mean(axis=0)
    return affine[:3, :3] @ idx + affine[:3, 3]


def test_anatomy_in_place_whatever_the_orientation(cohort, manifest):
    """Liver on the patient's right (+x), spleen on the left, lungs above the liver (+z)."""
    for case in manifest["cases"]:
        loaded = _load(cohort, case)
        tissues = loaded["volumes"]["tissues"]
        codes = loaded["meta"]["anatomy"]["tissue_labels"]
        liver = _world_centroid(tissues.array, codes["liver"], tissues.affine)
        spleen = _world_centroid(tissues.array, codes["spleen"], tissues.affine)
        lung = _world_centroid(tissues.array, codes["lung"], tissues.affine)
        assert liver[0] > spleen[0] + 50, case["id"]
        assert lung[2] > liver[2] + 30, case["id"]


def test_liver_is_the_brightest_large_organ(cohort, manifest):
    with_vessels = 0
    for case in manifest["cases"]:
        loaded = _load(cohort, case)
        vols, meta = loaded["volumes"], loaded["meta"]
        signal = _relative_signal(vols["image"].array, meta)
        tissues = vols["tissues"].array
        codes = meta["anatomy"]["tissue_labels"]
        liver = np.median(signal[tissues == codes["liver"]])
        assert 0.6 < liver < 1.4
        for other in ("spleen", "muscle", "fat", "kidney", "aorta"):
            assert np.median(signal[tissues == codes[other]]) < liver, (case["id"], other)
        in_liver = vols["liver"].array > 0
        vessels = np.isin(tissues, [codes["portal_vein"], codes["hepatic_vein"]]) & in_liver
        if vessels.sum() >= 5:  # a median of fewer voxels says little
            assert np.median(signal[vessels]) < 0.8 * liver, case["id"]
            with_vessels += 1
        background = signal[tissues == codes["background"]]
        assert np.median(background) < 0.15 * liver
    # every liver has portal and hepatic veins (docs/synthetic-cohort.md): the vessel check ran on most cases
    assert with_vessels > len(manifest["cases"]) / 2


def test_lesions_darker_than_liver(cohort, manifest):
    seen = 0
    for case in manifest["cases"]:
        loaded = _load(cohort, case)
        vols, meta = loaded["volumes"], loaded["meta"]
        signal = _relative_signal(vols["image"].array, meta)
        truth = vols["truth"].array > 0
        if truth.sum() < 3:
            continue
        parenchyma = (vols["liver"].array > 0) & ~truth
        assert np.median(signal[truth]) < np.median(signal[parenchyma]), case["id"]
        seen += 1
    assert seen >= 3


def test_meta_lesions_match_the_truth(cohort, manifest):
    kinds = {"hcc", "metastasis", "cyst", "haemangioma"}
    test_cases = 0
    for case in manifest["cases"]:
        loaded = _load(cohort, case)
        truth = loaded["volumes"]["truth"].array > 0
        lesions = loaded["meta"]["lesions"]
        assert len(lesions) <= 15
        assert sum(row["voxels"] for row in lesions) == truth.sum()
        for row in lesions:
            assert row["kind"] in kinds and 3.0 <= row["diameter_mm"] <= 80.0
        if case["split"] == "test":
            assert lesions, "test cases carry at least one lesion"
            test_cases += 1
    assert test_cases == SMALL_SPLITS["test"]


def _tiny_test_cases(n: int) -> list:
    spec = dataclasses.replace(small_spec(), n_train=0, n_val=0, n_test=n, n_unlabeled=0)
    return [make_case(spec, 11, i) for i in range(n)]


def test_raters_differ_but_overlap():
    """Pooled over six coarse test cases: raters agree substantially, never exactly."""
    cases = _tiny_test_cases(6)
    masks = {r: [c.raters[r] > 0 for c in cases] for r in ("R1", "R2", "R3")}
    masks["truth"] = [c.truth > 0 for c in cases]

    def pooled_dice(a: str, b: str) -> float:
        inter = sum(int((x & y).sum()) for x, y in zip(masks[a], masks[b]))
        total = sum(int(x.sum() + y.sum()) for x, y in zip(masks[a], masks[b]))
        return 2 * inter / total

    for a, b in (("R1", "R2"), ("R1", "R3"), ("R2", "R3"), ("R1", "truth"), ("R2", "truth"), ("R3", "truth")):
        assert 0.4 < pooled_dice(a, b) < 0.98, (a, b)
    # R1 draws outside the true edge, R2 inside it (personal rim bias)
    assert sum(m.sum() for m in masks["R1"]) > sum(m.sum() for m in masks["R2"])


def test_spec_is_frozen_and_validated():
    spec = default_spec()
    assert (spec.n_train, spec.n_val, spec.n_test, spec.n_unlabeled) == (58, 5, 19, 25)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.n_train = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        CohortSpec(n_train=-1)
    with pytest.raises(ValueError):
        CohortSpec(matrix_max=100)
    assert [spec.split_of(i) for i in (0, 57, 58, 62, 63, 81, 82, 106)] == [
        "train", "train", "val", "val", "test", "test", "unlabeled", "unlabeled"]


def test_late_validation_cases_follow_all_others():
    spec = CohortSpec(n_train=2, n_val=1, n_test=2, n_unlabeled=1, n_val_late=2)
    assert spec.n_cases == 8
    assert [spec.split_of(i) for i in range(8)] == ["train", "train", "val", "test", "test", "unlabeled", "val", "val"]
    with pytest.raises(IndexError):
        spec.split_of(8)
    with pytest.raises(ValueError):
        CohortSpec(n_val_late=-1)
