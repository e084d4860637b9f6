"""Faults during ``hepaseg study``: kill -9 in the middle of A1, then ``--resume`` with the study's
own configuration ends with the same predictions and evaluation as an uninterrupted study."""

from __future__ import annotations

import json
import signal
from dataclasses import replace

import pytest

from hepaseg.config import InferConfig, ModelConfig, PreprocessConfig, SelectConfig, demo_config
from hepaseg.pipeline.study import STATE
from hepaseg.synth import write_cohort

from .processes import digests, interrupt_when, run, temporaries


def _tiny_config():
    cfg = demo_config()
    return cfg.replace(
        preprocess=PreprocessConfig(inplane_spacing_mm=4.0),
        model=ModelConfig(widths=(4, 8), z_convs=(0, 0), pools=((2, 2, 1),), dropout=0.0),
        patch=replace(cfg.patch, output_size=(8, 8, 4)),
        train=replace(cfg.train, iterations=8, validate_every=2, log_every=2),
        select=SelectConfig(runs=2, min_iterations=4, max_iterations=8, eta=2),
        infer=InferConfig(tile_output_size=(40, 40, 12)))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("study-faults")
    manifest = write_cohort(root / "cohort", seed=3, small=True, workers=1, progress=False)
    config = root / "config.json"
    config.write_text(_tiny_config().to_json())
    reference = root / "reference"
    done = run("study", str(manifest), "-o", str(reference), "--config", str(config), "--device", "cpu",
               "--workers", "1")
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
                             "--workers", "1"], lambda: "a1" in _stages(out))
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
