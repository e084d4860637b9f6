"""The end-to-end study on a tiny synthetic cohort: every stage, the report, and --resume."""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hepaseg.cli import main
from hepaseg.errors import InputError
from hepaseg.evaluation.results import read_results
from hepaseg.pipeline.demo import DEMO_RATER, demo_rating, rating_lines
from hepaseg.pipeline.study import STATE, run_study
from hepaseg.report.run import headline

from ..tiny_study import tiny_liver_config, tiny_study_config

STAGES = ("preprocess", "liver", "a2", "a1", "predict", "evaluate", "selection_check", "report")


@pytest.fixture(scope="module")
def study(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    result = run_study(cohort, out, tiny_study_config(), device="cpu", workers=2, progress=False, log=lambda s: None,
                       liver_config=tiny_liver_config())
    return out, result


def test_study_runs_every_stage_and_writes_the_report(study, cohort):
    out, result = study
    record = json.loads((out / STATE).read_text())
    assert all(record["stages"][s]["finished"] for s in STAGES)
    assert set(result.stage_seconds) == set(STAGES) and result.skipped == ()
    manifest = json.loads(cohort.read_text())
    predicted = {c["id"] for c in manifest["cases"] if c["split"] in ("test", "unlabeled")}
    for algorithm in ("A1", "A2", "A1-auto", "A2-auto"):
        assert {p.name.removesuffix(".nii.gz") for p in (out / "preds" / algorithm).glob("*.nii.gz")} == predicted
    results = read_results(result.evaluation)
    assert results.info.algorithms == ("A1", "A2", "A1-auto", "A2-auto")
    assert json.loads((out / "a1" / "model" / "liver" / "config.json").read_text())["preset"] == "demo-liver"
    no_liver = record["stages"]["predict"]["facts"]["no_liver"]
    for algorithm in ("A1", "A2"):  # inside the given livers every case has its liver written beside it
        livers = {p.name.removesuffix(".nii.gz") for p in (out / "preds" / algorithm / "liver").glob("*.nii.gz")}
        assert livers == predicted
    auto_livers = {p.name.removesuffix(".nii.gz") for p in (out / "preds" / "A2-auto" / "liver").glob("*.nii.gz")}
    assert auto_livers == predicted - set(no_liver), "a case without a plausible liver has no liver file"
    with (result.evaluation / "liver.csv").open(newline="") as handle:
        livers = list(csv.DictReader(handle))
    tests = [c["id"] for c in manifest["cases"] if c["split"] == "test"]
    assert [r["case"] for r in livers] == tests
    for row in livers:
        assert (row["dice"] == "nan") == (row["case"] in no_liver)
    assert set(results.info.cases) == {c["id"] for c in manifest["cases"] if c["split"] == "test"}
    page = result.report.read_text()
    for text in ("The run: wall time per stage", "Figure 5", "Environment", "Table 1", "Liver model"):
        assert text in page
    winner = _selection_winner(out / "a1")
    assert record["stages"]["a1"]["facts"]["winner"] == winner
    with (out / "a1" / "selection.csv").open(newline="") as handle:
        assert [int(r["seed"]) for r in csv.DictReader(handle) if r["status"] == "winner"] == [winner]
    a2_info = json.loads((out / "a2" / "model" / "model.json").read_text())
    assert a2_info["seed"] == 2, "A2 is an independent seed, after A1's seeds 0 and 1"
    table = headline(result.evaluation)
    assert "mean Dice vs raters" in table
    assert table.splitlines()[-2] == _expected_comparison(result.evaluation / "scores.csv")
    assert table.splitlines()[-1].startswith("selection check: ")  # tests/pipeline/test_selection_check.py


def _selection_winner(selection: Path) -> int:
    """The seed with the best best_score among the tasks of the last rung (ties: the lower seed; a run
    never validated last), from the selection's own record."""
    tasks = json.loads((selection / "selection.json").read_text())["tasks"]
    last = max(t["rung"] for t in tasks)

    def order(task: dict) -> tuple[float, int]:
        jaccard = task["best_score"]
        return (math.inf if jaccard is None or math.isnan(jaccard) else -jaccard, task["seed"])

    return min((t for t in tasks if t["rung"] == last), key=order)["seed"]


def _expected_comparison(scores: Path) -> str:
    """The headline's last line, from scores.csv: the two algorithms' mean (over cases, NaN left out) of
    mean_dice, the better one first, both to 3 decimals; the same (to 3 decimals' rounding) is a tie."""
    with scores.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    means = {name: float(np.nanmean([float(r["mean_dice"]) for r in rows if r["algorithm"] == name]))
             for name in ("A1", "A2")}
    a1, a2 = means["A1"], means["A2"]
    if abs(a1 - a2) < 5e-4:
        return f"A1 and A2 reach the same mean Dice ({a1:.3f} vs {a2:.3f})."
    (better, high), (worse, low) = sorted(means.items(), key=lambda item: -item[1])
    return f"{better} is better than {worse} in mean Dice ({high:.3f} vs {low:.3f})."


def test_hepaseg_predict_on_each_model_folder_repeats_the_study_voxel_for_voxel(study, cohort, tmp_path, capsys):
    """The model folder decides how it predicts (infer settings, arithmetic), so a user re-running
    ``hepaseg predict`` on any of the study's models gets the study's own test masks."""
    import nibabel as nib

    from hepaseg.report.selection_check import CHECK_DIR
    from hepaseg.selection.halving import run_dir

    out, _ = study
    manifest = json.loads(cohort.read_text())
    tests = [c["id"] for c in manifest["cases"] if c["split"] == "test"]
    models = {out / "preds" / "A1": out / "a1" / "model", out / "preds" / "A2": out / "a2" / "model"}
    for seed_preds in sorted((out / CHECK_DIR / "preds").glob("seed-*")):  # the selection check's other runs
        models[seed_preds] = run_dir(out / "a1", int(seed_preds.name.removeprefix("seed-"))) / "model"
    assert len(models) >= 3
    for study_preds, model in models.items():
        again = tmp_path / study_preds.name
        assert main(["predict", str(model), "--dataset", str(cohort), "--split", "test", "-o", str(again)]) == 0
        for case in tests:
            mine = np.asarray(nib.load(again / f"{case}.nii.gz").dataobj)
            theirs = np.asarray(nib.load(study_preds / f"{case}.nii.gz").dataobj)
            np.testing.assert_array_equal(mine, theirs, err_msg=f"{model}: {case}")
    capsys.readouterr()


def test_the_trainings_side_by_side_equal_each_trained_alone(study, cohort, tmp_path):
    """The fixture's study trained the liver model, A2 (in chunks) and A1 in two worker processes;
    each run trained here alone, in this process with the slots' threads, comes out bit for bit equal."""
    from hepaseg.presets import liver_preset_for
    from hepaseg.model.device import torch_threads
    from hepaseg.model.folder import WEIGHTS, model_dir
    from hepaseg.pipeline.trainings import a2_seed, training_slots
    from hepaseg.selection.executors import LocalExecutor
    from hepaseg.selection.halving import run_selection
    from hepaseg.training.liver import train_liver
    from hepaseg.training.train import train_run

    out, _ = study
    config, liver_config = tiny_study_config(), tiny_liver_config()
    assert training_slots("cpu", 2) == 2 and training_slots("cpu", 1) == 0
    assert liver_preset_for(config).preset == liver_config.preset
    threads = max(1, (os.cpu_count() or 2) // 2)  # the slots share the cores
    record = json.loads((out / STATE).read_text())["stages"]
    assert record["a2"]["facts"]["iterations"] == config.train.iterations
    with torch_threads(threads):
        train_run(out / "prep", tmp_path / "a2", config, seed=a2_seed(config), device="cpu", progress=False)
        train_liver(cohort, tmp_path / "liver", liver_config, seed=config.select.first_seed,
                    device="cpu", progress=False)
    alone = run_selection(out / "prep", tmp_path / "a1", config, LocalExecutor(["cpu"], threads=threads),
                          progress=False)
    for run in ("a2", "liver"):
        assert (model_dir(out / run) / WEIGHTS).read_bytes() == (model_dir(tmp_path / run) / WEIGHTS).read_bytes(), run
    assert record["a1"]["facts"]["winner"] == alone.winner
    assert (out / "a1" / "model" / WEIGHTS).read_bytes() == (tmp_path / "a1" / "model" / WEIGHTS).read_bytes()


def test_existing_study_needs_resume(study, cohort):
    out, _ = study
    with pytest.raises(InputError, match="--resume"):
        run_study(cohort, out, tiny_study_config(), device="cpu", workers=1, progress=False, log=lambda s: None)


def test_resume_skips_finished_stages_and_reruns_what_a_change_touches(study, cohort):
    out, first = study
    report_mtime = first.report.stat().st_mtime_ns
    again = run_study(cohort, out, tiny_study_config(), resume=True, device="cpu", workers=1, progress=False,
                      log=lambda s: None)
    assert again.skipped == STAGES and again.stage_seconds == {}
    assert first.report.stat().st_mtime_ns == report_mtime

    changed = tiny_study_config()
    changed = changed.replace(evaluate=replace(changed.evaluate, detection_dice_threshold=0.3))
    third = run_study(cohort, out, changed, resume=True, device="cpu", workers=1, progress=False,
                      log=lambda s: None)
    assert third.skipped == ("preprocess", "liver", "a2", "a1", "predict")
    assert set(third.stage_seconds) == {"evaluate", "selection_check", "report"}


def test_cli_study_with_a_config_file(cohort, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(tiny_study_config().to_json())
    liver = tmp_path / "liver.json"
    liver.write_text(tiny_liver_config().to_json())
    code = main(["study", str(cohort), "-o", str(tmp_path / "s"), "--config", str(config), "--device", "cpu",
                 "--workers", "1", "--liver-config", str(liver)])
    assert code == 0
    out = capsys.readouterr().out
    assert "mean Dice vs raters" in out and f"report: {tmp_path / 's' / 'report.html'}" in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": {"depth": 3}}')
    assert main(["study", str(cohort), "-o", str(tmp_path / "t"), "--config", str(bad)]) == 2
    assert "unknown field(s) depth" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_demo_rating_step_takes_seconds_and_the_resumed_report_shows_it(study, cohort):
    """``make demo``'s rating step on the tiny study: the SIMULATED rater rates every contour, and the
    next resumed run writes the report again (only the report) with the rating section."""
    out, _ = study
    started = time.perf_counter()
    summary = demo_rating(out, seed=0)
    assert time.perf_counter() - started < 20
    rated = [c for c in json.loads(cohort.read_text())["cases"] if c["split"] in ("test", "unlabeled")]
    assert summary["complete"] and summary["rated"] == summary["items"] == 2 * len(rated)
    assert summary["simulated"] and summary["raters"] == [DEMO_RATER]
    again = run_study(cohort, out, tiny_study_config(), resume=True, device="cpu", workers=1, progress=False,
                      log=lambda s: None)
    assert "report" in again.stage_seconds and {"preprocess", "liver", "a2", "a1", "predict"} <= set(again.skipped)
    page = again.report.read_text()
    assert "Expert rating (Fig. 4): SIMULATED rater, not a radiologist" in page
    assert demo_rating(out, seed=0)["per_algorithm"] == summary["per_algorithm"]  # resumed: the same ratings
    assert any(line.startswith("expert rating (Fig. 4) by SIMULATED rater") for line in rating_lines(summary))
