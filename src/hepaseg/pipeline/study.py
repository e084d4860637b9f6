"""The paper's experiment end to end, resumable: ``hepaseg study``.

Stages, each recorded in ``<out>/pipeline.json`` with a fingerprint of what it depends on:

1. ``preprocess``: the prepared-case cache ``<out>/prep`` (incremental by itself).
2. ``liver``: the liver model (``config.liver_preset_for``), its own cache and run -> ``<out>/liver/model``.
3. ``a2``: one training run (seed ``a2_seed(config)``, after A1's seeds) -> ``<out>/a2/model``.
4. ``a1``: successive halving over seeds -> ``<out>/a1/model``.

   On a CPU with 2 or more cores these three train side by side in ``training_slots`` worker
   processes (a ``SlotPool``, the cores shared by them): a free slot takes A1's next run-to-budget
   task first, else A2's next chunk of ``validate_every`` iterations, else the liver model's, so no
   core idles while A1's rungs wait for their last run. Each run is trained as it would be alone
   with the slot's threads. Elsewhere (GPU, one core, ``workers=1``) they train one after another.
5. ``predict``: the liver model is embedded in both models; both predict the test and unlabeled
   cases inside the given livers -> ``<out>/preds/{A1,A2}`` and fully automatically, inside the
   liver model's livers -> ``<out>/preds/{A1,A2}-auto``.
6. ``evaluate``: the four against every rater on the test split -> ``<out>/eval``, and the
   predicted livers against the given ones -> ``<out>/eval/liver.csv``.
7. ``selection_check``: every trained run (A1's seeds, A2) on the test cases, its test score against
   its validation score (``pipeline.selection_check``; off with ``select.check_runs``) ->
   ``<out>/selection_check``.
8. ``report``: ``<out>/report.html`` with the evaluation, a section on the run itself and, once
   ``<out>/rating/results`` holds an exported expert rating (``hepaseg rate``), its section: a new
   export changes this stage's fingerprint, so ``--resume`` then writes the report again.

A finished stage whose fingerprint is unchanged is skipped on ``--resume``; a changed input or
configuration changes the fingerprint of that stage and of every stage after it, so exactly those
run again. An unfinished training or selection continues from its checkpoints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Config, liver_preset_for
from ..data.manifest import Dataset, load_manifest
from ..errors import InputError
from ..evaluation.results import FORMAT_VERSION as RESULTS_FORMAT
from ..io.lock import folder_lock
from ..selection.executors import Executor, SlotPool
from .record import STATE, Record, Stages, fingerprint

if TYPE_CHECKING:
    from ..training.train import RunResult

ALGORITHMS = ("A1", "A2")
AUTO = "-auto"  # suffix of an algorithm that segments inside the liver model's liver
PREDICT_SPLITS = ("test", "unlabeled")


@dataclass(frozen=True)
class StudyResult:
    """Where the study's outputs are, and how long each stage of this call took (s)."""

    folder: Path
    report: Path
    evaluation: Path
    stage_seconds: dict[str, float]
    skipped: tuple[str, ...]


def run_study(manifest: str | Path, out: str | Path, config: Config, resume: bool = False,
              device: str = "auto", workers: int | None = None, progress: bool = True,
              log: Callable[[str], None] = print, liver_config: Config | None = None) -> StudyResult:
    """Run (or continue) the whole study; see the module docstring for the stages.

    Args:
        manifest: ``dataset.json`` with train, val and test cases (test cases carry all raters).
        out: the study folder.
        config: the full configuration (a preset, possibly changed).
        resume: continue a study in ``out``; without it an existing study is an error.
        device: ``auto``, ``cpu`` or ``cuda`` for training and prediction.
        workers: parallel processes for pre-processing, selection runs and evaluation.
        liver_config: the liver model's configuration (default: the study's own on resume, else
            ``config.liver_preset_for(config)``); recorded in ``pipeline.json``.

    Raises:
        InputError: bad manifest or data, an existing study without ``resume``, another process
            writing ``out``.
    """
    manifest = Path(manifest).resolve()
    dataset = load_manifest(manifest)
    for split in ("train", "val", "test"):
        if not dataset.split(split):
            raise InputError(manifest, f"has no '{split}' case; a study needs train, val and test cases")
    folder = Path(out).resolve()
    with folder_lock(folder):
        return _run_stages(manifest, dataset, folder, config, liver_config, resume, device, workers, progress, log)


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
    return training_facts(result.iterations_done, result.best_jaccard, seconds, result.iterations_done - done)


def _run_stages(manifest: Path, dataset: Dataset, folder: Path, config: Config, liver_config: Config | None,
                resume: bool, device: str, workers: int | None, progress: bool,
                log: Callable[[str], None]) -> StudyResult:
    """The stages of ``run_study``, with the study folder locked."""
    from ..data.preprocess import load_prepared, preprocess_dataset
    from ..evaluation.liver import score_livers, write_liver_scores
    from ..inference.batch import predict_paths
    from ..inference.outputs import LIVER_DIR
    from ..model.folder import embed_liver_model, model_dir, write_infer
    from ..report.liver import liver_sections
    from ..report.page import write_report
    from ..report.run import run_sections
    from ..report.selection_check import CHECK_DIR, CHECK_FORMAT
    from ..selection.executors import make_executor
    from ..selection.halving import check_selection_feasible, run_selection
    from .evaluation import write_evaluation
    from .selection_check import run_check

    record = Record(folder, config, resume)
    recorded = record.data.get("liver_config")
    liver_config = liver_config or (Config.from_dict(recorded) if recorded else liver_preset_for(config))
    record.data["liver_config"] = liver_config.to_dict()
    prep, a2, a1 = folder / "prep", folder / "a2", folder / "a1"
    liver = folder / "liver"
    preds = {name: folder / "preds" / name for name in (*ALGORITHMS, *(a + AUTO for a in ALGORITHMS))}
    evaluation, report = folder / "eval", folder / "report.html"
    stages = Stages(record, log)
    stage = stages.run

    cfg = config.to_dict()

    def do_preprocess() -> dict[str, Any]:
        summary = preprocess_dataset(manifest, prep, config.preprocess, workers=workers, progress=progress)
        return {"done": summary.done, "skipped": summary.skipped}

    stage("preprocess", fingerprint(manifest.read_text(encoding="utf-8"), _input_fingerprints(dataset, config)),
          do_preprocess)
    prep_fp = fingerprint(sorted(c.record().get("fingerprint", c.id) for c in load_prepared(prep).cases))

    liver_fp = fingerprint(manifest.read_text(encoding="utf-8"), _input_fingerprints(dataset, liver_config),
                           liver_config.to_dict(), config.select.first_seed)
    training = {k: cfg[k] for k in ("preprocess", "model", "patch", "augment", "train")}
    a2_fp = fingerprint(prep_fp, training, a2_seed(config))
    # select.check_runs decides nothing A1 does: turning the selection check on or off keeps A1
    a1_fp = fingerprint(prep_fp, training, {k: v for k, v in cfg["select"].items() if k != "check_runs"})

    def do_a1(executor: Executor) -> dict[str, Any]:
        if device == "auto":
            check_selection_feasible(config, executor.slots)
        result = run_selection(prep, a1, config, executor, resume=True, progress=progress)
        return {"winner": result.winner, "best_jaccard": result.best_jaccard, "figure": str(result.figure),
                "table": str(result.table), "task_seconds": result.task_seconds}

    slots = training_slots(device, workers)
    if slots:  # CPU: the three trainings side by side in worker processes, A1's rungs first
        from ..training.liver import prepare_liver

        def do_liver() -> dict[str, Any]:
            liver_prep = prepare_liver(manifest, liver, liver_config, workers, progress=False)
            return {"preset": liver_config.preset, **train_in_chunks(pool, 2, liver_prep, liver, liver_config,
                                                                     config.select.first_seed, log, "liver")}

        log(f"[train] liver model, A2 and A1 side by side in {slots} worker processes")
        with SlotPool(["cpu"] * slots) as pool:
            stages.run_together([
                ("liver", liver_fp, do_liver, (liver,)),
                ("a2", a2_fp, partial(train_in_chunks, pool, 1, prep, a2, config, a2_seed(config), log, "a2"), (a2,)),
                ("a1", a1_fp, partial(do_a1, pool.executor(priority=0)), (a1,))], on_error=pool.close)
    else:
        from ..training.liver import train_liver
        from ..training.train import train_run

        def do_liver() -> dict[str, Any]:
            result = train_liver(manifest, liver, liver_config, seed=config.select.first_seed, device=device,
                                 resume=True, progress=progress, workers=workers)
            return {"preset": liver_config.preset, **run_facts(result)}

        stage("liver", liver_fp, do_liver, stale=(liver,))
        stage("a2", a2_fp, lambda: run_facts(train_run(prep, a2, config, seed=a2_seed(config), device=device,
                                                       resume=True, progress=progress)), stale=(a2,))

        def do_a1_here() -> dict[str, Any]:
            with make_executor("local", workers=workers, device=device) as executor:
                return do_a1(executor)

        stage("a1", a1_fp, do_a1_here, stale=(a1,))

    def do_predict() -> dict[str, Any]:
        failed, no_liver = 0, {}
        for name, model in (("A1", model_dir(a1)), ("A2", model_dir(a2))):
            embed_liver_model(model_dir(liver), model)
            write_infer(model, config.infer)  # the folder says how it predicts: hepaseg predict repeats this
            for auto in (False, True):
                for split in PREDICT_SPLITS:
                    if dataset.split(split):
                        summary = predict_paths(model, preds[name + AUTO * auto], dataset=manifest, split=split,
                                                overwrite=True, device=device, progress=progress, auto_liver=auto)
                        if auto:  # no plausible liver: the fully automatic pipeline found no tumour there
                            no_liver.update(summary.failed)
                            write_empty_predictions(dataset, preds[name + AUTO], [i for i, _ in summary.failed])
                        else:
                            failed += len(summary.failed)
        if failed:
            raise InputError(preds["A1"].parent, f"{failed} case(s) failed to predict (see the lines above)")
        return {"cases": {s: len(dataset.split(s)) for s in PREDICT_SPLITS}, "no_liver": no_liver}

    predict_fp = fingerprint(a1_fp, a2_fp, liver_fp, cfg["infer"], manifest.read_text(encoding="utf-8"))
    stage("predict", predict_fp, do_predict, stale=tuple(preds.values()))

    def do_evaluate() -> dict[str, Any]:
        results = write_evaluation(manifest, preds, evaluation, split="test", config=config.evaluate,
                                   workers=workers)
        livers = score_livers(manifest, preds["A2" + AUTO] / LIVER_DIR, split="test")
        write_liver_scores(livers, evaluation)
        return {"cases": len(results.info.cases), "liver_dice": float(np.mean([r.dice for r in livers]))}

    evaluate_fp = fingerprint(predict_fp, cfg["evaluate"], RESULTS_FORMAT)  # a new folder format re-evaluates
    stage("evaluate", evaluate_fp, do_evaluate, stale=(evaluation,))

    stage("selection_check", fingerprint(evaluate_fp, config.select.check_runs, CHECK_FORMAT),
          lambda: run_check(manifest, a1, a2, preds, folder / CHECK_DIR, config, predict_fp, device, workers, progress))

    def do_report() -> dict[str, Any]:
        write_report(evaluation, report, sections=[*liver_sections(evaluation),
                                                   *run_sections(record.data, stages.seconds, device)])
        return {"report": str(report)}

    stage("report", fingerprint(evaluate_fp, record.timings(but="report"), _rating_fingerprint(evaluation)), do_report)
    return StudyResult(folder, report, evaluation, stages.seconds, tuple(stages.skipped))


def write_empty_predictions(dataset: Dataset, folder: Path, case_ids: list[str]) -> None:
    """An all-zero tumour mask ``<folder>/<id>.nii.gz`` on each case's image grid: what the fully automatic
    pipeline found where the liver model found no plausible liver (so the evaluation counts its misses)."""
    from ..io.volumes import write_volume

    cases = {c.id: c for c in dataset.cases}
    for case_id in case_ids:
        image = cases[case_id].read_image()
        write_volume(np.zeros(image.shape, np.uint8), image.affine, folder / f"{case_id}.nii.gz")


def resumed_config(folder: str | Path) -> Config:
    """The configuration the study in ``folder`` was run with (for ``--resume``).

    Raises:
        InputError: the folder holds no study, or its record is unreadable.
    """
    path = Path(folder) / STATE
    if not path.is_file():
        raise InputError(folder, "holds no study to resume (start one without --resume)")
    try:
        return Config.from_dict(json.loads(path.read_text(encoding="utf-8"))["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(path, f"corrupt study record ({type(exc).__name__}: {exc})") from None


def training_facts(iterations: int, best_jaccard: float | None, seconds: float, trained: int) -> dict[str, Any]:
    """A training stage's facts: iterations, best validation score, seconds of this call, and iterations
    per second (``trained`` iterations in those seconds)."""
    return {"iterations": iterations, "best_jaccard": best_jaccard, "seconds": seconds,
            "its_per_second": trained / max(seconds, 1e-9)}


def run_facts(result: RunResult) -> dict[str, Any]:
    """``training_facts`` of a run trained in this process."""
    return training_facts(result.iterations_done, result.best_jaccard, result.seconds, result.iterations_done)


def a2_seed(config: Config) -> int:
    """A2's seed: the first one after A1's seeds, so that A2 is an independent draw and not one of
    the runs A1 chooses from (with one of A1's seeds, A1 would contain A2 bit for bit on the CPU)."""
    return config.select.first_seed + config.select.runs


def _rating_fingerprint(evaluation: Path) -> str | None:
    """The exported rating's summary beside the evaluation (None without one)."""
    from ..rating.export import SUMMARY_FILE
    from ..report.rating import find_rating

    results = find_rating(evaluation)
    return None if results is None else fingerprint((results / SUMMARY_FILE).read_text(encoding="utf-8"))


def _input_fingerprints(dataset, config: Config) -> list[str]:
    """Per case, the pre-processing fingerprint of its files (path, size, mtime) and configuration."""
    from ..data.preprocess import fingerprint

    try:
        return [fingerprint(case, config.preprocess) for case in dataset.cases]
    except FileNotFoundError as exc:
        raise InputError(exc.filename, "file not found") from exc
