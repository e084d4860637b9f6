"""The architecture ablation on the tiny synthetic cohort: every stage, the report, --resume, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hepaseg.cli import main
from hepaseg.errors import InputError
from hepaseg.evaluation.results import read_results
from hepaseg.evaluation.seeds import by_group
from hepaseg.pipeline.ablation import parse_variants, run_ablation
from hepaseg.pipeline.record import STATE

from ..tiny_study import tiny_study_config

VARIANTS = ("aunet", "2d", "3d")
STAGES = ("preprocess", "train", "footprint", "predict", "evaluate", "report")


@pytest.fixture(scope="module")
def ablation(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    result = run_ablation(cohort, out, tiny_study_config(), VARIANTS, seeds=2, device="cpu", workers=1,
                          progress=False, log=lambda s: None)
    return out, result


def test_every_variant_trains_every_seed_and_is_evaluated(ablation, cohort):
    out, result = ablation
    record = json.loads((out / STATE).read_text())
    assert all(record["stages"][s]["finished"] for s in STAGES) and result.skipped == ()
    assert record["groups"] == {v: [f"{v}-s0", f"{v}-s1"] for v in VARIANTS}
    tests = {c["id"] for c in json.loads(cohort.read_text())["cases"] if c["split"] == "test"}
    results = read_results(result.evaluation)
    assert results.info.algorithms == tuple(f"{v}-s{s}" for v in VARIANTS for s in (0, 1))
    for run in results.info.algorithms:
        assert {p.name.removesuffix(".nii.gz") for p in (out / "preds" / run).glob("*.nii.gz")} == tests
        assert record["stages"]["train"]["facts"][run]["iterations_done"] == tiny_study_config().train.iterations
    # the isotropic variant has its own cache, resampled in z; aunet and 2d share one
    assert sorted(p.name for p in (out / "prep").iterdir()) == ["4mm", "4mm-z4mm"]
    footprint = record["stages"]["footprint"]["facts"]
    assert footprint["2d"]["output_size"][2] == 1 and footprint["2d"]["receptive_field"][2] == 1
    assert footprint["3d"]["receptive_field"][2] > 1 and footprint["aunet"]["peak_memory_mb"] > 0


def test_same_seed_differs_between_variants_but_a_variant_is_deterministic(ablation):
    out, _ = ablation
    weights = {run: (out / "runs" / run.split("-s")[0] / f"seed-00{run[-1]}" / "model" / "weights.safetensors")
               .read_bytes() for run in ("aunet-s0", "aunet-s1", "2d-s0")}
    assert len(set(weights.values())) == 3


def test_variant_values_are_per_case_means_over_seeds(ablation):
    _, result = ablation
    results = read_results(result.evaluation)
    groups = {v: [f"{v}-s0", f"{v}-s1"] for v in VARIANTS}
    grouped = by_group(results, groups)
    for variant, runs in groups.items():
        seeds = np.array([results.values("scores", "mean_dice", r) for r in runs])
        expected = np.array([np.nan if np.isnan(col).all() else np.nanmean(col) for col in seeds.T])
        np.testing.assert_allclose(grouped.values("scores", "mean_dice", variant), expected, equal_nan=True)
    inter = results.values("segmentation", "dice", "inter-rater", "mean")
    np.testing.assert_allclose(grouped.values("segmentation", "dice", "inter-rater", "mean"), inter, equal_nan=True)


def test_report_has_the_ablation_sections_and_compares_variants(ablation):
    _, result = ablation
    page = result.report.read_text()
    for title in ("Ablation: what the data show", "Variants", "Seeds", "Segmentation per variant (Table 1)",
                  "Detection per variant (Table 2)", "By lesion size", "Paired tests"):
        assert f"<h2>{title}</h2>" in page
    for pair in ("p aunet vs 2d", "p aunet vs 3d", "p 2d vs 3d"):
        assert pair in page
    assert "significant after Benjamini-Hochberg" in page and "data:image/png;base64" in page


def test_resume_skips_every_finished_stage(ablation, cohort):
    out, _ = ablation
    with pytest.raises(InputError, match="already holds an ablation"):
        run_ablation(cohort, out, tiny_study_config(), VARIANTS, seeds=2, device="cpu", progress=False,
                     log=lambda s: None)
    again = run_ablation(cohort, out, tiny_study_config(), VARIANTS, seeds=2, device="cpu", workers=1, resume=True,
                         progress=False, log=lambda s: None)
    assert again.skipped == STAGES


def test_cli_ablation_and_its_errors(ablation, cohort, capsys):
    out, _ = ablation
    assert main(["study", str(cohort), "-o", str(out), "--variants", ",".join(VARIANTS), "--seeds", "2",
                 "--resume", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "mean Dice vs raters" in printed and "aunet" in printed and "report:" in printed
    assert main(["study", str(cohort), "-o", str(out / "x"), "--seeds", "2"]) == 2
    assert "--variants" in capsys.readouterr().err
    assert main(["study", str(cohort), "-o", str(out / "y"), "--variants", "aunet,4d"]) == 2
    assert "unknown variant '4d'" in capsys.readouterr().err
    assert not (out / "x").exists() and not (out / "y").exists()


@pytest.mark.parametrize("text, message", [("aunet", "two or more"), ("aunet,aunet", "twice"),
                                           ("aunet,unet", "unknown variant")])
def test_parse_variants_refuses_bad_lists(text, message):
    with pytest.raises(InputError, match=message):
        parse_variants(text)
    assert parse_variants(" 3d, aunet ") == ("3d", "aunet")
