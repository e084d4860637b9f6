"""The evaluation folder's contract: row types of its CSV files, ``evaluation.json``, write and read.

Files (UTF-8 CSV with a header row; NaN written as ``nan``, booleans as ``true`` / ``false``, id
and volume lists space-separated):

- ``segmentation.csv``: ``case,algorithm,rater,dice,assd_mm,hd95_mm``; inter-rater rows have
  ``algorithm=inter-rater`` and ``rater=R1-R2`` (each pair i < j).
- ``scores.csv``: ``case,algorithm,mean_dice,inter_rater_dice,phi``.
- ``detection.csv``: ``case,algorithm,rater,n_ref,n_pred,tp,fp,fn,recall,precision,f1,merges,splits``;
  inter-rater rows as above, the lower-index rater as reference.
- ``correspondences.csv``: ``case,algorithm,rater,kind,matched,ref_ids,pred_ids,dice,ref_volumes_ml,
  pred_volume_ml``, one row per correspondence (see ``evaluation.matching.Correspondence``): ``kind``
  ``tp`` (matched), ``fp`` (predicted lesions counted as false positives) or ``fn`` (a missed
  reference lesion). Every reference lesion is in exactly one ``tp`` or ``fn`` row, so recall by
  lesion size reads ``ref_volumes_ml`` (mL, aligned with ``ref_ids``) of those rows.
- ``evaluation.json``: ``RunInfo`` (manifest, split, raters, algorithms, prediction folders, cases,
  the evaluation configuration, the ``--label`` values).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import EvalConfig
from ..errors import InputError
from ..io.atomic import write_json, write_text

FORMAT_VERSION = 2  # of the folder's files; 2: assd_mm / hd95_mm columns, stats.csv per pair of algorithms
INTER_RATER = "inter-rater"  # the ``algorithm`` of rows comparing two raters
MEAN = "mean"  # the ``rater`` of a per-case mean over raters (stats.csv, Results.values)


def rater_pair(first: str, second: str) -> str:
    """The ``rater`` value of an inter-rater row, e.g. ``R1-R2``."""
    return f"{first}-{second}"


@dataclass(frozen=True)
class SegmentationRow:
    case: str
    algorithm: str
    rater: str
    dice: float
    assd_mm: float  # average symmetric surface distance (evaluation.surface)
    hd95_mm: float  # 95th-percentile Hausdorff distance


@dataclass(frozen=True)
class ScoreRow:
    case: str
    algorithm: str
    mean_dice: float
    inter_rater_dice: float
    phi: float


@dataclass(frozen=True)
class DetectionRow:
    case: str
    algorithm: str
    rater: str
    n_ref: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    recall: float
    precision: float
    f1: float
    merges: int
    splits: int


@dataclass(frozen=True)
class CorrespondenceRow:
    case: str
    algorithm: str
    rater: str
    kind: str
    matched: bool
    ref_ids: tuple[int, ...]
    pred_ids: tuple[int, ...]
    dice: float
    ref_volumes_ml: tuple[float, ...]
    pred_volume_ml: float


@dataclass(frozen=True)
class RunInfo:
    """What was evaluated: written as ``evaluation.json``."""

    manifest: str
    split: str
    raters: tuple[str, ...]
    algorithms: tuple[str, ...]
    predictions: dict[str, str]  # algorithm -> folder
    cases: tuple[str, ...]
    config: EvalConfig
    labels: dict[str, int] = dataclasses.field(default_factory=dict)  # algorithm -> tumour label value


@dataclass(frozen=True)
class Results:
    """Everything ``hepaseg evaluate`` computes per case, as rows of the CSV files."""

    info: RunInfo
    segmentation: tuple[SegmentationRow, ...]
    scores: tuple[ScoreRow, ...]
    detection: tuple[DetectionRow, ...]
    correspondences: tuple[CorrespondenceRow, ...]

    def values(self, table: str, field: str, algorithm: str, rater: str | None = None) -> NDArray[np.float64]:
        """Per-case values of one column, in case order (NaN where a case has no row).

        Args:
            table: ``segmentation``, ``scores`` or ``detection``.
            field: a numeric column, e.g. ``dice``, ``phi``, ``recall``, ``fp``.
            algorithm: an algorithm or ``inter-rater``.
            rater: a rater (or rater pair) name, or ``MEAN`` for the per-case mean over raters
                (over rater pairs for ``inter-rater``; NaN values left out); None for ``scores``.
        """
        per_case: dict[str, list[float]] = {c: [] for c in self.info.cases}
        for row in getattr(self, table):
            if row.algorithm == algorithm and (rater is None or rater in (MEAN, row.rater)):
                per_case[row.case].append(float(getattr(row, field)))
        out = np.full(len(per_case), np.nan)
        for i, values in enumerate(per_case.values()):
            finite = [v for v in values if not math.isnan(v)]
            if finite:
                out[i] = float(np.mean(finite))
        return out


FILES = {
    "segmentation": ("segmentation.csv", SegmentationRow),
    "scores": ("scores.csv", ScoreRow),
    "detection": ("detection.csv", DetectionRow),
    "correspondences": ("correspondences.csv", CorrespondenceRow),
}
INFO_FILE = "evaluation.json"
STATS_FILE = "stats.csv"  # the paired tests (``stats.PairedTest`` rows)


def write_results(results: Results, folder: str | Path) -> list[Path]:
    """Write the four CSV files and ``evaluation.json`` into ``folder`` (each atomically)."""
    out = Path(folder)
    written = []
    for attribute, (name, row_type) in FILES.items():
        written.append(out / name)
        write_text(out / name, to_csv(getattr(results, attribute), row_type))
    info = dataclasses.asdict(results.info)
    write_json(out / INFO_FILE, info)
    written.append(out / INFO_FILE)
    return written


def read_results(folder: str | Path) -> Results:
    """Read what ``write_results`` wrote.

    Raises:
        InputError: a file is missing or its header is not the expected one.
    """
    root = Path(folder)
    info_path = root / INFO_FILE
    if not info_path.is_file():
        raise InputError(root, f"no {INFO_FILE}; is this the output folder of 'hepaseg evaluate'?")
    try:
        data = json.loads(info_path.read_text(encoding="utf-8"))
        info = RunInfo(
            manifest=data["manifest"], split=data["split"], raters=tuple(data["raters"]),
            algorithms=tuple(data["algorithms"]), predictions=dict(data["predictions"]),
            cases=tuple(data["cases"]), config=EvalConfig(**data["config"]), labels=dict(data.get("labels", {})))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(info_path, f"unreadable: {exc}") from exc
    tables = {attribute: from_csv(root / name, row_type) for attribute, (name, row_type) in FILES.items()}
    return Results(info=info, **tables)


def to_csv(rows: typing.Iterable[Any], row_type: type) -> str:
    """CSV text with a header row of the dataclass's field names."""
    names = [f.name for f in dataclasses.fields(row_type)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_format(getattr(row, n)) for n in names])
    return buffer.getvalue()


def from_csv(path: Path, row_type: type, renamed: Mapping[str, str] | None = None) -> tuple[Any, ...]:
    """Rows of ``row_type`` from a CSV file written by ``to_csv``; ``renamed`` maps the column names
    an earlier version wrote to the fields' names."""
    if not path.is_file():
        raise InputError(path, "file not found")
    hints = typing.get_type_hints(row_type)
    names = [f.name for f in dataclasses.fields(row_type)]
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is not None and renamed:
            header = [renamed.get(column, column) for column in header]
        if header != names:
            raise InputError(path, f"unexpected header {header}; expected {','.join(names)}")
        try:
            return tuple(row_type(*(_parse(v, hints[n]) for v, n in zip(values, names))) for values in reader)
        except (ValueError, TypeError) as exc:
            raise InputError(path, f"bad value: {exc}") from exc


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, tuple):
        return " ".join(_format(v) for v in value)
    return str(value)


def _parse(text: str, hint: Any) -> Any:
    if hint is bool:
        if text not in ("true", "false"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text == "true"
    if hint is int or hint is float or hint is str:
        return hint(text)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return tuple(item(v) for v in text.split())
    raise TypeError(f"unsupported field type {hint}")  # pragma: no cover - a programming error
