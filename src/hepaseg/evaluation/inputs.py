"""What an evaluation reads: the manifest's raters, one prediction folder per algorithm, and how a
prediction file becomes a binary mask (``read_mask``: binary as it is, or one label of a
multi-class mask, e.g. ``--label nnUNet=2`` for nnU-Net's 0/1/2 output).

Everything here is checked before any case is evaluated; bad input raises ``InputError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..data.manifest import Case, load_manifest
from ..errors import InputError
from ..io.formats import WRITE_SUFFIXES
from ..io.volumes import Volume, read_volume
from .results import INTER_RATER

LABEL_OPTION = "--label"


@dataclass(frozen=True)
class EvaluationInputs:
    """What an evaluation reads: a split's cases (with every rater's mask) and each algorithm's file per case.

    Attributes:
        manifest: the resolved ``dataset.json``.
        split: the split evaluated.
        raters: the reference raters, in manifest order.
        cases: the split's cases, in manifest order.
        folders: algorithm -> prediction folder, in the order given.
        files: algorithm -> case id -> prediction file.
        labels: algorithm -> the label value that is tumour in its (multi-class) masks; algorithms
            without an entry have binary masks.
    """

    manifest: Path
    split: str
    raters: tuple[str, ...]
    cases: tuple[Case, ...]
    folders: dict[str, Path]
    files: dict[str, dict[str, Path]]
    labels: dict[str, int] = field(default_factory=dict)

    def case(self, case_id: str) -> Case:
        return next(c for c in self.cases if c.id == case_id)


def find_inputs(manifest: str | Path, predictions: Mapping[str, str | Path], split: str = "test",
                labels: Mapping[str, int] | None = None) -> EvaluationInputs:
    """Check the manifest and locate every prediction file of a split; no image is opened.

    Args:
        manifest: the dataset's ``dataset.json``; its raters' masks are the references.
        predictions: algorithm name -> folder holding ``<case id>.nii.gz`` (or ``.nii``, ``.nrrd``,
            ``.mha``) for every case of the split.
        split: which cases (default ``test``).
        labels: algorithm name -> label value (>= 1) to take as tumour from its masks.

    Raises:
        InputError: bad manifest, an empty split, no raters, a case without every rater's mask,
            a label for an algorithm not in ``predictions`` or below 1, or a missing prediction
            (all missing ids in one line).
    """
    labels = dict(labels or {})
    for algorithm, value in labels.items():
        if algorithm not in predictions:
            raise InputError(LABEL_OPTION, f"no --pred named {algorithm!r} (algorithms: {', '.join(predictions)})")
        if value < 1:
            raise InputError(LABEL_OPTION, f"label of {algorithm} must be 1 or more (0 is background), got {value}")
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
                            {a: Path(p).resolve() for a, p in predictions.items()}, files, labels)


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


def read_mask(path: Path, label: int | None = None) -> tuple[Volume, NDArray]:
    """Read a mask file as ``(volume, values)``; ``volume.array`` is the tumour mask.

    Args:
        path: a mask file.
        label: None: the file must hold 0 and 1 only (it is the mask). A value: the file's voxels
            equal to it are the mask (bool), any other value is background.

    Returns:
        The volume (with the file's geometry) and the distinct values found in the file (with a
        label only; otherwise an empty array).

    Raises:
        InputError: without ``label``, a value other than 0 and 1.
    """
    volume = read_volume(path)
    array = np.asarray(volume.array)
    if label is not None:
        return Volume(array == label, volume.affine, volume.source), np.unique(array)
    if array.dtype != np.bool_ and np.any((array != 0) & (array != 1)):
        raise InputError(path, "not a binary mask: values other than 0 and 1 (threshold it first, or pick "
                               "one label of a multi-class mask with --label NAME=L)")
    return volume, np.empty(0)
