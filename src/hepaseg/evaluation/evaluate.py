"""Evaluate the predictions of several algorithms against several raters (METHOD.md section 8).

``evaluate_case`` is the pure computation for one case (arrays in, rows out); ``inputs.find_inputs``
finds the files (manifest + one prediction folder per algorithm) and checks them;
``evaluate_inputs`` evaluates the cases of a split in parallel processes. Writing the evaluation
folder is ``hepaseg.pipeline.evaluation.write_evaluation``.

Per case, every mask (raters and algorithms) is labelled once; all Dice values and lesion
correspondences are then computed on the voxels that are foreground in any mask, so the work after
labelling scales with the tumour volume, not with the image.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..config import EvalConfig
from ..data.manifest import Case
from ..errors import InputError
from ..io.geometry import on_grid, voxel_volume_ml
from .inputs import EvaluationInputs, find_inputs, read_mask
from ..data.components import label, scan_order
from .matching import Detection, match_lesions
from .metrics import dice_from_counts, phi
from .results import (
    INTER_RATER,
    CorrespondenceRow,
    DetectionRow,
    Results,
    RunInfo,
    ScoreRow,
    SegmentationRow,
    rater_pair,
)
from .surface import Surface, surface_distances


@dataclass(frozen=True)
class CaseRows:
    """The rows one case contributes to each CSV file."""

    segmentation: tuple[SegmentationRow, ...]
    scores: tuple[ScoreRow, ...]
    detection: tuple[DetectionRow, ...]
    correspondences: tuple[CorrespondenceRow, ...]


def evaluate_case(case_id: str, references: Mapping[str, NDArray], predictions: Mapping[str, NDArray],
                  voxel_ml: float, config: EvalConfig = EvalConfig(), *,
                  spacing: Sequence[float]) -> CaseRows:
    """Dice, surface distances, phi and lesion detection of every algorithm against every rater, and
    between raters.

    Args:
        case_id: written into every row.
        references: rater name -> (i, j, k) mask (non-zero is tumour), in rater order.
        predictions: algorithm name -> mask of the same shape, in algorithm order.
        voxel_ml: volume of one voxel in mL (lesion volumes in the lesion rows).
        config: phi alpha, detection threshold, connectivity.
        spacing: voxel size in mm along (i, j, k) (surface distances).

    Raises:
        ValueError: the masks differ in shape.
    """
    names = [("ref", r) for r in references] + [("pred", a) for a in predictions]
    arrays = [np.asarray(references[n] if kind == "ref" else predictions[n]) for kind, n in names]
    if len({a.shape for a in arrays}) > 1:
        raise ValueError(f"mask shapes differ: {sorted({a.shape for a in arrays})}")
    foreground = [np.asfortranarray(a if a.dtype == np.bool_ else a != 0) for a in arrays]
    union = np.zeros(arrays[0].size, dtype=bool)
    for mask in foreground:
        union |= scan_order(mask)
    voxels = np.flatnonzero(union)
    labelled, surfaces = {}, {}
    for key, mask in zip(names, foreground):
        labels, n = label(mask, config.connectivity)
        labelled[key] = (scan_order(labels)[voxels], n)
        surfaces[key] = Surface.of(mask, spacing, voxels[labelled[key][0] != 0])
    return _case_rows(case_id, list(references), list(predictions), labelled, surfaces, voxel_ml, config)


def _case_rows(case_id: str, raters: list[str], algorithms: list[str],
               labelled: dict[tuple[str, str], tuple[NDArray, int]], surfaces: dict[tuple[str, str], Surface],
               voxel_ml: float, config: EvalConfig) -> CaseRows:
    seg, scores, det, correspondences = [], [], [], []

    def compare(ref_key, pred_key, algorithm: str, rater: str) -> float:
        (ref, n_ref), (pred, n_pred) = labelled[ref_key], labelled[pred_key]
        ref_fg, pred_fg = ref != 0, pred != 0
        d = dice_from_counts(int(np.count_nonzero(ref_fg & pred_fg)), int(np.count_nonzero(ref_fg)),
                             int(np.count_nonzero(pred_fg)))
        assd, hd95 = surface_distances(surfaces[ref_key], surfaces[pred_key])
        seg.append(SegmentationRow(case_id, algorithm, rater, d, assd, hd95))
        detection = match_lesions(ref, pred, n_ref, n_pred, config.detection_dice_threshold)
        det.append(_detection_row(case_id, algorithm, rater, detection))
        correspondences.extend(_correspondence_rows(case_id, algorithm, rater, detection, voxel_ml))
        return d

    # rows in file order: each algorithm against every rater, then the rater pairs
    pairs = list(itertools.combinations(raters, 2))
    by_algorithm = {a: [compare(("ref", r), ("pred", a), a, r) for r in raters] for a in algorithms}
    inter = [compare(("ref", r1), ("ref", r2), INTER_RATER, rater_pair(r1, r2)) for r1, r2 in pairs]
    inter_mean = float(np.mean(inter)) if inter else math.nan
    for algorithm in algorithms:
        mean_dice = float(np.mean(by_algorithm[algorithm]))
        scores.append(ScoreRow(case_id, algorithm, mean_dice, inter_mean,
                               phi(mean_dice, inter_mean, config.phi_alpha)))
    return CaseRows(tuple(seg), tuple(scores), tuple(det), tuple(correspondences))


def _detection_row(case_id: str, algorithm: str, rater: str, d: Detection) -> DetectionRow:
    return DetectionRow(case_id, algorithm, rater, d.n_ref, d.n_pred, d.tp, d.fp, d.fn, d.recall,
                        d.precision, d.f1, d.merges, d.splits)


def _correspondence_rows(case_id: str, algorithm: str, rater: str, d: Detection, voxel_ml: float) -> list[CorrespondenceRow]:
    return [
        CorrespondenceRow(case_id, algorithm, rater, c.kind, c.matched, c.ref_ids, c.pred_ids, c.dice,
                  tuple(v * voxel_ml for v in c.ref_voxels), c.pred_voxels * voxel_ml)
        for c in d.correspondences
    ]


# --- files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    case: Case
    raters: tuple[str, ...]
    predictions: dict[str, Path]
    labels: dict[str, int]
    config: EvalConfig


@dataclass(frozen=True)
class _Outcome:
    """One case's rows, and the distinct values of each labelled algorithm's mask file."""

    rows: CaseRows
    values: dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class _Failure:
    """An InputError raised in a worker process, carried back as a value."""

    path: str | None
    message: str


def evaluate_inputs(inputs: EvaluationInputs, config: EvalConfig = EvalConfig(),
                    workers: int | None = None) -> Results:
    """Evaluate every case of ``inputs`` in parallel processes; nothing is written.

    Args:
        workers: parallel processes (default: one per CPU core, at most one per case).

    Raises:
        InputError: a mask that is not binary (without a label), a label that occurs in none of an
            algorithm's masks, or a mask whose grid differs from the case's image (a mask on the
            image's grid in another axis order is reordered onto it: ``io.geometry.on_grid``).
    """
    jobs = [_Job(c, inputs.raters, {a: inputs.files[a][c.id] for a in inputs.folders}, inputs.labels, config)
            for c in inputs.cases]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(_run_job, jobs))
    else:
        outcomes = [_run_job(job) for job in jobs]
    for outcome in outcomes:
        if isinstance(outcome, _Failure):
            raise InputError(outcome.path, outcome.message)
    for algorithm, value in inputs.labels.items():
        found = sorted({v for o in outcomes for v in o.values[algorithm]})
        if value not in found:
            raise InputError(inputs.folders[algorithm], f"label {value} of {algorithm} occurs in none of its "
                                                        f"masks (values found: {', '.join(map(str, found))})")
    rows = [o.rows for o in outcomes]
    info = RunInfo(manifest=str(inputs.manifest), split=inputs.split, raters=inputs.raters,
                   algorithms=tuple(inputs.folders), cases=tuple(c.id for c in inputs.cases), config=config,
                   predictions={a: str(p) for a, p in inputs.folders.items()}, labels=dict(inputs.labels))
    return Results(info=info,
                   segmentation=tuple(r for o in rows for r in o.segmentation),
                   scores=tuple(r for o in rows for r in o.scores),
                   detection=tuple(r for o in rows for r in o.detection),
                   correspondences=tuple(r for o in rows for r in o.correspondences))


def evaluate_dataset(manifest: str | Path, predictions: Mapping[str, str | Path], split: str = "test",
                     config: EvalConfig = EvalConfig(), workers: int | None = None,
                     labels: Mapping[str, int] | None = None) -> Results:
    """``find_inputs`` then ``evaluate_inputs``: every case of a split; nothing is written.

    Raises:
        InputError: see ``evaluation.inputs.find_inputs`` and ``evaluate_inputs``.
    """
    return evaluate_inputs(find_inputs(manifest, predictions, split, labels), config, workers)


def _run_job(job: _Job) -> _Outcome | _Failure:
    try:
        references = {r: read_mask(job.case.tumor[r])[0] for r in job.raters}
        preds, values = {}, {}
        for algorithm, path in job.predictions.items():
            preds[algorithm], found = read_mask(path, job.labels.get(algorithm))
            if algorithm in job.labels:
                values[algorithm] = tuple(int(v) for v in found)
        grid = job.case.read_image()  # every mask in the image's voxel order, reordered if need be
        references = {r: on_grid(grid, v) for r, v in references.items()}
        preds = {a: on_grid(grid, v) for a, v in preds.items()}
        rows = evaluate_case(job.case.id, {r: v.array for r, v in references.items()},
                             {a: v.array for a, v in preds.items()}, voxel_volume_ml(grid.affine), job.config,
                             spacing=tuple(float(s) for s in grid.spacing))
        return _Outcome(rows, values)
    except InputError as exc:
        return _Failure(exc.path, exc.message)
