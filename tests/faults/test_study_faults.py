"""Faults during ``hepaseg study``: kill -9 in the middle of A1, then ``--resume`` with the study's
own configuration ends with the same predictions and evaluation as an uninterrupted study."""

from __future__ import annotations

import json
import signal

import pytest

from hepaseg.pipeline.study import STATE
from hepaseg.synth import write_cohort

from ..tiny_study import tiny_liver_config, tiny_study_config
from .processes import digests, interrupt_when, run, temporaries


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("study-faults")
    manifest = write_cohort(root / "cohort", seed=3, small=True, workers=1, progress=False)
    config = root / "config.json"
    config.write_text(tiny_study_config(iterations=8).to_json())
    (root / "liver.json").write_text(tiny_liver_config().to_json())
    reference = root / "reference"
    done = run("study", str(manifest), "-o", str(reference), "--config", str(config), "--device", "cpu",
               "--workers", "1", "--liver-config", str(root / "liver.json"))
    assert done.returncode == 0, done.stderr
    return manifest, config, reference


def _results(folder):
    """Everything the study's outcome consists of: predictions, lesion tables, evaluation numbers."""
    return {**digests(folder, "preds/*/*.nii.gz"), **digests(folder, "preds/*/lesions.csv"),
            **digests(folder, "eval/*.csv"), **digests(folder, "a*/model/weights.safetensors")}


def _stages(folder) -> dict:
    path = folder / STATE
    return json.loads(path.read_text())["stages"] if path.is_file() else {}


def test_killed_in_a1_resumes_with_its_own_configuration_to_the_same_results(setup, tmp_path):
    manifest, config, reference = setup
    out = tmp_path / "study"
    killed = interrupt_when(["study", str(manifest), "-o", str(out), "--config", str(config), "--device", "cpu",
                             "--workers", "1", "--liver-config", str(config.parent / "liver.json")],
                            lambda: "a1" in _stages(out))
    assert killed.returncode == -signal.SIGKILL
    assert not _stages(out)["a1"].get("finished"), "the fault point was missed"
    done = run("study", str(manifest), "-o", str(out), "--resume", "--device", "cpu", "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "[preprocess] up to date, skipped" in done.stdout and "[a2] up to date, skipped" in done.stdout
    assert _results(out) == _results(reference)
    assert temporaries(out / "preds") == [] and temporaries(out / "eval") == []


def test_resume_with_another_preset_is_an_error(setup):
    manifest, _, reference = setup
    done = run("study", str(manifest), "-o", str(reference), "--resume", "--preset", "paper")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {reference}: was started with another configuration (preset 'demo'")
    assert done.stderr.count("\n") == 1
