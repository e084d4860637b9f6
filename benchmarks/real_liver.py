"""The liver model on real MRI: per-case Dice, ASSD and seconds on a folder of real cases; prints JSON.

``DIR`` holds one folder per case with ``image.nii.gz`` and ``liver.nii.gz`` (as ``../shared/real-mr/``,
a development set that is never trained on). Each image is segmented by ``inference.liver.predict_liver``
with ``--model`` (default: the liver model shipped in the package) and scored against its liver mask.
``problem`` is ``liver_problem``'s verdict on the predicted mask (None: plausible). ``errors`` says
where the errors lie (``error_sites``): the share of the true liver missed, the extra voxels as a
share of the true liver's volume, and the share of those extra voxels on the liver's top three
slices or above them (heart, lung bases) and on its bottom three or below (bowel, kidney), and the share
of the missed voxels on the top three slices and to the patient's left of the true liver's median
plane (its left lobe).

Usage:
    .venv/bin/python benchmarks/real_liver.py ../shared/real-mr --threads 2
    .venv/bin/python benchmarks/real_liver.py ../shared/real-mr --model demo/study/liver/model
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch


def _profile(voxels: np.ndarray, affine: np.ndarray, row: int) -> np.ndarray:
    """Counts of ``voxels`` (bool) per slice along the patient's RAS+ axis ``row`` (0: x to the right,
    2: z up), in its direction: the array axis nearest it by nibabel's ``io_orientation``."""
    from nibabel.orientations import io_orientation

    orientation = io_orientation(np.asarray(affine, dtype=np.float64))
    axis = int(np.flatnonzero(orientation[:, 0] == row)[0])
    counts = voxels.sum(axis=tuple(a for a in range(3) if a != axis))
    return counts[::-1] if orientation[axis, 1] < 0 else counts


def error_sites(mask: np.ndarray, given: np.ndarray, affine: np.ndarray, band: int = 3) -> dict:
    """Missed and extra voxels of ``mask`` against ``given`` (bool, same grid, ``affine`` voxel -> RAS+ mm):
    where along the patient's z axis the extra ones lie (``band`` slices at the dome and the tip), and
    which share of the missed ones lies at the dome or left of the true liver's median plane (its left lobe)."""
    truth = max(int(given.sum()), 1)
    missed, extra = given & ~mask, mask & ~given
    present = np.flatnonzero(_profile(given, affine, 2))
    level_extra, level_missed = _profile(extra, affine, 2), _profile(missed, affine, 2)
    level = np.arange(len(level_extra))
    across = _profile(given, affine, 0)  # liver voxels per sagittal slice, from the patient's left to the right
    median_plane = np.searchsorted(np.cumsum(across), across.sum() / 2)
    extras, misses = max(int(extra.sum()), 1), max(int(missed.sum()), 1)
    return {"missed": round(float(missed.sum()) / truth, 3),
            "extra": round(float(extra.sum()) / truth, 3),
            "extra_at_dome": round(float(level_extra[level > present[-1] - band].sum()) / extras, 3),
            "extra_at_tip": round(float(level_extra[level < present[0] + band].sum()) / extras, 3),
            "missed_at_dome": round(float(level_missed[level > present[-1] - band].sum()) / misses, 3),
            "missed_left": round(float(_profile(missed, affine, 0)[:median_plane].sum()) / misses, 3)}


def score(folder: Path, model_dir: str | None, device: str) -> dict:
    from hepaseg.evaluation.metrics import dice
    from hepaseg.evaluation.surface import assd_hd95
    from hepaseg.inference.liver import liver_problem, predict_liver
    from hepaseg.inference.predictor import Predictor
    from hepaseg.io.volumes import read_volume

    model = Predictor.load_liver(model_dir, device)
    rows = []
    for case in sorted(p for p in folder.iterdir() if (p / "image.nii.gz").is_file()):
        image = read_volume(case / "image.nii.gz")
        given = np.asarray(read_volume(case / "liver.nii.gz").array) > 0
        started = time.perf_counter()
        mask = predict_liver(model, image)
        seconds = time.perf_counter() - started
        assd, _ = assd_hd95(mask, given, image.spacing) if mask.any() else (float("nan"), None)
        rows.append({"case": case.name, "shape": list(image.shape), "dice": round(dice(mask, given), 4),
                     "assd_mm": round(float(assd), 2), "seconds": round(seconds, 2),
                     "problem": liver_problem(mask, image.affine),
                     "errors": error_sites(mask, given, np.asarray(image.affine))})
    dices = [r["dice"] for r in rows]
    return {"folder": str(folder), "model": model_dir or "shipped", "cases": len(rows),
            "dice_mean": round(float(np.mean(dices)), 4), "dice_min": min(dices),
            "assd_mm_mean": round(float(np.nanmean([r["assd_mm"] for r in rows])), 2),
            "seconds_mean": round(float(np.mean([r["seconds"] for r in rows])), 2), "per_case": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of case folders (image.nii.gz, liver.nii.gz)")
    parser.add_argument("--model", default=None, help="a liver model folder (default: the shipped one)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = score(args.folder, args.model, args.device)
    result["machine"] = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                         "torch": torch.__version__}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
