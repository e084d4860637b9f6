"""Multi-model training (algorithm A1, METHOD.md section 6): successive halving over seeds.

``run_selection`` drives a selection in a folder::

    <selection>/selection.json  the persistent record (``selection.state``): config + finished tasks
    <selection>/runs/seed-007/  one training run per seed, continued from its checkpoint per rung
    <selection>/model/          the winner's model folder (its best validation state), as ``train``
                                writes it, so ``predict`` takes it like a single training's model
    <selection>/selection.csv   seed, rung, iterations, best validation score and its metric, device seconds, rank, status
    <selection>/selection.png   finished runs over wall time and validation loss per run (Fig. 5)

Each rung hands its run-to-budget tasks (``Task``) to an executor (``executors``), records every
finished task atomically, then ranks the rung's runs by best validation score so far (``train.validation_metric``; Jaccard in the paper) (ties by
lower seed) and keeps the best ones for the next rung. Tasks already recorded are not run again,
so a killed selection restarted with ``resume=True`` redoes no finished task and ends the same.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import Config
from ..data.preprocess import load_prepared
from ..errors import InputError
from ..io.atomic import replace_dir, temporary_prefix, write_text
from ..io.lock import folder_lock
from ..model.folder import LOG, MODEL_DIR, model_dir
from ..progress import Progress
from .executors import Executor
from .figure import plot_selection
from .schedule import Schedule, hyperband_brackets, plan, rank, seeds, successive_halving
from .state import STATE, SelectionState, TaskResult

RUNS = "runs"
TABLE = "selection.csv"
FIGURE = "selection.png"


@dataclass(frozen=True)
class Task:
    """Train run ``seed`` (folder ``run_dir``) until ``until_iterations``, continuing its checkpoint."""

    seed: int
    rung: int
    until_iterations: int
    prep_dir: str
    run_dir: str
    config: Config


@dataclass(frozen=True)
class SelectionResult:
    """The outcome: the winning seed, its best validation score and the selection's files."""

    winner: int
    best_score: float | None
    ranking: tuple[tuple[int, ...], ...]  # per rung, the seeds that ran it, best first
    model_dir: Path
    table: Path
    figure: Path
    wall_seconds: float  # of this call (a resumed selection counts only its own part)
    task_seconds: float  # sum of the tasks' device seconds run by this call


def resumed_config(selection_dir: str | Path) -> Config:
    """The configuration a selection in ``selection_dir`` was started with (for ``--resume``).

    Raises:
        InputError: the folder holds no selection.
    """
    record = Path(selection_dir) / STATE
    if not record.is_file():
        raise InputError(selection_dir, "holds no selection to resume (start one without --resume)")
    return SelectionState.read(record).config


def check_selection_feasible(config: Config, slots: int) -> None:
    """``training.feasibility.check_feasible`` for a whole selection where ``--device auto`` finds
    no GPU: its iterations shared by ``slots`` parallel runs on the CPU, which need memory together."""
    import torch

    from ..model.device import native_bf16
    from ..training.feasibility import check_feasible

    if torch.cuda.is_available():
        return
    cpu = torch.device("cpu")
    iterations = math.ceil(sum(rung.cost for rung in successive_halving(config.select)) / max(1, slots))
    check_feasible(config, cpu, "auto", iterations, config.train.mixed_precision and native_bf16(cpu), slots)


def dry_run(config: Config, workers: int, its_per_second: float | None) -> dict:
    """What a selection would do: its rungs, total and critical-path iterations, estimated hours, and
    (for comparison) every Hyperband bracket for the same budgets."""
    sc = config.select
    out = plan(successive_halving(sc), workers, its_per_second)
    out["first_seed"] = sc.first_seed
    out["hyperband_brackets"] = [[{"runs": r.runs, "to_iterations": r.iterations} for r in b]
                                 for b in hyperband_brackets(sc.min_iterations, sc.max_iterations, sc.eta)]
    return out


def run_dir(selection_dir: str | Path, seed: int) -> Path:
    """The run folder of ``seed`` inside a selection."""
    return Path(selection_dir) / RUNS / f"seed-{seed:03d}"


def run_to_budget(task: Task, device: str, threads: int) -> TaskResult:
    """Executor task: train one run until its rung budget (resuming its checkpoint) and report."""
    import torch

    from ..training.train import train_run

    torch.set_num_threads(threads)
    started = time.time()
    clock = time.perf_counter()
    run = train_run(task.prep_dir, task.run_dir, task.config, task.seed, task.until_iterations, device,
                    resume=True, progress=False)
    seconds = time.perf_counter() - clock
    history = tuple((int(i), float(j)) for i, j in run.history)
    return TaskResult(task.seed, task.rung, task.until_iterations, int(run.iterations_done), run.best_score,
                      history, seconds, started, started + seconds, device, threads, socket.gethostname())


def run_config(config: Config) -> Config:
    """The configuration every run of the selection is trained with: ``train.iterations`` is the
    largest budget, so each run's ``config.json`` says how far it could go."""
    return config.replace(train=replace(config.train, iterations=config.select.max_iterations))


def run_selection(prep_dir: str | Path, selection_dir: str | Path, config: Config, executor: Executor,
                  resume: bool = False, progress: bool = True) -> SelectionResult:
    """Run (or with ``resume`` continue) a successive-halving selection over seeds.

    Args:
        prep_dir: the prepared-case cache (``hepaseg preprocess``); on a cluster, shared storage.
        selection_dir: the selection folder; on a cluster, shared storage every worker can write.
        config: the full configuration; ``config.select`` sets runs, budgets, eta and first seed.
        executor: where the tasks run (``LocalExecutor`` / ``RayExecutor``).
        resume: continue the selection in ``selection_dir`` (same config and data), skipping finished
            tasks; start it if it has none yet.
        progress: show a progress bar over run-to-budget tasks.

    Raises:
        InputError: missing data, an existing selection without ``resume``, a configuration that
            differs from the resumed selection's.
    """
    schedule = successive_halving(config.select)
    prep, folder = Path(prep_dir).resolve(), Path(selection_dir).resolve()
    load_prepared(prep)
    with folder_lock(folder):
        state = SelectionState.open(folder, config, prep, resume)
        trained = run_config(config)
        clock = time.perf_counter()
        task_seconds = 0.0
        bar = Progress(sum(r.runs for r in schedule), "select", "task", enabled=progress)
        alive = list(seeds(config.select))
        ranking = []
        try:
            for rung in schedule:
                alive = alive[: rung.runs]
                todo = [Task(s, rung.index, rung.iterations, str(prep), str(run_dir(folder, s)), trained)
                        for s in alive if state.result(s, rung.index) is None]
                bar.set_postfix_str(f"rung {rung.index}: {rung.runs} runs to {rung.iterations} it.")
                bar.update(len(alive) - len(todo))
                for result in executor.map_unordered(run_to_budget, todo):
                    state.finish(result)
                    task_seconds += result.seconds
                    bar.update()
                alive = rank({s: state.result(s, rung.index).best_score for s in alive})
                ranking.append(tuple(alive))
        finally:
            bar.close()
        winner = alive[0]
        model = _copy_model(model_dir(run_dir(folder, winner)), folder / MODEL_DIR)
        results = state.results()
        metric = config.train.validation_metric
        table = write_text_table(folder / TABLE, selection_rows(results, schedule, ranking, metric))
        figure = plot_selection(results, schedule, winner, folder / FIGURE, metric)
        return SelectionResult(winner, state.result(winner, schedule[-1].index).best_score, tuple(ranking), model,
                               table, figure, time.perf_counter() - clock, task_seconds)


def _copy_model(source: Path, target: Path) -> Path:
    """Copy the winner's model folder to ``target``, replacing an older copy atomically."""
    if not source.is_dir():
        raise InputError(source, "the winning run has no model folder")
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(target), dir=target.parent))
    try:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def selection_rows(results: list[TaskResult], schedule: Schedule, ranking: list[tuple[int, ...]],
                   metric: str = "jaccard") -> list[dict]:
    """One row per task: seed, rung, iterations, best validation score (column ``best_score``, the
    paper's name, holding the score of ``validation_metric``, the next column), device seconds, rank
    in its rung, and whether the run was kept for the next rung, dropped, or won."""
    rows = []
    for r in results:
        order = ranking[r.rung]
        position = order.index(r.seed)
        if r.rung == len(schedule) - 1:
            status = "winner" if position == 0 else "dropped"
        else:
            status = "kept" if position < schedule[r.rung + 1].runs else "dropped"
        rows.append({"seed": r.seed, "rung": r.rung, "iterations": r.iterations_done,
                     "best_score": "" if r.best_score is None else f"{r.best_score:.6f}",
                     "validation_metric": metric,
                     "device_seconds": f"{r.seconds:.3f}", "rank": position + 1, "status": status,
                     "device": r.device, "threads": r.threads, "host": r.host})
    return rows


def write_text_table(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` as CSV (header from the first row) atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
    return path


def measured_its_per_second(path: str | Path) -> float:
    """Single-run training speed (iterations per second) measured earlier.

    Args:
        path: a selection (its folder or ``selection.json``): iterations per device second over its
            finished tasks; or a training run (its folder, ``model/`` or ``train_log.jsonl``):
            the last ``it_per_s`` of its log.

    Raises:
        InputError: nothing readable there, or no speed recorded yet.
    """
    path = Path(path)
    for candidate in (path, path / STATE):
        if candidate.is_file() and candidate.name == STATE:
            return _selection_speed(candidate)
    for candidate in (path, path / LOG, model_dir(path) / LOG):
        if candidate.is_file() and candidate.suffix == ".jsonl":
            return _log_speed(candidate)
    raise InputError(path, f"neither a selection ({STATE}) nor a training run ({MODEL_DIR}/{LOG})")


def _selection_speed(record: Path) -> float:
    state = SelectionState.read(record)
    schedule = successive_halving(state.config.select)
    tasks = state.results()
    iterations = sum(t.until_iterations - schedule[t.rung].start_iterations for t in tasks)
    seconds = sum(t.seconds for t in tasks)
    if seconds <= 0:
        raise InputError(record, "the selection has no finished task to measure the speed from")
    return iterations / seconds


def _log_speed(log: Path) -> float:
    speeds = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("it_per_s"):
            speeds.append(float(record["it_per_s"]))
    if not speeds:
        raise InputError(log, "the training log records no speed (it_per_s) yet")
    return speeds[-1]
