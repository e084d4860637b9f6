"""The study's ``selection_check`` stage: every trained run on the test cases, its test score against
its validation score (``report.selection_check`` describes the files and renders them).

The runs: each of A1's seeds (``<a1>/runs/seed-NNN/model``, the state it keeps: its best validation,
reached within the iterations it trained before A1 dropped it or chose it) and A2 (``<a2>/model``).
The A1 winner's and A2's predictions are the study's own (``preds/A1``, ``preds/A2``: the same
weights); every other run predicts the test split into ``<check>/preds/seed-NNN/``, which the batch
predictor resumes case by case. ``<check>/preds/inputs.json`` holds the fingerprint of the models
and settings those predictions came from; another one removes them first. The runs are scored by
``evaluation.evaluate.evaluate_dataset``, the evaluation's own code, so the A2 row's test mean
Dice is the evaluation's A2 mean Dice.

``select.check_runs`` off: the stage removes the folder and records that it did not run.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import InputError
from ..evaluation.evaluate import evaluate_dataset
from ..evaluation.results import MEAN, to_csv
from ..evaluation.stats import rank_correlation
from ..io.atomic import write_bytes, write_json, write_text
from ..report.selection_check import (
    CHECK_FORMAT,
    FIGURE_FILE,
    SUMMARY_FILE,
    TABLE_FILE,
    RunScore,
    check_figure,
    score_pairs,
    verdict,
)
from ..report.tables import finite_mean

PREDS = "preds"
INPUTS = "inputs.json"


def _run(model: Path, algorithm: str, winner: int | None) -> RunScore:
    """A run's row before testing: seed, iterations and best validation from its ``model.json``."""
    from ..model.folder import read_model_info

    _, info = read_model_info(model)
    seed, best = int(info["seed"]), info.get("best_score")
    return RunScore(run=f"{algorithm} seed {seed}", algorithm=algorithm, seed=seed,
                    iterations=int(info["iterations_done"]), best_iteration=int(info["best_iteration"]),
                    validation_score=math.nan if best is None else float(best), test_mean_dice=math.nan,
                    test_f1=math.nan, a1_winner=algorithm == "A1" and seed == winner, a2=algorithm == "A2")


def trained_runs(a1: Path, a2: Path, config: Config) -> list[tuple[RunScore, Path]]:
    """Every run of the study with its model folder: A1's seeds in seed order, then A2.

    Raises:
        InputError: a model folder is missing or unreadable.
    """
    from ..model.folder import model_dir, read_model_info
    from ..selection.halving import run_dir
    from ..selection.schedule import seeds

    winner = int(read_model_info(model_dir(a1))[1]["seed"])
    runs = [(_run(model_dir(run_dir(a1, s)), "A1", winner), model_dir(run_dir(a1, s))) for s in seeds(config.select)]
    return [*runs, (_run(model_dir(a2), "A2", None), model_dir(a2))]


def _prediction_folders(runs: list[tuple[RunScore, Path]], study_preds: Mapping[str, Path], out: Path, key: str,
                        config: Config, manifest: Path, device: str, progress: bool) -> dict[str, Path]:
    """Run label -> folder of its test predictions; predicts the runs the study has not predicted."""
    from ..inference.batch import predict_paths
    from ..model.folder import WEIGHTS, write_infer

    folder = out / PREDS
    marker = folder / INPUTS
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")).get("fingerprint") != key:
        shutil.rmtree(folder)  # predictions of other models or settings
    folder.mkdir(parents=True, exist_ok=True)
    write_json(marker, {"fingerprint": key})
    folders = {}
    for row, model in runs:
        if row.a1_winner or row.a2:
            folders[row.run] = study_preds[row.algorithm]
        elif (model / WEIGHTS).is_file():  # a run never validated has no kept state to test
            target = folder / f"seed-{row.seed:03d}"
            write_infer(model, config.infer)
            summary = predict_paths(model, target, dataset=manifest, split="test", device=device, progress=progress)
            if summary.failed:
                raise InputError(target, f"{len(summary.failed)} case(s) failed to predict (see the lines above)")
            folders[row.run] = target
    return folders


def run_check(manifest: Path, a1: Path, a2: Path, study_preds: Mapping[str, Path], out: Path, config: Config,
              key: str, device: str = "auto", workers: int | None = None, progress: bool = True) -> dict[str, Any]:
    """The stage's work: test every run, write the check's files into ``out``; returns the stage's facts.

    Args:
        a1, a2: the study's selection folder and A2's run folder.
        study_preds: ``{"A1": folder, "A2": folder}``, the study's predictions (reused for A1's winner and A2).
        key: the fingerprint of what the runs' predictions depend on (models, inference settings, manifest).

    Raises:
        InputError: a missing model folder, a case that failed to predict, or what the evaluation raises.
    """
    if not config.select.check_runs:
        shutil.rmtree(out, ignore_errors=True)
        return {"enabled": False}
    (out / SUMMARY_FILE).unlink(missing_ok=True)  # written last: the folder is complete only with it
    runs = trained_runs(a1, a2, config)
    folders = _prediction_folders(runs, study_preds, out, key, config, manifest, device, progress)
    results = evaluate_dataset(manifest, folders, "test", config.evaluate, workers)
    rows = [replace(row, test_mean_dice=finite_mean(results.values("scores", "mean_dice", row.run)),
                    test_f1=finite_mean(results.values("detection", "f1", row.run, MEAN)))
            if row.run in folders else row for row, _ in runs]
    correlation = rank_correlation(*score_pairs(rows), names=("validation score", "test score"))
    write_text(out / TABLE_FILE, to_csv(rows, RunScore))
    write_bytes(out / FIGURE_FILE, check_figure(rows, correlation, config.train.validation_metric))
    write_json(out / SUMMARY_FILE, {"format": CHECK_FORMAT, "test_cases": len(results.info.cases),
                                    "spearman": asdict(correlation), "sentence": verdict(rows, correlation)})
    return {"enabled": True, "folder": str(out), "runs": len(rows), "rho": correlation.rho, "p": correlation.p,
            "validation_metric": config.train.validation_metric}
