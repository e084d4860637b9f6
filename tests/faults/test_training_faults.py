"""Faults during ``hepaseg train``: kill -9 before and after the first checkpoint, SIGTERM, a second
process on the run folder, --resume without a run, a changed configuration on resume. Every
resumed run must end bit-identical to an uninterrupted one (CPU, one thread)."""

from __future__ import annotations

import json
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from hepaseg.config import ModelConfig

from hepaseg.presets import demo_config
from hepaseg.model.folder import INFO, WEIGHTS, model_dir
from hepaseg.training.checkpoint import CHECKPOINT, load_checkpoint

from .processes import interrupt_when, run, temporaries

ITERATIONS, FIRST_CHECKPOINT = 60, 30
SEED = "3"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, phantom_cache):
    """(prepared cache, config file, the uninterrupted reference run folder)."""
    root = tmp_path_factory.mktemp("train-faults")
    prep = phantom_cache(root / "prep", seed=2, n_train=2, n_val=1)
    base = demo_config()
    config = base.replace(
        model=ModelConfig(widths=(4, 8), z_convs=(0, 1), pools=((2, 2, 1),), dropout=0.1),
        patch=replace(base.patch, output_size=(12, 12, 4)),
        train=replace(base.train, iterations=ITERATIONS, validate_every=FIRST_CHECKPOINT, log_every=2,
                      warmup_iterations=0),
        infer=replace(base.infer, tile_output_size=(24, 24, 8)))
    config_file = root / "config.json"
    config_file.write_text(config.to_json())
    reference = root / "reference"
    done = run("train", str(prep), "-o", str(reference), "--config", str(config_file), "--seed", SEED,
               "--device", "cpu")
    assert done.returncode == 0, done.stderr
    return prep, config_file, reference


def _outcome(run_dir: Path) -> tuple[bytes, list, int]:
    """What an interrupted and an uninterrupted run must share: the kept weights, the validation
    history (iteration, Jaccard, per-case values; not the timing) and the iterations done."""
    info = json.loads((model_dir(run_dir) / INFO).read_text())
    history = [(h["iteration"], h["score"], h["cases"]) for h in info["history"]]
    return (model_dir(run_dir) / WEIGHTS).read_bytes(), history, info["iterations_done"]


def _start(setup, run_dir: Path) -> list[str]:
    prep, config_file, _ = setup
    return ["train", str(prep), "-o", str(run_dir), "--config", str(config_file), "--seed", SEED, "--device", "cpu"]


def _resume(setup, run_dir: Path):
    return run("train", str(setup[0]), "-o", str(run_dir), "--resume", "--device", "cpu")


def test_killed_before_its_first_checkpoint_resumes_with_its_recorded_settings(setup, tmp_path):
    run_dir = tmp_path / "run"
    killed = interrupt_when(_start(setup, run_dir), lambda: (model_dir(run_dir) / INFO).is_file())
    assert killed.returncode == -signal.SIGKILL
    assert not (run_dir / CHECKPOINT).exists(), "the fault point was missed: a checkpoint was written already"
    done = _resume(setup, run_dir)  # no --config, no --seed: the run's own
    assert done.returncode == 0, done.stderr
    assert _outcome(run_dir) == _outcome(setup[2])
    assert temporaries(run_dir) == []


def test_killed_after_a_checkpoint_resumes_bit_identical(setup, tmp_path):
    run_dir = tmp_path / "run"
    killed = interrupt_when(_start(setup, run_dir), lambda: (run_dir / CHECKPOINT).is_file())
    assert killed.returncode == -signal.SIGKILL
    assert load_checkpoint(run_dir / CHECKPOINT)["iteration"] < ITERATIONS, "the run had finished already"
    done = _resume(setup, run_dir)
    assert done.returncode == 0, done.stderr
    assert _outcome(run_dir) == _outcome(setup[2])
    assert temporaries(run_dir) == []


def test_sigterm_finishes_the_iteration_checkpoints_and_says_so(setup, tmp_path):
    run_dir = tmp_path / "run"
    log = model_dir(run_dir) / "train_log.jsonl"
    stopped = interrupt_when(_start(setup, run_dir), lambda: log.is_file() and log.read_text().count("\n") >= 2,
                             signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM
    iteration = load_checkpoint(run_dir / CHECKPOINT)["iteration"]
    assert 4 <= iteration < ITERATIONS
    last = stopped.stderr.strip().splitlines()[-1]
    assert last == (f"stopped by SIGTERM: stopped at iteration {iteration}; checkpoint in {run_dir / CHECKPOINT} "
                    "(continue with --resume)")
    done = _resume(setup, run_dir)
    assert done.returncode == 0, done.stderr
    assert _outcome(run_dir) == _outcome(setup[2])


def test_a_second_process_on_the_run_folder_is_refused(setup, tmp_path):
    run_dir = tmp_path / "run"
    second = {}

    def start_second() -> bool:
        if not (model_dir(run_dir) / INFO).is_file():
            return False
        second["done"] = _resume(setup, run_dir)
        return True

    first = interrupt_when([*_start(setup, run_dir), "--iterations", "100000"], start_second)  # still training
    assert first.returncode == -signal.SIGKILL
    refused = second["done"]
    assert refused.returncode == 2
    err = refused.stderr.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {run_dir}: in use by process ")
    assert " since 20" in err[0]


def test_resume_without_a_run_is_an_error(setup, tmp_path):
    done = _resume(setup, tmp_path / "nothing")
    assert done.returncode == 2
    assert done.stderr == f"error: {tmp_path / 'nothing'}: holds no training run to resume (start one without --resume)\n"


def test_a_changed_preset_config_or_seed_on_resume_is_an_error(setup, tmp_path):
    prep, config_file, _ = setup
    run_dir = tmp_path / "run"
    first = run(*_start(setup, run_dir), "--iterations", "2")
    assert first.returncode == 0, first.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**json.loads(config_file.read_text()), "patch": {"output_size": [16, 16, 4]}}))
    for extra, message in ((["--preset", "demo"], "was started with another configuration (preset 'demo'"),
                           (["--config", str(other)], "differs in patch.output_size"),
                           (["--seed", "4"], f"was started with seed {SEED}")):
        done = run("train", str(prep), "-o", str(run_dir), "--resume", *extra)
        assert done.returncode == 2, extra
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    longer = run("train", str(prep), "-o", str(run_dir), "--resume", "--iterations", "4", "--device", "cpu")
    assert longer.returncode == 0 and longer.stdout.startswith("4 iterations"), longer.stderr
