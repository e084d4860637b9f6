"""Time the evaluation of one 512 x 512 x 100 case (three raters, one algorithm) and print JSON.

Usage:
    .venv/bin/python benchmarks/evaluate_speed.py [--repeat 3] [--files]
        [--reference /tmp/ref/evaluation.py]

The case has 60 lesions per rater and 80 predicted lesions (0.8 x 0.8 x 3 mm voxels). Timed:

- ``evaluate_s``: ``hepaseg.evaluation.evaluate.evaluate_case`` in memory: labelling of the four masks, Dice,
  ASSD / HD95 and N:M detection of the algorithm against each rater and of each rater pair, phi
  (best of ``--repeat``).
- ``from_files_s`` (with ``--files``): ``evaluate_dataset`` on the same case written as NIfTI,
  reading included (one process).
- ``reference_s`` (with ``--reference``): the public ``evaluation.py`` of Chlebus et al. on the
  algorithm-vs-rater detections only (three calls, labels given), a subset of what ``evaluate_s``
  covers; its counts are compared with ours. Get it into a scratch folder outside this repository:
  ``git clone https://github.com/gchlebus/gchlebus.github.io`` and copy
  ``code/liver-tumor-segmentation-evaluation/evaluation.py`` (it is not part of hepaseg).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from hepaseg.config import EvalConfig
from hepaseg.evaluation.evaluate import evaluate_case, evaluate_dataset
from hepaseg.data.components import label
from hepaseg.evaluation.matching import match_lesions
from hepaseg.io.volumes import write_volume

SHAPE = (512, 512, 100)
SPACING = (0.8, 0.8, 3.0)
RATERS = ("R1", "R2", "R3")


def _spheres(shape, centres, radii) -> np.ndarray:
    """Ellipsoids of radius r voxels in-plane and r * 0.8 / 3 slices, drawn box by box."""
    mask = np.zeros(shape, dtype=bool, order="F")
    for c, r in zip(centres, radii):
        rz = max(r * SPACING[0] / SPACING[2], 0.6)
        lo = [max(int(np.floor(c[0] - r)), 0), max(int(np.floor(c[1] - r)), 0), max(int(np.floor(c[2] - rz)), 0)]
        hi = [min(int(np.ceil(c[0] + r)) + 1, shape[0]), min(int(np.ceil(c[1] + r)) + 1, shape[1]),
              min(int(np.ceil(c[2] + rz)) + 1, shape[2])]
        i, j, k = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        inside = ((i - c[0]) / r) ** 2 + ((j - c[1]) / r) ** 2 + ((k - c[2]) / rz) ** 2 <= 1.0
        mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] |= inside
    return mask


def _place(rng, n, radii_range, taken):
    """n lesion centres in a liver-sized region, at least 3 voxels apart from every other lesion."""
    centres, radii = [], []
    while len(centres) < n:
        r = rng.uniform(*radii_range)
        c = rng.uniform((80, 80, 10), (430, 430, 90))
        if all(np.hypot(*(c[:2] - tc[:2])) > r + tr + 8 or abs(c[2] - tc[2]) > 8 for tc, tr in taken):
            centres.append(c)
            radii.append(r)
            taken.append((c, r))
    return centres, radii


def make_case(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Three rater masks with 60 lesions each and a prediction with 80 lesions.

    The masks are Fortran-ordered, like every array ``hepaseg.io.volumes.read_volume`` returns.
    """
    rng = np.random.default_rng(seed)
    taken: list = []
    centres, radii = _place(rng, 60, (2.0, 12.0), taken)
    raters = {}
    for rater in RATERS:
        jitter = [c + rng.normal(0, (0.7, 0.7, 0.2)) for c in centres]
        raters[rater] = _spheres(SHAPE, jitter, [r * rng.uniform(0.85, 1.15) for r in radii])
    found = rng.permutation(60)[:52]  # 8 lesions missed
    pred_centres = [centres[i] + rng.normal(0, (1.0, 1.0, 0.3)) for i in found]
    pred_radii = [radii[i] * rng.uniform(0.75, 1.25) for i in found]
    extra_centres, extra_radii = _place(rng, 28, (1.5, 5.0), taken)  # 28 false positives
    prediction = _spheres(SHAPE, pred_centres + extra_centres, pred_radii + extra_radii)
    return raters, prediction


def _time(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _reference(path: str, raters: dict[str, np.ndarray], prediction: np.ndarray) -> dict:
    spec = importlib.util.spec_from_file_location("chlebus_evaluation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pred_labels, n_pred = label(prediction)
    total, agree = 0.0, True
    for mask in raters.values():
        ref_labels, n_ref = label(mask)
        ours = match_lesions(ref_labels, pred_labels, n_ref, n_pred)
        start = time.perf_counter()
        tp, fp, _, _, _, merges, splits = module.evaluate(pred_labels.astype(np.int32), ref_labels.astype(np.int32))
        total += time.perf_counter() - start
        agree &= (tp, fp, merges, splits) == (ours.tp, ours.fp, ours.merges, ours.splits)
    return {"reference_s": round(total, 2), "reference_counts_agree": bool(agree)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--files", action="store_true", help="also time evaluate_dataset from NIfTI files")
    parser.add_argument("--reference", help="path to Chlebus et al.'s evaluation.py (outside this repo)")
    args = parser.parse_args()

    raters, prediction = make_case()
    voxel_ml = float(np.prod(SPACING)) / 1000.0
    seconds, rows = _time(lambda: evaluate_case("bench", raters, {"A1": prediction}, voxel_ml, EvalConfig(),
                                                      spacing=SPACING),
                          args.repeat)
    detections = {row.rater: row for row in rows.detection}
    result = {
        "shape": list(SHAPE),
        "lesions_per_rater": {r: detections[r].n_ref for r in RATERS},
        "predicted_lesions": detections["R1"].n_pred,
        "tp_fp_fn_vs_R1": [detections["R1"].tp, detections["R1"].fp, detections["R1"].fn],
        "evaluate_s": round(seconds, 3),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }
    if args.files:
        result["from_files_s"] = round(_time_files(raters, prediction), 3)
    if args.reference:
        result.update(_reference(args.reference, raters, prediction))
        result["speedup"] = round(result["reference_s"] / seconds, 1)
    print(json.dumps(result, indent=2))


def _time_files(raters: dict[str, np.ndarray], prediction: np.ndarray) -> float:
    affine = np.diag([*SPACING, 1.0])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tumor = {}
        for rater, mask in raters.items():
            write_volume(mask.astype(np.uint8), affine, root / f"{rater}.nii.gz")
            tumor[rater] = f"{rater}.nii.gz"
        write_volume(np.zeros(SHAPE, dtype=np.uint8), affine, root / "image.nii.gz")
        (root / "preds").mkdir()
        write_volume(prediction.astype(np.uint8), affine, root / "preds" / "bench.nii.gz")
        manifest = {"name": "bench", "raters": list(RATERS), "cases": [
            {"id": "bench", "split": "test", "image": "image.nii.gz", "liver": "image.nii.gz", "tumor": tumor}]}
        (root / "dataset.json").write_text(json.dumps(manifest))
        start = time.perf_counter()
        evaluate_dataset(root / "dataset.json", {"A1": root / "preds"}, workers=1)
        return time.perf_counter() - start


if __name__ == "__main__":
    main()
