"""Evaluate the predictions of several algorithms against several raters (METHOD.md section 8).

``evaluate_case`` is the pure computation for one case (arrays in, rows out); ``find_inputs``
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
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..config import EvalConfig
from ..data.manifest import Case, load_manifest
from ..errors import InputError
from ..io.formats import WRITE_SUFFIXES
from ..io.geometry import require_same_grid, voxel_volume_ml
from ..io.volumes import Volume, read_volume
from .matching import Detection, label, match_lesions, scan_order
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


@dataclass(frozen=True)
class CaseRows:
    """The rows one case contributes to each CSV file."""

    segmentation: tuple[SegmentationRow, ...]
    scores: tuple[ScoreRow, ...]
    detection: tuple[DetectionRow, ...]
    correspondences: tuple[CorrespondenceRow, ...]


def evaluate_case(case_id: str, references: Mapping[str, NDArray], predictions: Mapping[str, NDArray],
                  voxel_ml: float, config: EvalConfig = EvalConfig()) -> CaseRows:
    """Dice, phi and lesion detection of every algorithm against every rater, and between raters.

    Args:
        case_id: written into every row.
        references: rater name -> (i, j, k) mask (non-zero is tumour), in rater order.
        predictions: algorithm name -> mask of the same shape, in algorithm order.
        voxel_ml: volume of one voxel in mL (lesion volumes in the lesion rows).
        config: phi alpha, detection threshold, connectivity.

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
    labelled = {}
    for key, mask in zip(names, foreground):
        labels, n = label(mask, config.connectivity)
        labelled[key] = (scan_order(labels)[voxels], n)
    return _case_rows(case_id, list(references), list(predictions), labelled, voxel_ml, config)


def _case_rows(case_id: str, raters: list[str], algorithms: list[str],
               labelled: dict[tuple[str, str], tuple[NDArray, int]], voxel_ml: float,
               config: EvalConfig) -> CaseRows:
    seg, scores, det, correspondences = [], [], [], []

    def compare(ref_key, pred_key, algorithm: str, rater: str) -> float:
        (ref, n_ref), (pred, n_pred) = labelled[ref_key], labelled[pred_key]
        ref_fg, pred_fg = ref != 0, pred != 0
        d = dice_from_counts(int(np.count_nonzero(ref_fg & pred_fg)), int(np.count_nonzero(ref_fg)),
                             int(np.count_nonzero(pred_fg)))
        seg.append(SegmentationRow(case_id, algorithm, rater, d))
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
    config: EvalConfig


@dataclass(frozen=True)
class _Failure:
    """An InputError raised in a worker process, carried back as a value."""

    path: str | None
    message: str


@dataclass(frozen=True)
class EvaluationInputs:
    """What an evaluation reads: a split's cases (with every rater's mask) and each algorithm's file per case.

    Attributes:
        manifest: the resolved ``dataset.json``.
        split: the split evaluated.
        raters: the reference raters, in manifest order.
        cases: the split's cases, in manifest order.
        folders: algorithm -> prediction folder, in the order given (the first two are compared).
        files: algorithm -> case id -> prediction file.
    """

    manifest: Path
    split: str
    raters: tuple[str, ...]
    cases: tuple[Case, ...]
    folders: dict[str, Path]
    files: dict[str, dict[str, Path]]

    def case(self, case_id: str) -> Case:
        return next(c for c in self.cases if c.id == case_id)


def find_inputs(manifest: str | Path, predictions: Mapping[str, str | Path], split: str = "test") -> EvaluationInputs:
    """Check the manifest and locate every prediction file of a split; no image is opened.

    Args:
        manifest: the dataset's ``dataset.json``; its raters' masks are the references.
        predictions: algorithm name -> folder holding ``<case id>.nii.gz`` (or ``.nii``, ``.nrrd``,
            ``.mha``) for every case of the split.
        split: which cases (default ``test``).

    Raises:
        InputError: bad manifest, an empty split, no raters, a case without every rater's mask, or
            a missing prediction (all missing ids in one line).
    """
    dataset = load_manifest(manifest)
    cases = dataset.split(split)
    if not cases:
        raise InputError(manifest, f"split {split!r} has no cases")
    if not dataset.raters:
        raise InputError(manifest, "no raters: evaluation needs reference masks")
    lacking = [f"{c.id} ({', '.join(r for r in dataset.raters if r not in c.tumor)})"
               for c in cases if any(r not in c.tumor for r in dataset.raters)]
    if lacking:
        raise InputError(manifest, f"cases without every rater's mask: {', '.join(lacking)}")
    files = find_predictions(predictions, [c.id for c in cases])
    return EvaluationInputs(Path(manifest).resolve(), split, dataset.raters, cases,
                            {a: Path(p).resolve() for a, p in predictions.items()}, files)


def evaluate_inputs(inputs: EvaluationInputs, config: EvalConfig = EvalConfig(),
                    workers: int | None = None) -> Results:
    """Evaluate every case of ``inputs`` in parallel processes; nothing is written.

    Args:
        workers: parallel processes (default: one per CPU core, at most one per case).

    Raises:
        InputError: a mask that is not binary, or a prediction whose grid differs from the reference.
    """
    jobs = [_Job(c, inputs.raters, {a: inputs.files[a][c.id] for a in inputs.folders}, config) for c in inputs.cases]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(_run_job, jobs))
    else:
        outcomes = [_run_job(job) for job in jobs]
    for outcome in outcomes:
        if isinstance(outcome, _Failure):
            raise InputError(outcome.path, outcome.message)
    info = RunInfo(manifest=str(inputs.manifest), split=inputs.split, raters=inputs.raters,
                   algorithms=tuple(inputs.folders), cases=tuple(c.id for c in inputs.cases), config=config,
                   predictions={a: str(p) for a, p in inputs.folders.items()})
    return Results(info=info,
                   segmentation=tuple(r for o in outcomes for r in o.segmentation),
                   scores=tuple(r for o in outcomes for r in o.scores),
                   detection=tuple(r for o in outcomes for r in o.detection),
                   correspondences=tuple(r for o in outcomes for r in o.correspondences))


def evaluate_dataset(manifest: str | Path, predictions: Mapping[str, str | Path], split: str = "test",
                     config: EvalConfig = EvalConfig(), workers: int | None = None) -> Results:
    """``find_inputs`` then ``evaluate_inputs``: every case of a split; nothing is written.

    Raises:
        InputError: see ``find_inputs`` and ``evaluate_inputs``.
    """
    return evaluate_inputs(find_inputs(manifest, predictions, split), config, workers)


def find_predictions(predictions: Mapping[str, str | Path], case_ids: list[str]) -> dict[str, dict[str, Path]]:
    """Locate ``<folder>/<case id><suffix>`` for every algorithm and case.

    Raises:
        InputError: a bad algorithm name, a missing folder, a case with two prediction files, or
            missing predictions (every missing case id of every algorithm, in one line).
    """
    if not predictions:
        raise InputError(None, "no predictions given (use --pred NAME=DIR)")
    found: dict[str, dict[str, Path]] = {}
    missing = []
    for algorithm, folder in predictions.items():
        if not algorithm or algorithm == INTER_RATER:
            raise InputError(folder, f"invalid algorithm name {algorithm!r}")
        root = Path(folder)
        if not root.is_dir():
            raise InputError(root, "prediction folder not found")
        found[algorithm] = {}
        absent = []
        for case_id in case_ids:
            hits = [root / f"{case_id}{s}" for s in WRITE_SUFFIXES if (root / f"{case_id}{s}").is_file()]
            if len(hits) > 1:
                raise InputError(root, f"case {case_id} has several predictions: {', '.join(h.name for h in hits)}")
            if hits:
                found[algorithm][case_id] = hits[0]
            else:
                absent.append(case_id)
        if absent:
            missing.append((algorithm, root, absent))
    if len(missing) == 1:
        algorithm, root, absent = missing[0]
        raise InputError(root, f"no prediction of {algorithm} for {len(absent)} of {len(case_ids)} cases: "
                               f"{', '.join(absent)}")
    if missing:
        raise InputError(None, "missing predictions: " + "; ".join(
            f"{a} ({root}): {', '.join(absent)}" for a, root, absent in missing))
    return found


def _run_job(job: _Job) -> CaseRows | _Failure:
    try:
        references = {r: _read_mask(job.case.tumor[r]) for r in job.raters}
        preds = {a: _read_mask(p) for a, p in job.predictions.items()}
        grid = references[job.raters[0]]
        for volume in [*references.values(), *preds.values()]:
            require_same_grid(grid, volume, "the reference mask")
        voxel_ml = voxel_volume_ml(grid.affine)
        return evaluate_case(job.case.id, {r: v.array for r, v in references.items()},
                             {a: v.array for a, v in preds.items()}, voxel_ml, job.config)
    except InputError as exc:
        return _Failure(exc.path, exc.message)


def _read_mask(path: Path) -> Volume:
    """Read a mask and require values 0 and 1 only."""
    volume = read_volume(path)
    array = np.asarray(volume.array)
    if array.dtype != np.bool_ and np.any((array != 0) & (array != 1)):
        raise InputError(path, "not a binary mask: values other than 0 and 1 (threshold it first)")
    return volume
