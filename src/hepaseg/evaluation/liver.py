"""Predicted liver masks against the given ones (the study's liver stage): per case Dice, mean
(average symmetric) surface distance, HD95 and both volumes, on the image's own grid.

Files: ``liver.csv`` (one ``LiverScore`` row per case, manifest order) in the evaluation folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.manifest import load_manifest
from ..errors import InputError
from ..io.atomic import write_text
from ..io.formats import WRITE_SUFFIXES
from ..io.geometry import on_grid, voxel_volume_ml
from ..io.volumes import read_volume
from .inputs import read_mask
from .metrics import dice
from .results import to_csv
from .surface import assd_hd95

LIVER_FILE = "liver.csv"


@dataclass(frozen=True)
class LiverScore:
    """One case: the predicted liver against the manifest's. Distances in mm, volumes in mL."""

    case: str
    dice: float
    assd_mm: float
    hd95_mm: float
    predicted_ml: float
    given_ml: float


def score_livers(manifest: str | Path, predicted: str | Path, split: str = "test") -> list[LiverScore]:
    """Score ``<predicted>/<case id>.<suffix>`` against each case's manifest liver mask; a case without
    a predicted liver (the liver model found none that was plausible) gets NaN scores.

    Raises:
        InputError: an empty split, a mask off the image's grid.
    """
    dataset = load_manifest(manifest)
    cases = dataset.split(split)
    if not cases:
        raise InputError(manifest, f"split {split!r} has no cases")
    rows = []
    for case in cases:
        image = case.read_image()
        given = np.asarray(on_grid(image, read_volume(case.liver)).array) > 0
        ml = voxel_volume_ml(image.affine)
        found = [p for s in WRITE_SUFFIXES if (p := Path(predicted) / f"{case.id}{s}").is_file()]
        if not found:
            rows.append(LiverScore(case.id, math.nan, math.nan, math.nan, math.nan, float(given.sum()) * ml))
            continue
        mask = np.asarray(on_grid(image, read_mask(found[0])[0]).array) > 0
        assd, hd95 = assd_hd95(mask, given, image.spacing)
        rows.append(LiverScore(case.id, dice(mask, given), assd, hd95, float(mask.sum()) * ml, float(given.sum()) * ml))
    return rows


def write_liver_scores(rows: list[LiverScore], folder: str | Path) -> Path:
    """Write ``liver.csv`` into ``folder`` atomically; returns its path."""
    path = Path(folder) / LIVER_FILE
    write_text(path, to_csv(rows, LiverScore))
    return path
