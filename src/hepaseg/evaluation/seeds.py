"""Several runs (seeds) of each of several algorithms, evaluated together: per-seed summaries, per-case
means over seeds, and detection by lesion size (the architecture ablation, ``pipeline.ablation``).

A run is an algorithm of an evaluation (e.g. ``2d-s1``); ``groups`` maps each group (a variant, e.g.
``2d``) to its runs. Metrics are the evaluation's per-case values (``Results.values``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .results import Results

SIZE_EDGES_ML = (0.0, 0.5, 5.0, np.inf)  # small (under ~10 mm across), medium, large lesions


def size_labels() -> list[str]:
    """``< 0.5 mL``, ``0.5-5 mL``, ``> 5 mL`` for ``SIZE_EDGES_ML``."""
    edges = SIZE_EDGES_ML
    inner = [f"{lo:g}-{hi:g} mL" for lo, hi in zip(edges[1:-2], edges[2:-1])]
    return [f"< {edges[1]:g} mL", *inner, f"> {edges[-2]:g} mL"]


def by_group(results: Results, groups: Mapping[str, Sequence[str]]) -> Results:
    """The runs' rows relabelled with their group: every ``Results.values`` of a group is then the
    per-case mean over its runs (of the finite values), and its correspondences are pooled over runs.

    Raises:
        ValueError: a run in ``groups`` that the evaluation does not hold.
    """
    group_of = {run: group for group, runs in groups.items() for run in runs}
    missing = sorted(set(group_of) - set(results.info.algorithms))
    if missing:
        raise ValueError(f"runs not in the evaluation: {', '.join(missing)}")

    def relabel(rows: tuple) -> tuple:
        return tuple(dataclasses.replace(r, algorithm=group_of.get(r.algorithm, r.algorithm)) for r in rows
                     if r.algorithm in group_of or r.algorithm not in results.info.algorithms)

    info = dataclasses.replace(results.info, algorithms=tuple(groups),
                               predictions={g: ", ".join(results.info.predictions[r] for r in runs)
                                            for g, runs in groups.items()})
    return Results(info, relabel(results.segmentation), relabel(results.scores), relabel(results.detection),
                   relabel(results.correspondences))


def seed_means(results: Results, runs: Sequence[str], table: str, field: str,
               rater: str | None) -> NDArray[np.float64]:
    """Per run, the mean over cases (of the finite per-case values) of one metric: shape (len(runs),)."""
    out = []
    for run in runs:
        values = results.values(table, field, run, rater)
        finite = values[np.isfinite(values)]
        out.append(float(finite.mean()) if finite.size else np.nan)
    return np.array(out, dtype=np.float64)


@dataclass(frozen=True)
class SizeBins:
    """Detection and lesion Dice per lesion-volume bin (``SIZE_EDGES_ML``), pooled over cases, raters
    and runs. Arrays have one entry per bin.

    ``references``: reference lesions; ``detected``: of them, in a matched correspondence. ``predicted``
    / ``matched``: predicted lesions, binned by their correspondence's predicted volume, and those
    matched. ``dice``: mean Dice of the reference correspondences (a missed lesion counts 0), binned by
    the reference volume. Recall, precision and F1 per bin follow (NaN where undefined).
    """

    references: NDArray[np.float64]
    detected: NDArray[np.float64]
    predicted: NDArray[np.float64]
    matched: NDArray[np.float64]
    dice: NDArray[np.float64]

    @property
    def recall(self) -> NDArray[np.float64]:
        return _ratio(self.detected, self.references)

    @property
    def precision(self) -> NDArray[np.float64]:
        return _ratio(self.matched, self.predicted)

    @property
    def f1(self) -> NDArray[np.float64]:
        r, p = self.recall, self.precision
        return _ratio(2 * r * p, r + p)


def _ratio(a: NDArray, b: NDArray) -> NDArray[np.float64]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.full(a.shape, np.nan), where=np.isfinite(b) & (b > 0))


def size_bins(results: Results, algorithm: str) -> SizeBins:
    """``SizeBins`` of one algorithm (or group, after ``by_group``) from its correspondences."""
    n = len(SIZE_EDGES_ML) - 1

    def binned(volumes: list[float], weights: list[float]) -> NDArray[np.float64]:
        bins = np.digitize(np.asarray(volumes, dtype=np.float64), SIZE_EDGES_ML[1:-1])
        return np.bincount(bins, weights=np.asarray(weights, dtype=np.float64), minlength=n).astype(np.float64)

    ref_volume, ref_hit, ref_dice, pred_volume, pred_count, pred_hit = [], [], [], [], [], []
    for row in results.correspondences:
        if row.algorithm != algorithm:
            continue
        if row.kind in ("tp", "fn"):
            total = float(sum(row.ref_volumes_ml))
            ref_volume.append(total)
            ref_hit.append(float(row.matched) * len(row.ref_volumes_ml))
            ref_dice.append(float(row.dice) if row.matched else 0.0)
        if row.kind in ("tp", "fp") and row.pred_ids:
            pred_volume.append(float(row.pred_volume_ml))
            pred_count.append(float(len(row.pred_ids)))
            pred_hit.append(float(len(row.pred_ids)) if row.matched else 0.0)
    ref_lesions = [float(len(r.ref_volumes_ml)) for r in results.correspondences
                   if r.algorithm == algorithm and r.kind in ("tp", "fn")]
    correspondences = binned(ref_volume, [1.0] * len(ref_volume))
    dice = _ratio(binned(ref_volume, ref_dice), correspondences)
    return SizeBins(binned(ref_volume, ref_lesions), binned(ref_volume, ref_hit), binned(pred_volume, pred_count),
                    binned(pred_volume, pred_hit), dice)
