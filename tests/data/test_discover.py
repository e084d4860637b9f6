"""``hepaseg manifest`` on real case folders: NIfTI, NRRD, MHA, a DICOM series, and a synthetic cohort.

Expected split counts are worked out by hand from the documented rule: fractions of the labelled
cases rounded half up, at least one case per non-zero fraction when there are >= 3 labelled cases.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hepaseg.cli import main
from hepaseg.data.discover import build_manifest, split_counts, write_manifest
from hepaseg.data.manifest import check_dataset, load_manifest
from hepaseg.errors import InputError
from hepaseg.io.volumes import write_volume
from hepaseg.synth import small_spec, write_cohort

SHAPE = (8, 8, 4)
AFFINE = np.diag([0.8, 0.8, 3.0, 1.0])


def _liver() -> np.ndarray:
    liver = np.zeros(SHAPE, np.uint8)
    liver[1:7, 1:7, 0:4] = 1
    return liver


def _tumor() -> np.ndarray:
    tumor = np.zeros(SHAPE, np.uint8)
    tumor[3:5, 3:5, 1:3] = 1
    return tumor


def _case(root, case_id, raters=("R1",), image="image.nii.gz", liver="liver.nii.gz", tumor="tumor_{}.nii.gz",
          affine=AFFINE):
    """One case folder of tiny real volumes; ``image=None`` writes no image."""
    folder = root / case_id
    folder.mkdir(parents=True, exist_ok=True)
    if image is not None:
        write_volume(np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE), affine, folder / image)
    if liver is not None:
        write_volume(_liver(), affine, folder / liver)
    for rater in raters:
        write_volume(_tumor(), affine, folder / tumor.format(rater))
    return folder


@pytest.fixture
def cohort(tmp_path, write_dicom_series):
    """Seven cases in mixed formats: 6 labelled by R1 (p01, p02 also by R2), 1 unlabeled (p04)."""
    root = tmp_path / "my-cohort"
    _case(root, "p01", ("R1", "R2"))
    (root / "p01" / "notes.txt").write_text("ignored")
    (root / "p01" / "meta.json").write_text("{}")
    # p02: a DICOM series image and NRRD masks (one spelled 'Tumour') on the series' grid
    (root / "p02").mkdir(parents=True)
    dicom_affine = write_dicom_series(root / "p02" / "dicom", np.ones(SHAPE, np.int16) * 100, (0.8, 0.8, 3.0),
                                      (-40.0, -30.0, 10.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    _case(root, "p02", ("R1",), image=None, liver="liver.nrrd", tumor="Tumour_{}.nrrd", affine=dicom_affine)
    _case(root, "p02", ("R2",), image=None, liver=None, tumor="tumor_{}.nrrd", affine=dicom_affine)
    _case(root, "p03", ("R1",), image="IMAGE.MHA", liver="Liver.nii")
    _case(root, "p04", ())
    for case_id in ("p05", "p06", "p07"):
        _case(root, case_id)
    (root / ".hidden").mkdir()
    return root


def _splits(manifest: dict) -> dict[str, str]:
    return {c["id"]: c["split"] for c in manifest["cases"]}


def _counts(manifest: dict) -> dict[str, int]:
    splits = list(_splits(manifest).values())
    return {s: splits.count(s) for s in ("train", "val", "test", "unlabeled")}


@pytest.mark.parametrize("n, val, test, expected", [
    (0, 0.1, 0.2, (0, 0)), (1, 0.1, 0.2, (0, 0)), (2, 0.1, 0.2, (0, 0)),
    (3, 0.1, 0.2, (1, 1)),   # 0.3 -> 0 and 0.6 -> 1, raised to one each
    (5, 0.1, 0.2, (1, 1)),   # 0.5 rounds half up to 1; 1.0 -> 1
    (10, 0.1, 0.2, (1, 2)), (20, 0.1, 0.2, (2, 4)), (82, 0.1, 0.2, (8, 16)),
    (5, 0.0, 0.2, (0, 1)),   # an empty fraction stays empty
    (3, 0.4, 0.5, (1, 1)),   # 1.2 -> 1 and 1.5 -> 2 would leave no training case
    (2, 0.5, 0.4, (1, 0)),   # fewer than 3: plain rounding, one case kept for training
])
def test_split_counts(n, val, test, expected):
    assert split_counts(n, val, test) == expected


def test_cli_writes_a_manifest_that_passes_check(cohort, capsys):
    assert main(["manifest", str(cohort)]) == 0
    out = capsys.readouterr().out.splitlines()
    path = cohort / "dataset.json"
    # 6 labelled: val 0.6 -> 1, test 1.2 -> 1, train 4; p04 has no R1 mask
    assert out == [f"wrote {path}: 7 cases (4 train, 1 val, 1 test, 1 unlabeled); raters R1, R2",
                   f"next: hepaseg check {path}"]
    manifest = json.loads(path.read_text())
    assert manifest["name"] == "my-cohort" and manifest["raters"] == ["R1", "R2"]
    splits = _splits(manifest)
    assert list(splits) == ["p01", "p02", "p03", "p04", "p05", "p06", "p07"]
    assert splits["p04"] == "unlabeled"
    test_ids = [i for i, s in splits.items() if s == "test"]
    assert len(test_ids) == 1 and test_ids[0] in ("p01", "p02")  # drawn among the cases with every rater
    p02 = manifest["cases"][1]
    assert p02["image"] == "p02/dicom"
    assert p02["tumor"] == {"R1": "p02/Tumour_R1.nrrd", "R2": "p02/tumor_R2.nrrd"}
    assert manifest["cases"][2]["image"] == "p03/IMAGE.MHA" and manifest["cases"][2]["liver"] == "p03/Liver.nii"
    assert manifest["cases"][3]["tumor"] == {}

    dataset = load_manifest(path)
    assert dataset.case("p01").image == cohort.resolve() / "p01" / "image.nii.gz"
    report = check_dataset(path)
    assert report.problems == (), "\n".join(p.format() for p in report.problems)
    assert main(["check", str(path)]) == 0


def test_same_seed_same_bytes_and_seed_matters(cohort):
    a = write_manifest(cohort, cohort / "a.json", seed=3).path.read_bytes()
    b = write_manifest(cohort, cohort / "b.json", seed=3).path.read_bytes()
    assert a == b
    draws = {tuple(_splits(build_manifest(cohort, seed=seed)[0]).values()) for seed in range(8)}
    assert len(draws) > 1
    for draw in draws:
        assert draw.count("train") == 4 and draw.count("val") == 1 and draw.count("test") == 1


def test_test_case_without_every_rater_warns(cohort, capsys):
    assert main(["manifest", str(cohort), "--test", "0.5"]) == 0
    manifest = json.loads((cohort / "dataset.json").read_text())
    # 6 labelled: test 3.0 -> 3 = both cases with R1 and R2, then one with R1 only; val 0.6 -> 1
    assert _counts(manifest) == {"train": 2, "val": 1, "test": 3, "unlabeled": 1}
    lacking = [c["id"] for c in manifest["cases"] if c["split"] == "test" and "R2" not in c["tumor"]]
    assert len(lacking) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"warning: {cohort / lacking[0]}: test case lacks rater(s) R2 (hepaseg evaluate needs every "
                   f"rater's mask on test cases)"]


def test_splits_csv_fixes_the_splits(cohort, tmp_path, capsys):
    csv_path = tmp_path / "splits.csv"
    csv_path.write_text("case,split\np01,test\np02,test\np03,val\np05,train\np06,train\np07,train\n")
    out = tmp_path / "elsewhere" / "dataset.json"
    assert main(["manifest", str(cohort), "--splits", str(csv_path), "-o", str(out)]) == 0
    manifest = json.loads(out.read_text())
    assert _splits(manifest) == {"p01": "test", "p02": "test", "p03": "val", "p04": "unlabeled",
                                 "p05": "train", "p06": "train", "p07": "train"}
    assert manifest["cases"][0]["image"] == "../my-cohort/p01/image.nii.gz"
    assert manifest["generated"]["splits"] == "../splits.csv"
    assert check_dataset(out).problems == ()
    assert "1 unlabeled" in capsys.readouterr().out


@pytest.mark.parametrize("rows, problem", [
    ("p01,test\np99,train\n", "line 3: unknown case 'p99' (no such case folder)"),
    ("p01,training\n", "line 2: unknown split 'training' (use train, val, test, unlabeled)"),
    ("p01,test\np04,train\n", "line 3: case 'p04' has no tumour mask of the training rater 'R1'"),
    ("p01,test\np02,test\np03,val\np05,train\np06,train\n", "labelled cases not listed: p07"),
    ("p01,test\np01,val\n", "line 3: case 'p01' is listed twice"),
])
def test_bad_splits_csv_is_one_line_naming_the_csv(cohort, tmp_path, capsys, rows, problem):
    csv_path = tmp_path / "splits.csv"
    csv_path.write_text("case,split\n" + rows)
    assert main(["manifest", str(cohort), "--splits", str(csv_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {csv_path}: {problem}") and err.count("\n") == 1
    assert not (cohort / "dataset.json").exists()


def test_splits_csv_without_header_or_with_seed(cohort, tmp_path, capsys):
    csv_path = tmp_path / "splits.csv"
    csv_path.write_text("p01,test\n")
    with pytest.raises(InputError, match="expected a header with columns case,split"):
        build_manifest(cohort, splits_csv=csv_path)
    assert main(["manifest", str(cohort), "--splits", str(csv_path), "--seed", "1"]) == 2
    assert "give either --splits or --seed/--val/--test" in capsys.readouterr().err
    assert not (cohort / "dataset.json").exists()


@pytest.mark.parametrize("setup, problem", [
    (lambda f: _case(f.parent, f.name, image="image.nrrd", liver=None),
     "2 images (image.nii.gz, image.nrrd); keep one"),
    (lambda f: (f / "liver.nii.gz").unlink(), "no liver mask (expected liver with one of .nii, .nii.gz"),
    (lambda f: (f / "image.nii.gz").rename(f / "image.png"), "no image (expected image with one of"),
    (lambda f: _case(f.parent, f.name, ("r1",), image=None, liver=None, tumor="tumour_{}.nrrd"),
     "2 tumour masks of rater 'R1' (tumor_R1.nii.gz, tumour_r1.nrrd); keep one"),
])
def test_ambiguous_or_incomplete_case_folder(cohort, capsys, setup, problem):
    setup(cohort / "p05")
    assert main(["manifest", str(cohort)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cohort / 'p05'}: {problem}") and err.count("\n") == 1
    assert not (cohort / "dataset.json").exists()


def test_other_errors_are_one_line_and_write_nothing(cohort, tmp_path, capsys):
    assert main(["manifest", str(cohort)]) == 0
    before = (cohort / "dataset.json").read_bytes()
    capsys.readouterr()
    assert main(["manifest", str(cohort), "--seed", "5"]) == 2
    exists = f"error: {cohort / 'dataset.json'}: manifest exists; use --force to overwrite it\n"
    assert capsys.readouterr().err == exists
    assert (cohort / "dataset.json").read_bytes() == before
    assert main(["manifest", str(cohort), "--seed", "5", "--force"]) == 0
    assert json.loads((cohort / "dataset.json").read_text())["generated"]["seed"] == 5

    assert main(["manifest", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: folder not found\n"
    (tmp_path / "empty").mkdir()
    assert main(["manifest", str(tmp_path / "empty")]) == 2
    assert "no case folders" in capsys.readouterr().err
    assert main(["manifest", str(cohort), "-o", str(tmp_path / "m.json"), "--val", "0.5", "--test", "0.5"]) == 2
    assert "their sum below 1" in capsys.readouterr().err
    (cohort / "bad name").mkdir()
    assert main(["manifest", str(cohort), "-o", str(tmp_path / "m.json")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {cohort / 'bad name'}: folder name is not usable as a case id")
    assert not (tmp_path / "m.json").exists()


def test_manifest_inside_a_sub_folder_of_the_cohort(cohort):
    written = write_manifest(cohort, cohort / "manifests" / "dataset.json")
    assert [c["id"] for c in written.manifest["cases"]][-1] == "p07"  # 'manifests' is not a case
    assert written.manifest["cases"][0]["liver"] == "../p01/liver.nii.gz"
    assert check_dataset(written.path).problems == ()
    with pytest.raises(InputError, match="manifests: no image"):  # only the output's own folder is skipped
        build_manifest(cohort, cohort / "p07" / "dataset.json")
    written.path.unlink()
    (cohort / "manifests").rmdir()
    inside_a_case = write_manifest(cohort, cohort / "p07" / "dataset.json")  # p07 is still a case
    assert [c["id"] for c in inside_a_case.manifest["cases"]][-2:] == ["p06", "p07"]
    assert inside_a_case.manifest["cases"][-1]["image"] == "image.nii.gz"


def test_rater_selection(cohort):
    _case(cohort, "p05", ("truth",))
    manifest, warnings = build_manifest(cohort)
    assert manifest["raters"] == ["R1", "R2", "truth"]  # every name found, by default
    manifest, warnings = build_manifest(cohort, raters=["R1", "R2", "R9"])
    assert manifest["raters"] == ["R1", "R2"]
    assert warnings == [f"{cohort}: no case has a tumour mask of rater 'R9'; left out of 'raters'"]
    assert all("truth" not in c["tumor"] for c in manifest["cases"])
    manifest, _ = build_manifest(cohort, raters=["r2"], train_rater="R2")
    assert manifest["raters"] == ["r2"] and manifest["cases"][0]["tumor"] == {"r2": "p01/tumor_R2.nii.gz"}
    assert _counts(manifest) == {"train": 2, "val": 0, "test": 0, "unlabeled": 5}  # 2 labelled: none held out
    with pytest.raises(InputError, match="--train-rater R1 is not among --raters R2"):
        build_manifest(cohort, raters=["R2"])
    manifest, warnings = build_manifest(cohort, train_rater="R7")
    assert _counts(manifest)["unlabeled"] == 7
    assert "no case has a tumour mask of the training rater 'R7'" in warnings[0]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A real synthetic cohort (its own manifest kept aside): 2 train, 1 val, 2 test, 1 unlabeled."""
    folder = tmp_path_factory.mktemp("synth") / "cohort"
    spec = dataclasses.replace(small_spec(), n_train=2, n_val=1, n_test=2, n_unlabeled=1)
    path = write_cohort(folder, seed=0, spec=spec, workers=1, progress=False)
    original = json.loads(path.read_text())
    path.unlink()
    return folder, original


def test_synthetic_cohort(synthetic, capsys):
    folder, original = synthetic
    assert main(["manifest", str(folder), "--raters", "R1,R2,R3"]) == 0
    # 5 labelled: val 0.5 -> 1 (half up), test 1.0 -> 1, train 3; the unlabeled case has no R1 mask
    assert "6 cases (3 train, 1 val, 1 test, 1 unlabeled); raters R1, R2, R3" in capsys.readouterr().out
    manifest = json.loads((folder / "dataset.json").read_text())
    assert manifest["raters"] == original["raters"]
    for case, expected in zip(manifest["cases"], original["cases"], strict=True):
        assert {k: case[k] for k in ("id", "image", "liver", "tumor")} == \
            {k: expected[k] for k in ("id", "image", "liver", "tumor")}
        if expected["split"] == "unlabeled":
            assert case["split"] == "unlabeled"
        if case["split"] == "test":
            assert expected["split"] == "test"  # only the generator's test cases carry R2 and R3
    # both conditions above held for a case: the generator's one unlabeled case, the one test case drawn
    assert [c["split"] for c in original["cases"]].count("unlabeled") == 1
    assert [c["split"] for c in manifest["cases"]].count("test") == 1
    report = check_dataset(folder / "dataset.json")
    assert report.problems == (), "\n".join(p.format() for p in report.problems)

    # without --raters the hidden truth (tumor_truth.nii.gz) is taken as a rater too, as documented
    default, _ = build_manifest(folder, folder / "other.json")
    assert default["raters"] == ["R1", "R2", "R3", "truth"]
