"""The liver model end to end on the small synthetic cohort (``rating_cohort``): ``hepaseg
train-liver`` trains it in seconds, ``--liver-model`` embeds it, and ``predict`` without ``-l``
uses it (``inference.liver``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hepaseg.cli import main
from hepaseg.config import read_config
from hepaseg.data.manifest import load_manifest
from hepaseg.errors import InputError
from hepaseg.inference.liver import liver_problem, predict_liver
from hepaseg.inference.predictor import Predictor
from hepaseg.io.volumes import read_volume
from hepaseg.model.folder import embed_liver_model, load_model

from ..inference.predict_cases import model_folder
from ..tiny_study import tiny_liver_config, tiny_study_config


@pytest.fixture(scope="module")
def liver_run(rating_cohort, tmp_path_factory):
    """``hepaseg train-liver`` with the tiny liver configuration: (run folder, the CLI's exit code)."""
    root = tmp_path_factory.mktemp("liver")
    config = root / "liver.json"
    config.write_text(tiny_liver_config().to_json())
    code = main(["train-liver", str(rating_cohort), "-o", str(root / "run"), "--config", str(config), "--device", "cpu",
                 "--workers", "1"])
    return root / "run", code


def test_train_liver_makes_a_liver_model_folder(liver_run, rating_cohort):
    run, code = liver_run
    assert code == 0
    config = read_config(run / "model" / "config.json")
    assert config.preprocess.target == "liver" and config.train.rater == "liver"
    info = json.loads((run / "model" / "model.json").read_text())
    assert [h["iteration"] for h in info["history"]] == [2, 4]
    trained = {p.name for p in (run / "prep").iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert trained == {c.id for c in load_manifest(rating_cohort).cases}, "every case's liver is in the liver cache"


def test_predict_without_a_liver_mask_uses_the_embedded_liver_model(liver_run, rating_cohort, tmp_path, capsys):
    run, _ = liver_run
    model = model_folder(tmp_path / "model")  # a tumour model whose mask is the whole liver it is given
    assert main(["train", str(run / "prep"), "-o", str(tmp_path / "x"), "--liver-model", str(model)]) == 2
    assert "is not a liver model" in capsys.readouterr().err
    embed_liver_model(run / "model", model)
    case = load_manifest(rating_cohort).split("test")[0]
    image = read_volume(case.image)
    net, config = load_model(run / "model")
    expected = predict_liver(Predictor(net, config), image)  # the same liver model, called directly
    problem = liver_problem(expected, image.affine)
    code = main(["predict", str(model), "-i", str(case.image), "-o", str(tmp_path / "out"), "--device", "cpu"])
    captured = capsys.readouterr()
    if problem is None:  # a plausible liver: the outputs use it
        assert code == 0
        np.testing.assert_array_equal(np.asarray(read_volume(tmp_path / "out" / "liver.nii.gz").array) > 0, expected)
        np.testing.assert_array_equal(np.asarray(read_volume(tmp_path / "out" / "tumor.nii.gz").array) > 0, expected)
    else:  # the tiny model's liver is implausible: one line naming the case, nothing written
        assert code == 2 and f"liver model: {problem}; no tumour mask written" in captured.err
        assert not (tmp_path / "out" / "tumor.nii.gz").exists()
    given = main(["predict", str(model), "-i", str(case.image), "-l", str(case.liver), "-o", str(tmp_path / "given"),
                  "--device", "cpu"])
    assert given == 0, "a given liver mask always wins"
    np.testing.assert_array_equal(read_volume(tmp_path / "given" / "liver.nii.gz").array > 0,
                                  read_volume(case.liver).array > 0)


def test_train_liver_refuses_a_tumour_configuration(rating_cohort, tmp_path, capsys):
    config = tmp_path / "tumour.json"
    config.write_text(tiny_study_config().to_json())
    assert main(["train-liver", str(rating_cohort), "-o", str(tmp_path / "run"), "--config", str(config)]) == 2
    assert "is not a liver-model configuration" in capsys.readouterr().err
    with pytest.raises(InputError, match="not a hepaseg model folder"):
        embed_liver_model(tmp_path / "nothing", tmp_path / "model")


def _liver_command(args, out, capsys):
    """``hepaseg liver`` with ``args``: (exit code, stderr)."""
    code = main(["liver", *args, "-o", str(out), "--device", "cpu"])
    return code, capsys.readouterr().err


def test_liver_command_on_a_nifti_file_and_on_a_dicom_series(liver_run, rating_cohort, tmp_path, capsys,
                                                           write_dicom_series):
    run, _ = liver_run
    case = load_manifest(rating_cohort).split("test")[0]
    image = read_volume(case.image)
    net, config = load_model(run / "model")
    expected = predict_liver(Predictor(net, config), image)  # the same model, called directly
    stored = np.asarray(image.array).astype(np.int16)
    voxel = np.linalg.norm(image.affine[:3, :3], axis=0)
    # the same voxels as a DICOM series: i along the patient's left (LPS x), j posterior, slices upwards
    dicom_affine = write_dicom_series(tmp_path / "dicom", stored, tuple(float(v) for v in voxel), (0.0, 0.0, 0.0),
                                      (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    dicom = read_volume(tmp_path / "dicom")
    np.testing.assert_allclose(dicom.affine, dicom_affine, atol=1e-4)
    expected_dicom = predict_liver(Predictor(net, config), dicom)
    for source, mask, out in ((case.image, expected, tmp_path / "liver.nii.gz"),
                              (tmp_path / "dicom", expected_dicom, tmp_path / "dicom_liver.nrrd")):
        code, err = _liver_command(["-i", str(source), "--model", str(run / "model")], out, capsys)
        if liver_problem(mask, read_volume(source).affine) is None:
            assert code == 0, err
            np.testing.assert_array_equal(np.asarray(read_volume(out).array) > 0, mask)
        else:  # the tiny model's liver is implausible: one line, nothing written
            assert code == 2 and ("liver model: implausible liver" in err or "liver model: no liver found" in err)
            assert not out.exists()


def test_liver_command_refuses_a_tumour_model_and_says_when_none_is_shipped(tmp_path, capsys, monkeypatch):
    from hepaseg.model import folder

    model = model_folder(tmp_path / "tumour")
    code, err = _liver_command(["-i", str(tmp_path / "x.nii.gz"), "--model", str(model)], tmp_path / "l.nii.gz", capsys)
    assert code == 2 and "is not a liver model" in err
    monkeypatch.setattr(folder, "shipped_liver_dir", lambda: None)
    code, err = _liver_command(["-i", str(tmp_path / "x.nii.gz")], tmp_path / "l.nii.gz", capsys)
    assert code == 2 and "no shipped liver model" in err
    assert not (tmp_path / "l.nii.gz").exists()


def test_the_shipped_liver_model_is_package_data():
    """The wheel carries ``hepaseg/shipped/liver/*.safetensors`` and ``*.json``; where the weights are
    there, they load as a liver model."""
    import tomllib
    from importlib import resources
    from pathlib import Path

    from hepaseg.model.folder import SHIPPED_LIVER_PACKAGE, WEIGHTS, check_liver_model, shipped_liver_dir

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"][SHIPPED_LIVER_PACKAGE]
    assert "*.safetensors" in data and "*.json" in data
    packaged = Path(str(resources.files(SHIPPED_LIVER_PACKAGE)))
    assert packaged.is_dir()
    shipped = shipped_liver_dir()
    assert (shipped is None) == (not (packaged / WEIGHTS).is_file())
    if shipped is not None:
        assert check_liver_model(shipped).preprocess.target == "liver"


def test_train_liver_takes_a_manifest_or_randomized_not_both_nor_neither(rating_cohort, tmp_path, capsys):
    assert main(["train-liver", "-o", str(tmp_path / "a")]) == 2
    assert "give either a manifest or --randomized" in capsys.readouterr().err
    assert main(["train-liver", str(rating_cohort), "--randomized", "-o", str(tmp_path / "b")]) == 2
    assert "give either a manifest or --randomized" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
