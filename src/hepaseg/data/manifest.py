"""The dataset manifest (``dataset.json``): load it, resolve its paths, and check every file.

Format::

    {"name": "...", "raters": ["R1", "R2", "R3"],
     "cases": [{"id": "case000", "split": "train", "image": "case000/image.nii.gz",
                "liver": "case000/liver.nii.gz", "tumor": {"R1": "case000/tumor_R1.nii.gz"}}]}

Paths are relative to the manifest's folder (absolute paths are allowed). ``image`` is a NIfTI,
NRRD or MHA file or a folder of DICOM files; an optional ``"series": "<Series Instance UID>"``
chooses one series of a folder holding several. Masks are files on the image's grid, possibly in
another axis order (``io.geometry.align_grid``: reordered exactly on reading, a note in the check).
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.geometry import align_grid
from ..io.volumes import Volume, read_volume

SPLITS = ("train", "val", "test", "unlabeled")
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Case:
    """One case: an image, its liver mask and tumour masks by rater (absolute paths), and the
    Series Instance UID to read from a DICOM folder holding several series (else None)."""

    id: str
    split: str
    image: Path
    liver: Path
    tumor: dict[str, Path] = field(default_factory=dict)
    series: str | None = None

    def read_image(self) -> Volume:
        """The case's image (its chosen series for a DICOM folder); InputError as ``read_volume``."""
        return read_volume(self.image, self.series)


@dataclass(frozen=True)
class Dataset:
    """A loaded manifest. ``root`` is the manifest's folder."""

    name: str
    raters: tuple[str, ...]
    cases: tuple[Case, ...]
    root: Path

    def split(self, name: str) -> tuple[Case, ...]:
        """The cases of one split, in manifest order."""
        return tuple(c for c in self.cases if c.split == name)

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(case_id)


@dataclass(frozen=True)
class Problem:
    """One finding of ``check_dataset``: severity ``error``, ``warning`` or ``note`` (for information)."""

    severity: str
    where: str  # the file (or manifest) concerned
    message: str

    def format(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


@dataclass(frozen=True)
class CheckReport:
    manifest: Path
    n_cases: int
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def notes(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "note")

    def summary(self) -> str:
        verdict = "FAILED" if self.errors else "OK"
        notes = f", {len(self.notes)} notes" if self.notes else ""
        return (f"{self.manifest}: {self.n_cases} cases, {len(self.errors)} errors, "
                f"{len(self.warnings)} warnings{notes}: {verdict}")


def load_manifest(path: str | Path) -> Dataset:
    """Load and structurally validate a manifest; files are not opened.

    Raises:
        InputError: the manifest is missing, not JSON, or structurally wrong (first problem named).
    """
    dataset, problems = _parse(Path(path))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more; run 'hepaseg check')" if len(errors) > 1 else ""
        raise InputError(errors[0].where, errors[0].message + more)
    assert dataset is not None
    return dataset


def check_dataset(path: str | Path, workers: int = 2) -> CheckReport:
    """Check a manifest and every file it names; report every problem, not just the first."""
    manifest = Path(path)
    dataset, problems = _parse(manifest)
    if dataset is None:
        return CheckReport(manifest, 0, tuple(problems))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for case_problems in pool.map(_check_case_files, dataset.cases):
            problems.extend(case_problems)
    return CheckReport(manifest, len(dataset.cases), tuple(problems))


def _parse(manifest: Path) -> tuple[Dataset | None, list[Problem]]:
    """Structural parse; returns the dataset (None if unusable) and the problems found."""
    where = str(manifest)
    if not manifest.is_file():
        return None, [Problem("error", where, "manifest not found")]
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [Problem("error", where, f"not valid JSON: {exc}")]
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        return None, [Problem("error", where, "expected an object with a 'cases' list")]
    problems: list[Problem] = []
    raters = data.get("raters", [])
    if not isinstance(raters, list) or not all(isinstance(r, str) for r in raters):
        problems.append(Problem("error", where, "'raters' must be a list of names"))
        raters = []
    root = manifest.resolve().parent
    cases, seen = [], set()
    for index, entry in enumerate(data["cases"]):
        case = _parse_case(entry, index, root, set(raters), where, problems)
        if case is None:
            continue
        if case.id in seen:
            problems.append(Problem("error", where, f"duplicate case id {case.id!r}"))
        seen.add(case.id)
        cases.append(case)
    name = str(data.get("name", manifest.parent.name))
    return Dataset(name, tuple(raters), tuple(cases), root), problems


def _parse_case(entry, index: int, root: Path, raters: set[str], where: str,
                problems: list[Problem]) -> Case | None:
    if not isinstance(entry, dict):
        problems.append(Problem("error", where, f"case #{index} is not an object"))
        return None
    case_id = entry.get("id")
    if not isinstance(case_id, str) or not SAFE_ID.match(case_id):
        problems.append(Problem("error", where, f"case #{index} has a missing or unsafe id {case_id!r}"))
        return None
    label = f"case {case_id!r}"
    split = entry.get("split")
    if split not in SPLITS:
        problems.append(Problem("error", where, f"{label}: unknown split {split!r} (use {', '.join(SPLITS)})"))
    paths = {}
    for key in ("image", "liver"):
        if not isinstance(entry.get(key), str):
            problems.append(Problem("error", where, f"{label}: missing '{key}' path"))
        else:
            paths[key] = _resolve(root, entry[key])
    tumor = entry.get("tumor", {})
    if not isinstance(tumor, dict):
        problems.append(Problem("error", where, f"{label}: 'tumor' must map rater names to paths"))
        tumor = {}
    tumors = {}
    for rater, rel in tumor.items():
        if rater not in raters:
            problems.append(Problem("error", where, f"{label}: rater {rater!r} is not in 'raters'"))
        if not isinstance(rel, str):
            problems.append(Problem("error", where, f"{label}: tumour path of {rater!r} is not a string"))
            continue
        tumors[rater] = _resolve(root, rel)
    series = entry.get("series")
    if series is not None and not isinstance(series, str):
        problems.append(Problem("error", where, f"{label}: 'series' must be a Series Instance UID (a string)"))
        series = None
    if "image" not in paths or "liver" not in paths:
        return None
    return Case(case_id, str(split), paths["image"], paths["liver"], tumors, series)


def _resolve(root: Path, rel: str) -> Path:
    p = Path(rel)
    return p if p.is_absolute() else root / p


def _check_case_files(case: Case) -> list[Problem]:
    """Open every file of one case and report what is wrong with it."""
    problems: list[Problem] = []
    image = _read_or_report(case.image, problems, case.series)
    if image is not None and np.issubdtype(image.array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(image.array)))
        if bad:
            problems.append(Problem("error", str(case.image), f"{bad} NaN/inf voxels"))
    liver = _mask_on_grid(_read_or_report(case.liver, problems), image, problems)
    liver_mask = None
    if liver is not None:
        liver_mask = np.asarray(liver.array) > 0
        if not liver_mask.any():
            problems.append(Problem("error", str(case.liver), "liver mask is empty"))
            liver_mask = None
    for path in case.tumor.values():
        tumor = _mask_on_grid(_read_or_report(path, problems), image, problems)
        if tumor is None or liver_mask is None or image is None:  # without the image: grids unknown
            continue
        t = np.asarray(tumor.array) > 0
        outside = np.count_nonzero(t & ~liver_mask)
        if outside:
            share = outside / np.count_nonzero(t)
            problems.append(Problem("warning", str(path),
                                    f"{share:.1%} of tumour voxels lie outside the liver mask"))
    return problems


def _read_or_report(path: Path, problems: list[Problem], series: str | None = None) -> Volume | None:
    try:
        return read_volume(path, series)
    except InputError as exc:
        problems.append(Problem("error", str(path), exc.message))
        return None


def _mask_on_grid(mask: Volume | None, image: Volume | None, problems: list[Problem]) -> Volume | None:
    """The mask on the image's grid (``io.geometry.align_grid``; itself without an image), or None
    after reporting a non-binary mask or a grid that differs. A mask in another axis order is a note."""
    if mask is None:
        return None
    where = str(mask.source)
    values = np.unique(np.asarray(mask.array))
    if not np.all(np.isin(values, (0, 1))):
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (" ..." if values.size > 6 else "")
        problems.append(Problem("error", where, f"mask is not binary (values {shown})"))
        return None
    if image is None:
        return mask
    aligned, mismatch = align_grid(image, mask)
    if aligned is None:
        problems.append(Problem("error", where, f"grid differs from the image: {mismatch}"))
    elif aligned is not mask:
        problems.append(Problem("note", where, "the image's grid in another axis order (axes permuted or "
                                               "flipped); it is reordered exactly onto the image's voxels"))
    return aligned
