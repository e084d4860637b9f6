"""The tiny evaluation dataset on disk (not a test module): four test cases and one training case,
three raters, and two algorithms' predictions (A1 closer to the raters than A2, which also adds a
lesion). ``conftest.tiny_evaluation`` evaluates and reports it once per session."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from hepaseg.io.volumes import read_volume, write_volume

SHAPE = (24, 20, 6)
AFFINE = np.array([[1.5, 0, 0, -20.0], [0, 1.5, 0, -15.0], [0, 0, 4.0, 10.0], [0, 0, 0, 1]])
RATERS = ("R1", "R2", "R3")
TEST_CASES = ("c01", "c02", "c03", "c04")


def _blobs(rng: np.random.Generator, centres, jitter: int) -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=bool)
    for c in centres:
        lo = np.clip(np.asarray(c) + rng.integers(-jitter, jitter + 1, 3), 0, np.array(SHAPE) - 3)
        size = rng.integers(2, 5, 3)
        mask[lo[0]:lo[0] + size[0], lo[1]:lo[1] + size[1], lo[2]:lo[2] + max(size[2] // 2, 1)] = True
    return mask


def make_dataset(root: Path) -> Path:
    """Write the cases, the predictions (``root/preds/a1``, ``root/preds/a2``) and the manifest; return it."""
    rng = np.random.default_rng(42)
    cases = []
    for case_id in (*TEST_CASES, "t01"):
        folder = root / case_id
        centres = [rng.integers((2, 2, 0), (18, 14, 4)) for _ in range(rng.integers(1, 4))]
        image = rng.normal(100, 10, SHAPE).astype(np.float32)
        liver = np.zeros(SHAPE, dtype=np.uint8)
        liver[1:-1, 1:-1, :] = 1
        write_volume(image, AFFINE, folder / "image.nii.gz")
        write_volume(liver, AFFINE, folder / "liver.nii.gz")
        tumor = {}
        for rater in RATERS:
            write_volume(_blobs(rng, centres, 1).astype(np.uint8), AFFINE, folder / f"{rater}.nii.gz")
            tumor[rater] = f"{case_id}/{rater}.nii.gz"
        for algorithm, jitter in (("a1", 1), ("a2", 2)):
            extra = [rng.integers((2, 2, 0), (18, 14, 4))] if algorithm == "a2" else []
            write_volume(_blobs(rng, centres + extra, jitter).astype(np.uint8), AFFINE,
                         root / "preds" / algorithm / f"{case_id}.nii.gz")
        cases.append({"id": case_id, "split": "train" if case_id == "t01" else "test",
                      "image": f"{case_id}/image.nii.gz", "liver": f"{case_id}/liver.nii.gz", "tumor": tumor})
    manifest = root / "dataset.json"
    manifest.write_text(json.dumps({"name": "tiny", "raters": list(RATERS), "cases": cases}))
    return manifest


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a CSV file, read with the csv module."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def masks(root: Path, case_id: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(rater masks, algorithm masks) of one case, read back from disk as booleans."""
    refs = {r: read_volume(root / case_id / f"{r}.nii.gz").array > 0 for r in RATERS}
    preds = {a: read_volume(root / "preds" / a.lower() / f"{case_id}.nii.gz").array > 0 for a in ("A1", "A2")}
    return refs, preds
