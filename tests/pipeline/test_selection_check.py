"""The study's selection check on the tiny study: one row per trained run, the A2 row's test score by an
independent route, the report's section and headline line, resume, and the switch that turns it off."""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, replace

import pytest

from hepaseg.cli import main
from hepaseg.evaluation.results import from_csv, read_results
from hepaseg.evaluation.stats import rank_correlation
from hepaseg.pipeline.selection_check import run_check
from hepaseg.pipeline.study import STATE, run_study
from hepaseg.report.run import headline
from hepaseg.report.selection_check import CHECK_DIR, SUMMARY_FILE, TABLE_FILE, TITLE, RunScore, score_pairs, verdict

from ..tiny_study import tiny_liver_config, tiny_study_config


def _quiet(cohort, out, config, resume=True):
    return run_study(cohort, out, config, resume=resume, device="cpu", workers=1, progress=False, log=lambda s: None,
                     liver_config=tiny_liver_config())


@pytest.fixture(scope="module")
def study(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, _quiet(cohort, out, tiny_study_config(), resume=False)


def _rows(out) -> tuple[RunScore, ...]:
    return from_csv(out / CHECK_DIR / TABLE_FILE, RunScore)


def _model_info(folder) -> dict:
    return json.loads((folder / "model" / "model.json").read_text())


def test_one_row_per_trained_run(study):
    out, _ = study
    rows = _rows(out)
    winner = _model_info(out / "a1")["seed"]
    assert [(r.run, r.algorithm, r.seed) for r in rows] == [("A1 seed 0", "A1", 0), ("A1 seed 1", "A1", 1),
                                                            ("A2 seed 2", "A2", 2)]
    for row in rows:
        info = _model_info(out / "a2" if row.a2 else out / "a1" / "runs" / f"seed-{row.seed:03d}")
        assert (row.iterations, row.best_iteration) == (info["iterations_done"], info["best_iteration"])
        assert row.validation_score == pytest.approx(info["best_score"])
        assert row.a1_winner == (row.algorithm == "A1" and row.seed == winner)
        assert 0.0 <= row.test_mean_dice <= 1.0
    record = json.loads((out / STATE).read_text())
    assert record["stages"]["a1"]["facts"]["winner"] == winner
    assert sum(r.a1_winner for r in rows) == 1 and sum(r.a2 for r in rows) == 1
    loser = next(r.seed for r in rows if r.algorithm == "A1" and not r.a1_winner)
    predicted = sorted(p.name for p in (out / CHECK_DIR / "preds").iterdir() if p.is_dir())
    assert predicted == [f"seed-{loser:03d}"], "the winner's and A2's test predictions are the study's own"
    test_cases = set(read_results(out / "eval").info.cases)
    assert {p.name.removesuffix(".nii.gz") for p in (out / CHECK_DIR / "preds" / predicted[0]).glob("*.nii.gz")} \
        == test_cases


def test_a2_and_the_winner_score_as_in_the_evaluation(study):
    """The evaluation's scores.csv / detection.csv, averaged here by hand, against the check's rows."""
    out, result = study
    results = read_results(result.evaluation)
    by_role = {("A1" if r.a1_winner else "A2"): r for r in _rows(out) if r.a1_winner or r.a2}
    for algorithm, row in by_role.items():
        dice = _finite_mean([s.mean_dice for s in results.scores if s.algorithm == algorithm])
        per_case = [_finite_mean([d.f1 for d in results.detection if d.algorithm == algorithm and d.case == case])
                    for case in results.info.cases]
        assert row.test_mean_dice == pytest.approx(dice, abs=1e-12)
        assert row.test_f1 == pytest.approx(_finite_mean(per_case), abs=1e-12, nan_ok=True)


def _finite_mean(values) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def test_correlation_report_and_headline(study):
    out, result = study
    rows = _rows(out)
    summary = json.loads((out / CHECK_DIR / SUMMARY_FILE).read_text())
    expected = rank_correlation(*score_pairs(rows), names=("validation score", "test score"))
    assert summary["spearman"] == asdict(expected)
    sentence = verdict(rows, expected)
    assert summary["sentence"] == sentence
    page = result.report.read_text()
    assert TITLE in page and html.escape(sentence) in page
    assert "selection check (every run on the test cases)" in page  # its row in the stage table
    assert headline(result.evaluation).splitlines()[-1] == "selection check: " + sentence


def test_a_study_of_hepaseg_0_1_reports_the_same_scores(study, tmp_path):
    """hepaseg 0.1 wrote the validation score as ``best_jaccard`` (stage facts) and ``validation_jaccard``
    (the check's table): such files read back as today's, and the report says the same."""
    import shutil

    from hepaseg.report.run import run_sections
    from hepaseg.report.selection_check import read_check

    out, _ = study
    old = tmp_path / CHECK_DIR
    shutil.copytree(out / CHECK_DIR, old)
    table = (old / TABLE_FILE).read_text()
    assert table.splitlines()[0].count("validation_score") == 1
    (old / TABLE_FILE).write_text(table.replace("validation_score", "validation_jaccard", 1))
    assert read_check(old) == read_check(out / CHECK_DIR)
    record = json.loads((out / STATE).read_text())
    legacy = json.loads(json.dumps(record).replace('"best_score"', '"best_jaccard"'))
    assert legacy != record
    assert [s.html for s in run_sections(legacy, {}, "cpu")] == [s.html for s in run_sections(record, {}, "cpu")]
    a2 = record["stages"]["a2"]["facts"]["best_score"]
    assert f"{a2:.3f}" in run_sections(legacy, {}, "cpu")[1].html


def test_resume_skips_it_and_the_switch_turns_it_off(study, cohort, tmp_path, capsys):
    out, result = study
    again = _quiet(cohort, out, tiny_study_config())
    assert "selection_check" in again.skipped and again.stage_seconds == {}
    on = tiny_study_config()
    off = on.replace(select=replace(on.select, check_runs=False))
    (tmp_path / "off.json").write_text(off.to_json())
    # the one configuration field a resumed study may change; A1 and the other stages are kept
    assert main(["study", str(cohort), "-o", str(out), "--resume", "--config", str(tmp_path / "off.json"),
                 "--device", "cpu", "--workers", "1"]) == 0
    stages = json.loads((out / STATE).read_text())["stages"]
    assert stages["selection_check"]["facts"] == {"enabled": False}
    assert [line for line in capsys.readouterr().out.splitlines() if line.endswith("up to date, skipped")] == [
        f"[{name}] up to date, skipped" for name in ("preprocess", "liver", "a2", "a1", "predict", "evaluate")]
    assert not (out / CHECK_DIR).exists()
    page = result.report.read_text()
    assert "The selection check is off (select.check_runs = false)" in page
    assert not any(line.startswith("selection check:") for line in headline(result.evaluation).splitlines())
    back = _quiet(cohort, out, on)
    assert set(back.stage_seconds) == {"selection_check", "report"} and (out / CHECK_DIR / SUMMARY_FILE).is_file()


def test_predictions_are_resumed_and_replaced_when_their_models_change(study, cohort):
    out, _ = study
    preds = {"A1": out / "preds" / "A1", "A2": out / "preds" / "A2"}
    folder = next(p for p in (out / CHECK_DIR / "preds").iterdir() if p.is_dir())
    kept, gone = sorted(folder.glob("*.nii.gz"))[:2]
    stamp = kept.stat().st_mtime_ns
    gone.unlink()
    key = json.loads((out / CHECK_DIR / "preds" / "inputs.json").read_text())["fingerprint"]
    config = tiny_study_config()
    rows = _rows(out)
    run_check(cohort, out / "a1", out / "a2", preds, out / CHECK_DIR, config, key, device="cpu", workers=1,
              progress=False)
    assert gone.is_file() and kept.stat().st_mtime_ns == stamp, "only the missing case is predicted again"
    assert _rows(out) == rows
    run_check(cohort, out / "a1", out / "a2", preds, out / CHECK_DIR, config, "other models", device="cpu",
              workers=1, progress=False)
    assert kept.stat().st_mtime_ns != stamp and _rows(out) == rows
