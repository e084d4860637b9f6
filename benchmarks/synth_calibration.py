"""Inter-rater agreement of the synthetic cohort's test cases, as the paper measures it; prints JSON.

For every test case and rater pair Ri, Rj (i < j, Ri the reference): tumour Dice
(``hepaseg.evaluation.metrics.dice``) and lesion detection with N:M correspondences (``hepaseg.evaluation.matching.detect``,
26-connectivity, Dice > 0.2). Per-case values are averaged over pairs, then over cases (NaN left out).
Each rater is also compared with the hidden truth. Paper (test set): Dice 0.781 +- 0.121,
recall 0.804, precision 0.787, F1 0.761, median 1 false positive per case.

    python benchmarks/synth_calibration.py data/cohort           # an existing cohort folder
    python benchmarks/synth_calibration.py data/cohort --write   # write the default cohort first
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np

from hepaseg.evaluation.matching import detect
from hepaseg.evaluation.metrics import dice
from hepaseg.io.volumes import read_volume


def _stats(values: list[float]) -> dict:
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "sd": None, "median": None, "n": 0}
    return {"mean": round(float(v.mean()), 4), "sd": round(float(v.std(ddof=1)) if v.size > 1 else 0.0, 4),
            "median": round(float(np.median(v)), 4), "n": int(v.size)}


def _nanmean(values: list[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def case_agreement(masks: dict[str, np.ndarray]) -> dict[str, float]:
    """Pairwise means for one case: Dice, recall, precision, F1, false positives."""
    rows = {"dice": [], "recall": [], "precision": [], "f1": [], "fp": []}
    for ref, other in itertools.combinations(sorted(masks), 2):
        det = detect(masks[ref], masks[other])
        rows["dice"].append(dice(masks[ref], masks[other]))
        rows["recall"].append(det.recall)
        rows["precision"].append(det.precision)
        rows["f1"].append(det.f1)
        rows["fp"].append(float(det.fp))
    return {k: _nanmean(v) for k, v in rows.items()}


def measure(manifest: Path) -> dict:
    """Inter-rater and rater-vs-truth agreement over the manifest's test cases."""
    data = json.loads(manifest.read_text())
    root = manifest.parent
    per_case, vs_truth = [], {}
    for case in data["cases"]:
        if case["split"] != "test" or len(case["tumor"]) < 2:
            continue
        masks = {r: read_volume(root / p).array > 0 for r, p in case["tumor"].items()}
        per_case.append({"id": case["id"], **case_agreement(masks)})
        truth = read_volume(root / case["id"] / "tumor_truth.nii.gz").array > 0
        for r, m in masks.items():
            det = detect(truth, m)
            vs_truth.setdefault(r, {"dice": [], "recall": [], "precision": [], "f1": []})
            for key, value in (("dice", dice(truth, m)), ("recall", det.recall), ("precision", det.precision),
                               ("f1", det.f1)):
                vs_truth[r][key].append(value)
    return {
        "cohort": str(manifest),
        "test_cases": len(per_case),
        "inter_rater": {key: _stats([c[key] for c in per_case]) for key in ("dice", "recall", "precision", "f1", "fp")},
        "rater_vs_truth": {r: {k: _stats(v)["mean"] for k, v in d.items()} for r, d in sorted(vs_truth.items())},
        "paper": {"dice": "0.781 +- 0.121", "recall": 0.804, "precision": 0.787, "f1": 0.761, "median_fp": 1},
        "per_case": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.items()} for c in per_case],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cohort", type=Path, help="cohort folder holding dataset.json")
    parser.add_argument("--write", action="store_true", help="write the default cohort there first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = {}
    if args.write:
        from hepaseg.synth import write_cohort

        start = time.perf_counter()
        write_cohort(args.cohort, seed=args.seed, workers=args.workers)
        result["write_seconds"] = round(time.perf_counter() - start, 1)
    result.update(measure(args.cohort / "dataset.json"))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
