"""The study's three trainings: the liver model, A2 (one run) and A1 (successive halving over seeds).

On a CPU with 2 or more cores they train side by side in ``training_slots`` worker processes (a
``SlotPool``, the cores shared by them): a free slot takes A1's next run-to-budget task first, else
A2's next chunk of ``validate_every`` iterations, else the liver model's, so no core idles while A1's
rungs wait for their last run. Each run is trained as it would be alone with the slot's threads.
Elsewhere (GPU, one core, ``workers=1``) they train one after another in this process.

``run_trainings`` runs them as the study's stages ``liver``, ``a2`` and ``a1``; each stage's
fingerprint covers the configuration fields that decide a training (``config.DECIDES``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config, stage_values
from ..errors import InputError
from ..selection.executors import Executor, SlotPool
from .record import Stages, fingerprint

if TYPE_CHECKING:
    from ..training.train import RunResult


@dataclass(frozen=True)
class Trainings:
    """Where the three trainings run and with what.

    Attributes:
        manifest: the study's ``dataset.json`` (the liver model prepares its own cache from it).
        prep: the prepared-case cache the tumour models train on.
        liver, a2, a1: the liver model's run folder, A2's run folder, A1's selection folder.
        config, liver_config: the tumour models' and the liver model's configurations.
        device, workers, progress, log: as ``run_study`` takes them.
    """

    manifest: Path
    prep: Path
    liver: Path
    a2: Path
    a1: Path
    config: Config
    liver_config: Config
    device: str
    workers: int | None
    progress: bool
    log: Callable[[str], None]


def training_keys(t: Trainings, prep_key: str, liver_inputs: list[str]) -> dict[str, str]:
    """The fingerprints of the stages ``liver``, ``a2`` and ``a1``: their data (the manifest and the liver
    model's inputs; the prepared cache ``prep_key``), the fields that decide a training, and the seeds."""
    training = stage_values(t.config, "training")
    return {"liver": fingerprint(t.manifest.read_text(encoding="utf-8"), liver_inputs,
                                 stage_values(t.liver_config, "training"), t.config.select.first_seed),
            "a2": fingerprint(prep_key, training, a2_seed(t.config)),
            "a1": fingerprint(prep_key, training, stage_values(t.config, "selection")["select"])}


def run_trainings(stages: Stages, t: Trainings, keys: dict[str, str]) -> None:
    """The stages ``liver``, ``a2`` and ``a1`` (see the module docstring); each is recorded as it ends."""
    slots = training_slots(t.device, t.workers)
    if slots:  # CPU: the three trainings side by side in worker processes, A1's rungs first
        t.log(f"[train] liver model, A2 and A1 side by side in {slots} worker processes")
        with SlotPool(["cpu"] * slots) as pool:
            stages.run_together([
                ("liver", keys["liver"], partial(_train_liver, t, pool), (t.liver,)),
                ("a2", keys["a2"], partial(train_in_chunks, pool, 1, t.prep, t.a2, t.config, a2_seed(t.config), t.log,
                                           "a2"), (t.a2,)),
                ("a1", keys["a1"], partial(_select, t, pool.executor(priority=0)), (t.a1,))], on_error=pool.close)
        return
    from ..selection.executors import make_executor
    from ..training.train import train_run

    def select_here() -> dict[str, Any]:
        with make_executor("local", workers=t.workers, device=t.device) as executor:
            return _select(t, executor)

    stages.run("liver", keys["liver"], partial(_train_liver, t, None), stale=(t.liver,))
    stages.run("a2", keys["a2"], lambda: run_facts(train_run(t.prep, t.a2, t.config, seed=a2_seed(t.config),
                                                             device=t.device, resume=True, progress=t.progress)),
               stale=(t.a2,))
    stages.run("a1", keys["a1"], select_here, stale=(t.a1,))


def _train_liver(t: Trainings, pool: SlotPool | None) -> dict[str, Any]:
    """The liver model: in chunks on ``pool``, or (None) in this process."""
    seed = t.config.select.first_seed
    if pool is not None:
        from ..training.liver import prepare_liver

        liver_prep = prepare_liver(t.manifest, t.liver, t.liver_config, t.workers, progress=False)
        facts = train_in_chunks(pool, 2, liver_prep, t.liver, t.liver_config, seed, t.log, "liver")
    else:
        from ..training.liver import train_liver

        facts = run_facts(train_liver(t.manifest, t.liver, t.liver_config, seed=seed, device=t.device, resume=True,
                                      progress=t.progress, workers=t.workers))
    return {"preset": t.liver_config.preset, **facts}


def _select(t: Trainings, executor: Executor) -> dict[str, Any]:
    """A1 on ``executor``; the stage's facts."""
    from ..selection.halving import check_selection_feasible, run_selection

    if t.device == "auto":
        check_selection_feasible(t.config, executor.slots)
    result = run_selection(t.prep, t.a1, t.config, executor, resume=True, progress=t.progress)
    return {"winner": result.winner, "best_score": result.best_score, "figure": str(result.figure),
            "table": str(result.table), "task_seconds": result.task_seconds}


def training_slots(device: str, workers: int | None) -> int:
    """Worker processes the study's three trainings (liver model, A2, A1's runs) share side by side:
    on the CPU with 2 or more cores ``workers`` (default 2, each with the cores shared), else 0 (they
    train one after another in this process, A1's runs on ``workers`` devices).

    Raises:
        InputError: ``workers`` below 1.
    """
    from ..model.device import resolve_device

    if workers is not None and workers < 1:
        raise InputError(None, f"workers must be >= 1, got {workers}")
    cores = os.cpu_count() or 1
    if cores < 2 or resolve_device(device).type != "cpu" or workers == 1:
        return 0
    return min(workers or 2, cores)


def train_in_chunks(pool: SlotPool, priority: int, prep: Path, run: Path, config: Config, seed: int,
                    log: Callable[[str], None], name: str) -> dict[str, Any]:
    """Train (or continue) run ``run`` to ``config.train.iterations`` as tasks of the pool of
    ``train.validate_every`` iterations each, so that tasks of a higher priority (A1's rungs) wait at most
    one chunk for a slot; a chunked run equals one trained in one go (with the same threads). Returns
    the stage's facts."""
    from ..selection.halving import Task, run_to_budget
    from ..training.checkpoint import trained_iterations

    total, every = config.train.iterations, config.train.validate_every
    done = trained_iterations(run)
    ends = [until for until in range(every, total, every) if until > done] + [total]
    seconds, result = 0.0, None
    for index, until in enumerate(ends):
        result = pool.submit(run_to_budget, Task(seed, index, until, str(prep), str(run), config), priority).result()
        seconds += result.seconds
        log(f"[{name}] {result.iterations_done} / {total} it.")
    return training_facts(result.iterations_done, result.best_score, seconds, result.iterations_done - done)


def training_facts(iterations: int, best_score: float | None, seconds: float, trained: int) -> dict[str, Any]:
    """A training stage's facts: iterations, best validation score, seconds of this call, and iterations
    per second (``trained`` iterations in those seconds)."""
    return {"iterations": iterations, "best_score": best_score, "seconds": seconds,
            "its_per_second": trained / max(seconds, 1e-9)}


def run_facts(result: RunResult) -> dict[str, Any]:
    """``training_facts`` of a run trained in this process."""
    return training_facts(result.iterations_done, result.best_score, result.seconds, result.iterations_done)


def a2_seed(config: Config) -> int:
    """A2's seed: the first one after A1's seeds, so that A2 is an independent draw and not one of
    the runs A1 chooses from (with one of A1's seeds, A1 would contain A2 bit for bit on the CPU)."""
    return config.select.first_seed + config.select.runs
