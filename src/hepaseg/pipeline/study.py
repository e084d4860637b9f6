"""The paper's experiment end to end, resumable: ``hepaseg study``.

Stages, each recorded in ``<out>/pipeline.json`` with a fingerprint of what it depends on:

1. ``preprocess``: the prepared-case cache ``<out>/prep`` (incremental by itself).
2. ``liver``: the liver model (``presets.liver_preset_for``), its own cache and run -> ``<out>/liver/model``.
3. ``a2``: one training run (seed ``a2_seed(config)``, after A1's seeds) -> ``<out>/a2/model``.
4. ``a1``: successive halving over seeds -> ``<out>/a1/model``.

   On a CPU with 2 or more cores these three train side by side (``pipeline.trainings``).
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config, stage_values

from ..presets import check_config, liver_preset_for
from ..data.manifest import Dataset, load_manifest
from ..errors import InputError
from ..evaluation.results import FORMAT_VERSION as RESULTS_FORMAT
from ..io.lock import folder_lock
from .record import STATE, Record, Stages, fingerprint
from .trainings import Trainings, run_trainings, training_keys

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
            ``presets.liver_preset_for(config)``); recorded in ``pipeline.json``.

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
        study = _open_study(manifest, dataset, folder, config, liver_config, resume, device, workers, progress, log)
        return _run_stages(study)


@dataclass(frozen=True)
class _Study:
    """A study being run: its inputs, settings and folders, its record and stage runner."""

    manifest: Path
    dataset: Dataset
    config: Config
    stages: Stages
    trainings: Trainings
    preds: dict[str, Path]
    evaluation: Path
    report: Path

    @property
    def folder(self) -> Path:
        return self.stages.record.path.parent


def _open_study(manifest: Path, dataset: Dataset, folder: Path, config: Config, liver_config: Config | None,
                resume: bool, device: str, workers: int | None, progress: bool, log: Callable[[str], None]) -> _Study:
    """The study in ``folder`` (its record opened or started), with the liver configuration it uses:
    the given one, else the one it recorded, else ``presets.liver_preset_for(config)``. Both
    configurations are checked (``presets.check_config``) before anything is written.

    Raises:
        InputError: a configuration with a problem, or what ``Record`` raises.
    """
    check_config(config, None, "the study's configuration")
    if liver_config is not None:
        check_config(liver_config, None, "the liver model's configuration")
    record = Record(folder, config, resume)
    recorded = record.data.get("liver_config")
    liver_config = liver_config or (Config.from_dict(recorded) if recorded else liver_preset_for(config))
    record.data["liver_config"] = liver_config.to_dict()
    trainings = Trainings(manifest, folder / "prep", folder / "liver", folder / "a2", folder / "a1", config,
                          liver_config, device, workers, progress, log)
    preds = {name: folder / "preds" / name for name in (*ALGORITHMS, *(a + AUTO for a in ALGORITHMS))}
    return _Study(manifest, dataset, config, Stages(record, log), trainings, preds, folder / "eval",
                  folder / "report.html")


def _run_stages(study: _Study) -> StudyResult:
    """The stages of ``run_study`` in order, with the study folder locked; each stage's fingerprint
    chains the one before it, so a change re-runs that stage and every stage after it."""
    from ..report.selection_check import CHECK_DIR, CHECK_FORMAT
    from .selection_check import run_check

    t = study.trainings
    prep_key = _preprocess(study)
    keys = training_keys(t, prep_key, _input_fingerprints(study.dataset, t.liver_config))
    run_trainings(study.stages, t, keys)
    predict_key = _predict(study, keys)
    evaluate_key = _evaluate(study, predict_key)
    study.stages.run("selection_check", fingerprint(evaluate_key, stage_values(study.config, "selection_check"),
                                                    CHECK_FORMAT),
                     lambda: run_check(study.manifest, t.a1, t.a2, study.preds, study.folder / CHECK_DIR, study.config,
                                       predict_key, t.device, t.workers, t.progress))
    _report(study, evaluate_key)
    stages = study.stages
    return StudyResult(study.folder, study.report, study.evaluation, stages.seconds, tuple(stages.skipped))


def _preprocess(study: _Study) -> str:
    """The stage ``preprocess`` (the prepared-case cache); returns the fingerprint of the cache's cases."""
    from ..data.preprocess import load_prepared, preprocess_dataset

    t = study.trainings

    def work() -> dict[str, Any]:
        summary = preprocess_dataset(study.manifest, t.prep, study.config.preprocess, workers=t.workers,
                                     progress=t.progress)
        return {"done": summary.done, "skipped": summary.skipped}

    study.stages.run("preprocess", fingerprint(study.manifest.read_text(encoding="utf-8"),
                                               _input_fingerprints(study.dataset, study.config)), work)
    return fingerprint(sorted(c.record().get("fingerprint", c.id) for c in load_prepared(t.prep).cases))


def _predict(study: _Study, keys: dict[str, str]) -> str:
    """The stage ``predict``: the liver model embedded in both models, which then predict the test and
    unlabeled cases as their folders say (``model.folder.write_infer``: the study's ``infer``), inside
    the given livers and fully automatically; returns its fingerprint."""
    from ..inference.batch import predict_paths
    from ..model.folder import embed_liver_model, model_dir, write_infer

    t, dataset, preds = study.trainings, study.dataset, study.preds

    def work() -> dict[str, Any]:
        failed, no_liver = 0, {}
        for name, model in (("A1", model_dir(t.a1)), ("A2", model_dir(t.a2))):
            embed_liver_model(model_dir(t.liver), model)
            write_infer(model, study.config.infer)  # the folder says how it predicts: hepaseg predict repeats this
            for auto in (False, True):
                for split in PREDICT_SPLITS:
                    if dataset.split(split):
                        summary = predict_paths(model, preds[name + AUTO * auto], dataset=study.manifest, split=split,
                                                overwrite=True, device=t.device, progress=t.progress, auto_liver=auto)
                        if auto:  # no plausible liver: the fully automatic pipeline found no tumour there
                            no_liver.update(summary.failed)
                            write_empty_predictions(dataset, preds[name + AUTO], [i for i, _ in summary.failed])
                        else:
                            failed += len(summary.failed)
        if failed:
            raise InputError(preds["A1"].parent, f"{failed} case(s) failed to predict (see the lines above)")
        return {"cases": {s: len(dataset.split(s)) for s in PREDICT_SPLITS}, "no_liver": no_liver}

    key = fingerprint(keys["a1"], keys["a2"], keys["liver"], stage_values(study.config, "predict"),
                      stage_values(t.liver_config, "predict"), study.manifest.read_text(encoding="utf-8"))
    study.stages.run("predict", key, work, stale=tuple(preds.values()))
    return key


def _evaluate(study: _Study, predict_key: str) -> str:
    """The stage ``evaluate``: the four algorithms against the raters, the predicted livers against the
    given ones; returns its fingerprint (a new evaluation folder format re-evaluates)."""
    from ..evaluation.liver import score_livers, write_liver_scores
    from ..inference.outputs import LIVER_DIR
    from .evaluation import write_evaluation

    def work() -> dict[str, Any]:
        results = write_evaluation(study.manifest, study.preds, study.evaluation, split="test",
                                   config=study.config.evaluate, workers=study.trainings.workers)
        livers = score_livers(study.manifest, study.preds["A2" + AUTO] / LIVER_DIR, split="test")
        write_liver_scores(livers, study.evaluation)
        return {"cases": len(results.info.cases), "liver_dice": float(np.mean([r.dice for r in livers]))}

    key = fingerprint(predict_key, stage_values(study.config, "evaluate")["evaluate"], RESULTS_FORMAT)
    study.stages.run("evaluate", key, work, stale=(study.evaluation,))
    return key


def _report(study: _Study, evaluate_key: str) -> None:
    """The stage ``report``: ``report.html`` from the evaluation, the liver and run sections (and an
    exported rating's, whose summary is part of the fingerprint)."""
    from ..report.liver import liver_sections
    from ..report.page import write_report
    from ..report.run import run_sections

    stages = study.stages

    def work() -> dict[str, Any]:
        write_report(study.evaluation, study.report, sections=[
            *liver_sections(study.evaluation), *run_sections(stages.record.data, stages.seconds, study.trainings.device)])
        return {"report": str(study.report)}

    stages.run("report", fingerprint(evaluate_key, stages.record.timings(but="report"),
                                     _rating_fingerprint(study.evaluation)), work)


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


def _rating_fingerprint(evaluation: Path) -> str | None:
    """The exported rating's summary beside the evaluation (None without one)."""
    from ..rating.export import SUMMARY_FILE
    from ..report.rating import find_rating

    results = find_rating(evaluation)
    return None if results is None else fingerprint((results / SUMMARY_FILE).read_text(encoding="utf-8"))


def _input_fingerprints(dataset, config: Config) -> list[str]:
    """Per case, the pre-processing fingerprint of its files (path, size, mtime) and configuration."""
    from ..data.preprocess import case_fingerprint

    try:
        return [case_fingerprint(case, config.preprocess) for case in dataset.cases]
    except FileNotFoundError as exc:
        raise InputError(exc.filename, "file not found") from exc
