"""Successive halving over seeds (A1): schedule arithmetic, ranking, a tiny study on the CPU,
the same study on a local Ray instance, and kill -9 + resume of a selection run by the CLI."""

from __future__ import annotations

import csv
import json
import math
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from prepared_phantom import make_cache

from hepaseg.cli import main
from hepaseg.config import ModelConfig, SelectConfig, demo_config
from hepaseg.errors import InputError
from hepaseg.model.folder import WEIGHTS, load_model
from hepaseg.selection.executors import LocalExecutor, RayExecutor
from hepaseg.selection.halving import measured_its_per_second, run_selection
from hepaseg.selection.schedule import (
    bracket,
    hyperband_brackets,
    makespan_iterations,
    rank,
    successive_halving,
    total_iterations,
)
from hepaseg.selection.state import STATE, SelectionState

# --- schedule ----------------------------------------------------------------------------------


def test_paper_schedule_is_16_runs_halved_to_one_for_240k_iterations():
    schedule = successive_halving(SelectConfig())
    assert [(r.runs, r.start_iterations, r.iterations) for r in schedule] == [
        (16, 0, 5_000), (8, 5_000, 10_000), (4, 10_000, 20_000), (2, 20_000, 40_000), (1, 40_000, 80_000)]
    assert [r.cost for r in schedule] == [16 * 5_000, 8 * 5_000, 4 * 10_000, 2 * 20_000, 1 * 40_000]
    assert total_iterations(schedule) == 240_000 == 3 * 80_000
    assert makespan_iterations(schedule, 1) == 240_000
    assert makespan_iterations(schedule, 16) == 5_000 + 5_000 + 10_000 + 20_000 + 40_000
    assert makespan_iterations(schedule, 4) == 4 * 5_000 + 2 * 5_000 + 10_000 + 20_000 + 40_000


def _hpbandster(min_budget: float, max_budget: float, eta: int) -> list[list[tuple[int, float]]]:
    """hpbandster's HyperBand.__init__ / get_next_iteration, in its own float arithmetic."""
    max_sh_iter = -int(np.log(min_budget / max_budget) / np.log(eta)) + 1
    budgets = max_budget * np.power(eta, -np.linspace(max_sh_iter - 1, 0, max_sh_iter))
    brackets = []
    for iteration in range(max_sh_iter):
        s = max_sh_iter - 1 - iteration
        n0 = int(np.floor(max_sh_iter / (s + 1)) * eta**s)
        ns = [max(int(n0 * eta ** (-i)), 1) for i in range(s + 1)]
        brackets.append(list(zip(ns, budgets[-s - 1:])))
    return brackets


@pytest.mark.parametrize("min_it, max_it, eta", [(5_000, 80_000, 2), (1, 81, 3), (2, 8, 2), (10, 1_000, 3),
                                                 (7, 100, 4), (3, 50, 2), (1_000, 80_000, 3)])
def test_brackets_match_hpbandster(min_it, max_it, eta):
    ours = [[(r.runs, r.iterations) for r in b] for b in hyperband_brackets(min_it, max_it, eta)]
    theirs = [[(n, round(float(budget))) for n, budget in b] for b in _hpbandster(min_it, max_it, eta)]
    assert ours == theirs
    for b in hyperband_brackets(min_it, max_it, eta):  # each rung continues from the previous budget
        starts = [0] + [r.iterations for r in b[:-1]]
        assert total_iterations(b) == sum(r.runs * (r.iterations - s) for r, s in zip(b, starts))


def test_a1_is_the_most_aggressive_bracket_with_the_configured_runs():
    cfg = SelectConfig(runs=10, min_iterations=1, max_iterations=27, eta=3)
    assert [(r.runs, r.iterations) for r in successive_halving(cfg)] == [(10, 1), (3, 3), (1, 9), (1, 27)]
    assert successive_halving(SelectConfig()) == hyperband_brackets(5_000, 80_000, 2)[0]
    assert total_iterations(bracket(0, 5, 1, 8, 2)) == 5 * 8


@pytest.mark.parametrize("kwargs", [dict(eta=1), dict(min_iterations=0), dict(min_iterations=9, max_iterations=8),
                                    dict(runs=0)])
def test_bad_select_config_is_an_input_error(kwargs):
    with pytest.raises(InputError, match="select config"):
        successive_halving(replace(SelectConfig(), **kwargs))


def test_rank_by_best_jaccard_ties_by_lower_seed_unvalidated_last():
    assert rank({3: 0.5, 1: 0.5, 2: 0.7, 0: None, 4: float("nan"), 5: 0.1}) == [2, 1, 3, 5, 0, 4]


# --- a tiny study ------------------------------------------------------------------------------


def _tiny_config():
    cfg = demo_config()
    return cfg.replace(
        model=ModelConfig(widths=(4, 8), z_convs=(0, 0), pools=((2, 2, 1),), dropout=0.0),
        patch=replace(cfg.patch, output_size=(8, 8, 4)),
        train=replace(cfg.train, iterations=8, validate_every=2, log_every=2),
        select=SelectConfig(runs=4, min_iterations=2, max_iterations=8, eta=2),
        infer=replace(cfg.infer, tile_output_size=(48, 44, 14)))


@pytest.fixture(scope="module")
def prep(tmp_path_factory) -> Path:
    return make_cache(tmp_path_factory.mktemp("select") / "prep")


@pytest.fixture(scope="module")
def study(prep):
    """The uninterrupted reference study, in this process, one CPU thread per run."""
    out = prep.parent / "study"
    result = run_selection(prep, out, _tiny_config(), LocalExecutor(["cpu"], threads=1), progress=False)
    return out, result


def _records(out: Path) -> dict[tuple[int, int], dict]:
    return {(t["seed"], t["rung"]): t for t in json.loads((out / STATE).read_text())["tasks"]}


def test_study_halves_ranks_and_keeps_the_winners_best_state(study):
    out, result = study
    schedule = successive_halving(_tiny_config().select)
    state = SelectionState.read(out / STATE)
    alive = [0, 1, 2, 3]
    for rung, order in zip(schedule, result.ranking):
        assert sorted(order) == sorted(alive[: rung.runs])
        best = {s: state.result(s, rung.index).best_jaccard for s in order}
        assert list(order) == sorted(best, key=lambda s: (-best[s], s))
        assert all(state.result(s, rung.index).iterations_done == rung.iterations for s in order)
        alive = list(order)
    assert result.winner == result.ranking[-1][0]
    # runs continue from their checkpoints: the winner's later history extends its earlier one
    histories = [state.result(result.winner, r.index).history for r in schedule]
    for shorter, longer in zip(histories, histories[1:]):
        assert longer[: len(shorter)] == shorter
    assert [i for i, _ in histories[-1]] == [2, 4, 6, 8]
    assert result.best_jaccard == max(j for _, j in histories[-1])
    # the selection's model is the winner's model folder, in the format predict reads
    winner_model = out / "runs" / f"seed-{result.winner:03d}" / "model"
    assert (out / "model" / WEIGHTS).read_bytes() == (winner_model / WEIGHTS).read_bytes()
    assert json.loads((out / "model" / "model.json").read_text())["best_jaccard"] == result.best_jaccard
    load_model(out / "model")
    with (out / "selection.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(r.runs for r in schedule) == 7
    assert [r["status"] for r in rows].count("winner") == 1
    assert [r["status"] for r in rows].count("kept") == 2 + 1
    assert (out / "selection.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_finished_study_resumes_without_running_anything(study, prep):
    out, result = study
    before = _records(out)
    again = run_selection(prep, out, _tiny_config(), LocalExecutor(["cpu"], threads=1), resume=True, progress=False)
    assert _records(out) == before
    assert (again.winner, again.ranking) == (result.winner, result.ranking)
    assert again.task_seconds == 0.0


def test_existing_study_needs_resume_and_the_same_config(study, prep):
    out, _ = study
    with pytest.raises(InputError, match="--resume"):
        run_selection(prep, out, _tiny_config(), LocalExecutor(["cpu"], threads=1), progress=False)
    other = _tiny_config().replace(select=SelectConfig(runs=2, min_iterations=2, max_iterations=8))
    with pytest.raises(InputError, match="another configuration"):
        run_selection(prep, out, other, LocalExecutor(["cpu"], threads=1), resume=True, progress=False)


def test_cli_dry_run_prints_the_schedule_and_estimate(study, capsys):
    out, _ = study
    assert main(["select", "unused", "-o", str(out.parent / "dry"), "--preset", "paper", "--dry-run",
                 "--device", "cpu", "--its-per-second", "2"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [r["runs"] for r in plan["rungs"]] == [16, 8, 4, 2, 1]
    assert plan["total_iterations"] == 240_000
    assert math.isclose(plan["estimated_device_hours"], 240_000 / 2 / 3600)
    assert main(["select", "unused", "-o", str(out), "--dry-run", "--resume", "--its-from", str(out)]) == 0
    plan = json.loads(capsys.readouterr().out)
    state = SelectionState.read(out / STATE)
    assert plan["total_iterations"] == 16
    assert math.isclose(plan["its_per_second"], 16 / sum(t.seconds for t in state.results()))
    run = out / "runs" / "seed-000"
    log = [json.loads(line) for line in (run / "model" / "train_log.jsonl").read_text().splitlines()]
    assert measured_its_per_second(run) == [r["it_per_s"] for r in log if "it_per_s" in r][-1] > 0
    with pytest.raises(InputError, match="neither a selection"):
        measured_its_per_second(out / "runs")


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, prep, capsys):
    for args in (["select", str(tmp_path / "missing"), "-o", str(tmp_path / "s"), "--preset", "demo"],
                 ["select", str(prep), "-o", str(tmp_path / "s"), "--config", str(tmp_path / "none.json")],
                 ["select", str(prep), "-o", str(tmp_path / "s"), "--threads", "0"],
                 ["select", str(prep), "-o", str(tmp_path / "s"), "--preset", "nope"],
                 ["select", str(prep), "-o", str(tmp_path / "s"), "--backend", "local", "--workers", "0"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
        assert not (tmp_path / "s" / STATE).exists()


# --- Ray ---------------------------------------------------------------------------------------


def test_ray_study_gives_the_same_ranking_and_winner(study, prep):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'hepaseg[cluster]')")
    out, reference = study
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        executor = RayExecutor(cpus_per_task=1)
        result = run_selection(prep, prep.parent / "ray", _tiny_config(), executor, progress=False)
    finally:
        ray.shutdown()
    assert (result.winner, result.ranking) == (reference.winner, reference.ranking)
    assert result.best_jaccard == reference.best_jaccard
    ours, theirs = _records(prep.parent / "ray"), _records(out)
    assert {k: t["history"] for k, t in ours.items()} == {k: t["history"] for k, t in theirs.items()}


# --- kill -9 and resume ------------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hepaseg", "select", *args, "--device", "cpu", "--workers", "1", "--threads", "1"]


def test_killed_study_resumes_without_redoing_finished_tasks(study, prep):
    out, reference = study
    killed = prep.parent / "killed"
    config = prep.parent / "tiny.json"
    config.write_text(_tiny_config().to_json())
    proc = subprocess.Popen(_cli(str(prep), "-o", str(killed), "--config", str(config)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if (killed / STATE).is_file() and json.loads((killed / STATE).read_text())["tasks"]:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = _records(killed)
    assert 1 <= len(before) < 7, "the selection was not killed between its first and its last task"
    done = subprocess.run(_cli(str(prep), "-o", str(killed), "--resume"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after = _records(killed)
    assert len(after) == 7
    assert {k: after[k] for k in before} == before  # same start times: nothing finished was run again
    assert f"winner: seed {reference.winner} " in done.stdout
    assert {k: t["history"] for k, t in after.items()} == {k: t["history"] for k, t in _records(out).items()}


def test_local_worker_processes_give_the_same_study(study, prep):
    out, reference = study
    with LocalExecutor(["cpu", "cpu"], threads=1) as executor:
        result = run_selection(prep, prep.parent / "pool", _tiny_config(), executor, progress=False)
    assert (result.winner, result.ranking) == (reference.winner, reference.ranking)
    ours, theirs = _records(prep.parent / "pool"), _records(out)
    assert {k: t["history"] for k, t in ours.items()} == {k: t["history"] for k, t in theirs.items()}
