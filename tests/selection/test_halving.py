"""Successive halving over seeds (A1, ``selection.halving``): a tiny study on the CPU halves, ranks and
keeps the winner's model; resume and its errors; the CLI's dry run and bad input; kill -9 + resume
of a selection run by the CLI. (Schedule arithmetic: test_schedule.py; executors: test_executors.py.)"""

from __future__ import annotations

import csv
import json
import math
import signal
import subprocess
import sys
import time

import pytest

from hepaseg.cli import main
from hepaseg.config import SelectConfig
from hepaseg.errors import InputError
from hepaseg.model.folder import WEIGHTS, load_model
from hepaseg.selection.executors import LocalExecutor
from hepaseg.selection.halving import measured_its_per_second, run_selection
from hepaseg.selection.schedule import successive_halving
from hepaseg.selection.state import STATE, SelectionState

from .tiny_selection import records, tiny_config

# --- a tiny study ------------------------------------------------------------------------------


def test_study_halves_ranks_and_keeps_the_winners_best_state(study):
    out, result = study
    schedule = successive_halving(tiny_config().select)
    state = SelectionState.read(out / STATE)
    alive = [0, 1, 2, 3]
    for rung, order in zip(schedule, result.ranking):
        assert sorted(order) == sorted(alive[: rung.runs])
        best = {s: state.result(s, rung.index).best_score for s in order}
        assert list(order) == sorted(best, key=lambda s: (-best[s], s))
        assert all(state.result(s, rung.index).iterations_done == rung.iterations for s in order)
        alive = list(order)
    assert result.winner == result.ranking[-1][0]
    # runs continue from their checkpoints: the winner's later history extends its earlier one
    histories = [state.result(result.winner, r.index).history for r in schedule]
    for shorter, longer in zip(histories, histories[1:]):
        assert longer[: len(shorter)] == shorter
    assert [i for i, _ in histories[-1]] == [2, 4, 6, 8]
    assert result.best_score == max(j for _, j in histories[-1])
    # the selection's model is the winner's model folder, in the format predict reads
    winner_model = out / "runs" / f"seed-{result.winner:03d}" / "model"
    assert (out / "model" / WEIGHTS).read_bytes() == (winner_model / WEIGHTS).read_bytes()
    assert json.loads((out / "model" / "model.json").read_text())["best_score"] == result.best_score
    load_model(out / "model")
    with (out / "selection.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(r.runs for r in schedule) == 7
    assert [r["status"] for r in rows].count("winner") == 1
    assert [r["status"] for r in rows].count("kept") == 2 + 1
    assert (out / "selection.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_finished_study_resumes_without_running_anything(study, prep):
    out, result = study
    before = records(out)
    again = run_selection(prep, out, tiny_config(), LocalExecutor(["cpu"], threads=1), resume=True, progress=False)
    assert records(out) == before
    assert (again.winner, again.ranking) == (result.winner, result.ranking)
    assert again.task_seconds == 0.0


def test_a_selection_of_hepaseg_0_1_resumes_with_its_scores(study, prep, tmp_path):
    """hepaseg 0.1 stored each task's score as ``best_jaccard``: such a record resumes to the same ranking."""
    import shutil

    out, result = study
    old = tmp_path / "old"
    shutil.copytree(out, old)
    text = (old / STATE).read_text()
    assert '"best_score"' in text and '"best_jaccard"' not in text
    (old / STATE).write_text(text.replace('"best_score"', '"best_jaccard"'))
    again = run_selection(prep, old, tiny_config(), LocalExecutor(["cpu"], threads=1), resume=True, progress=False)
    assert (again.winner, again.ranking, again.best_score) == (result.winner, result.ranking, result.best_score)
    assert again.task_seconds == 0.0
    assert [r.best_score for r in SelectionState.read(old / STATE).results()] == \
        [r.best_score for r in SelectionState.read(out / STATE).results()]


def test_existing_study_needs_resume_and_the_same_config(study, prep):
    out, _ = study
    with pytest.raises(InputError, match="--resume"):
        run_selection(prep, out, tiny_config(), LocalExecutor(["cpu"], threads=1), progress=False)
    other = tiny_config().replace(select=SelectConfig(runs=2, min_iterations=2, max_iterations=8))
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


# --- kill -9 and resume ------------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hepaseg", "select", *args, "--device", "cpu", "--workers", "1", "--threads", "1"]


def test_killed_study_resumes_without_redoing_finished_tasks(study, prep):
    out, reference = study
    killed = prep.parent / "killed"
    config = prep.parent / "tiny.json"
    config.write_text(tiny_config().to_json())
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
    before = records(killed)
    assert 1 <= len(before) < 7, "the selection was not killed between its first and its last task"
    done = subprocess.run(_cli(str(prep), "-o", str(killed), "--resume"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after = records(killed)
    assert len(after) == 7
    assert {k: after[k] for k in before} == before  # same start times: nothing finished was run again
    assert f"winner: seed {reference.winner} " in done.stdout
    assert {k: t["history"] for k, t in after.items()} == {k: t["history"] for k, t in records(out).items()}
