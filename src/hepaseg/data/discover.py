"""Generate a dataset manifest (``dataset.json``) from a folder of cases (``hepaseg manifest``).

Layout (names compared case-insensitively; ``<ext>`` is one ``hepaseg.io`` reads: ``.nii``,
``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``)::

    <folder>/<case id>/image.<ext>       or a sub-folder image/ or dicom/ holding one DICOM series
    <folder>/<case id>/liver.<ext>
    <folder>/<case id>/tumor_<RATER>.<ext> or tumour_<RATER>.<ext>   (any number of raters)

Every sub-folder whose name does not start with ``.`` is a case; its name is the case id (cases
sorted by id). Other files are ignored. A case folder without an image or liver mask, or with two
of them (or two masks of one rater), is an error.

Raters: by default every ``<RATER>`` found is taken, so the synthetic cohort's
``tumor_truth.nii.gz`` would become a rater ``truth``; ``raters=[...]`` (``--raters``) takes only
those names. Rater names are compared case-insensitively and spelled as in ``--raters``, else as
first met.

Splits: a case without a mask of the training rater is ``unlabeled``. The labelled cases are ordered
by a hash of (seed, case id), which depends on no library version, and the test cases are taken
first from those carrying every rater (the evaluation compares against all raters), then the
validation cases, the rest train. Or a CSV (columns ``case,split``) fixes the splits.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..io.atomic import write_json
from ..io.formats import READ_SUFFIXES, volume_stem
from .manifest import SAFE_ID, SPLITS, Case

IMAGE_FOLDERS = ("image", "dicom")
_TUMOR = re.compile(r"^tumou?r_(.+)$", re.IGNORECASE)
UNSPLIT = ""  # the split of a scanned case, before the splits are drawn


@dataclass(frozen=True)
class Written:
    """The result of ``write_manifest``: where it went, what it holds, and the warnings (one line each)."""

    path: Path
    manifest: dict
    warnings: tuple[str, ...]

    def summary(self) -> str:
        cases = self.manifest["cases"]
        counts = ", ".join(f"{sum(c['split'] == s for c in cases)} {s}" for s in SPLITS)
        raters = ", ".join(self.manifest["raters"]) or "none"
        return f"wrote {self.path}: {len(cases)} cases ({counts}); raters {raters}"


def scan_cases(folder: str | Path, raters: list[str] | None = None,
               skip: Path | None = None) -> tuple[list[Case], list[str]]:
    """Find the cases under ``folder``; return them (sorted by id) and the rater names (in order).

    Args:
        folder: the cohort folder, one sub-folder per case.
        raters: take only these raters (others' masks are ignored); None: every rater found, sorted.
        skip: a sub-folder that is not a case unless it holds one (the manifest's own folder).

    Raises:
        InputError: the folder is missing or has no case folders; a case folder has an unusable
            name, no image or liver mask, or two of them, or two masks of one rater.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(root, "folder not found")
    wanted = None if raters is None else {r.lower(): r for r in raters}
    spelling: dict[str, str] = dict(wanted or {})  # lower-cased rater name -> the name used
    cases = []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for case_dir in sorted(folders, key=lambda p: p.name):
        try:
            image, liver, tumors = _scan_case(case_dir, wanted)
        except InputError:
            if skip is not None and case_dir.resolve() == skip:
                continue
            raise
        tumor = {}
        for key, (name, path) in tumors.items():
            tumor[spelling.setdefault(key, name)] = path
        cases.append(Case(case_dir.name, UNSPLIT, image, liver, tumor))
    if not cases:
        raise InputError(root, "no case folders (expected one sub-folder per case)")
    names = list(raters) if raters is not None else sorted(spelling.values(), key=lambda r: (r.lower(), r))
    return cases, names


def _scan_case(case_dir: Path, wanted: dict[str, str] | None) -> tuple[Path, Path, dict[str, tuple[str, Path]]]:
    """One case folder: image, liver mask, and lower-cased rater name -> (name as spelled, mask)."""
    if not SAFE_ID.match(case_dir.name):
        raise InputError(case_dir, "folder name is not usable as a case id (letters, digits, '.', '_', '-', "
                                   "starting with a letter or digit)")
    images, livers, tumors = [], [], {}
    for entry in sorted(case_dir.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if entry.name.lower() in IMAGE_FOLDERS:
                images.append(entry)
            continue
        stem = volume_stem(entry.name)
        if stem is None:
            continue
        if stem.lower() == "image":
            images.append(entry)
        elif stem.lower() == "liver":
            livers.append(entry)
        elif (match := _TUMOR.match(stem)) and SAFE_ID.match(match.group(1)):
            key = match.group(1).lower()
            if wanted is None or key in wanted:
                tumors.setdefault(key, []).append((match.group(1), entry))
    extensions = ", ".join(READ_SUFFIXES)
    if not images:
        raise InputError(case_dir, f"no image (expected image with one of {extensions}, or a folder "
                                   "image/ or dicom/ holding one DICOM series)")
    if not livers:
        raise InputError(case_dir, f"no liver mask (expected liver with one of {extensions})")
    for what, found in (("images", images), ("liver masks", livers),
                        *((f"tumour masks of rater {v[0][0]!r}", [p for _, p in v]) for v in tumors.values())):
        if len(found) > 1:
            raise InputError(case_dir, f"{len(found)} {what} ({', '.join(p.name for p in found)}); keep one")
    return images[0], livers[0], {key: found[0] for key, found in tumors.items()}


def split_counts(n: int, val: float, test: float) -> tuple[int, int]:
    """(validation, test) case counts for ``n`` labelled cases.

    Rounded half up; with at least 3 cases every non-zero fraction gets at least one case, and at
    least one case is left for training.
    """
    n_val, n_test = math.floor(val * n + 0.5), math.floor(test * n + 0.5)
    if n >= 3:
        n_val = max(n_val, 1) if val > 0 else 0
        n_test = max(n_test, 1) if test > 0 else 0
    while n_val + n_test > max(n - 1, 0):
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    return n_val, n_test


def _seeded_order(case_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{case_id}".encode()).hexdigest()


def random_splits(cases: list[Case], raters: list[str], train_rater: str, seed: int, val: float,
                  test: float) -> dict[str, str]:
    """Case id -> split: unlabeled without the training rater's mask, else drawn by seed."""
    _check_fractions(val, test)
    splits = {c.id: "unlabeled" for c in cases if train_rater not in c.tumor}
    labelled = sorted((c for c in cases if train_rater in c.tumor), key=lambda c: _seeded_order(c.id, seed))
    n_val, n_test = split_counts(len(labelled), val, test)
    complete = [c.id for c in labelled if all(r in c.tumor for r in raters)]
    test_ids = (complete + [c.id for c in labelled if c.id not in complete])[:n_test]
    rest = [c.id for c in labelled if c.id not in test_ids]
    splits.update({case_id: "val" if index < n_val else "train" for index, case_id in enumerate(rest)})
    splits.update({case_id: "test" for case_id in test_ids})
    return splits


def _check_fractions(val: float, test: float) -> None:
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise InputError(None, f"--val {val} and --test {test}: each must be >= 0 and their sum below 1")


def csv_splits(path: str | Path, cases: list[Case], train_rater: str) -> dict[str, str]:
    """Case id -> split from a CSV with columns ``case,split``.

    Every labelled case must be listed; an unlisted case without the training rater's mask is
    unlabeled. A case without that mask can only be ``test`` or ``unlabeled``.

    Raises:
        InputError (naming the CSV): missing file or columns, an unknown case id or split name, a
            case listed twice, a labelled case not listed, or an unlabeled case put into train/val.
    """
    csv_path = Path(path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError as exc:
        raise InputError(csv_path, "file not found") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(csv_path, f"cannot read: {exc}") from exc
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "case" not in header or "split" not in header:
        found = ",".join(header) or "nothing"
        raise InputError(csv_path, f"expected a header with columns case,split (found {found})")
    col_case, col_split = header.index("case"), header.index("split")
    by_id = {c.id: c for c in cases}
    splits: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(col_case, col_split):
            raise InputError(csv_path, f"line {line}: expected columns case,split")
        case_id, split = row[col_case].strip(), row[col_split].strip()
        if case_id not in by_id:
            raise InputError(csv_path, f"line {line}: unknown case {case_id!r} (no such case folder)")
        if split not in SPLITS:
            raise InputError(csv_path, f"line {line}: unknown split {split!r} (use {', '.join(SPLITS)})")
        if case_id in splits:
            raise InputError(csv_path, f"line {line}: case {case_id!r} is listed twice")
        if split in ("train", "val") and train_rater not in by_id[case_id].tumor:
            raise InputError(csv_path, f"line {line}: case {case_id!r} has no tumour mask of the training rater "
                                       f"{train_rater!r}, so it can only be test or unlabeled")
        splits[case_id] = split
    unlisted = [c.id for c in cases if c.id not in splits and train_rater in c.tumor]
    if unlisted:
        raise InputError(csv_path, f"labelled cases not listed: {', '.join(unlisted)}")
    return {c.id: splits.get(c.id, "unlabeled") for c in cases}


def _relative(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` with POSIX separators (absolute if on another drive)."""
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:
        return path.as_posix()


def parse_raters(text: str | None) -> list[str] | None:
    """``"R1,R2,R3"`` -> ``["R1", "R2", "R3"]``; None stays None (take every rater found)."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if not SAFE_ID.match(n)]
    if not names or bad:
        raise InputError(None, f"--raters {text!r}: give names such as R1,R2,R3 (letters, digits, '.', '_', '-')")
    if len({n.lower() for n in names}) != len(names):
        raise InputError(None, f"--raters {text!r}: a name is given twice")
    return names


def build_manifest(folder: str | Path, output: str | Path | None = None, *, raters: list[str] | None = None,
                   train_rater: str = "R1", seed: int = 0, val: float = 0.1, test: float = 0.2,
                   splits_csv: str | Path | None = None) -> tuple[dict, list[str]]:
    """Scan ``folder`` and build the manifest dict (paths relative to ``output``'s folder).

    Args:
        folder: the cohort folder (layout in the module docstring).
        output: where the manifest will be written (default ``<folder>/dataset.json``).
        raters: take only these raters; None: every rater found.
        train_rater: cases without this rater's mask are ``unlabeled``.
        seed, val, test: the random split of the labelled cases (fractions of them).
        splits_csv: a CSV (columns ``case,split``) that fixes the splits instead.

    Returns:
        The manifest (with a ``generated`` record of the options used) and the warnings (one line
        each): test cases lacking a rater that others have, raters named but never found, no case
        with the training rater's mask.
    """
    root = Path(folder)
    out = Path(output) if output is not None else root / "dataset.json"
    out_dir = out.parent.resolve()
    if splits_csv is None:
        _check_fractions(val, test)
    if raters is not None and train_rater.lower() not in {r.lower() for r in raters}:
        raise InputError(None, f"--train-rater {train_rater} is not among --raters {','.join(raters)}")
    base = root.resolve()
    cases, names = scan_cases(base, raters, skip=out_dir)
    train_rater = next((r for r in names if r.lower() == train_rater.lower()), train_rater)
    warnings = []
    found = {r for c in cases for r in c.tumor}
    for rater in [r for r in names if r not in found]:
        warnings.append(f"{root}: no case has a tumour mask of rater {rater!r}; left out of 'raters'")
        names.remove(rater)
    if train_rater not in found:
        warnings.append(f"{root}: no case has a tumour mask of the training rater {train_rater!r}, so every case "
                        f"is unlabeled (name another with --train-rater)")
    generated: dict = {"by": "hepaseg manifest", "train_rater": train_rater}
    if splits_csv is not None:
        splits = csv_splits(splits_csv, cases, train_rater)
        generated["splits"] = _relative(Path(splits_csv).resolve(), out_dir)
    else:
        splits = random_splits(cases, names, train_rater, seed, val, test)
        generated.update(seed=seed, val=val, test=test)
    for case in cases:
        missing = [r for r in names if r not in case.tumor]
        if splits[case.id] == "test" and missing:
            warnings.append(f"{case.image.parent}: test case lacks rater(s) {', '.join(missing)} "
                            f"(hepaseg evaluate needs every rater's mask on test cases)")
    entries = [{"id": c.id, "split": splits[c.id], "image": _relative(c.image, out_dir),
                "liver": _relative(c.liver, out_dir),
                "tumor": {r: _relative(c.tumor[r], out_dir) for r in names if r in c.tumor}}
               for c in cases]
    return {"name": base.name, "raters": names, "generated": generated, "cases": entries}, warnings


def write_manifest(folder: str | Path, output: str | Path | None = None, *, force: bool = False,
                   **options) -> Written:
    """Build the manifest of ``folder`` (see ``build_manifest``) and write it atomically.

    Raises:
        InputError: the output exists and ``force`` is False, or anything ``build_manifest`` raises;
            nothing is written then.
    """
    out = Path(output) if output is not None else Path(folder) / "dataset.json"
    if out.is_dir():
        raise InputError(out, "is a folder; give the manifest's file name, e.g. dataset.json")
    if out.exists() and not force:
        raise InputError(out, "manifest exists; use --force to overwrite it")
    manifest, warnings = build_manifest(folder, out, **options)
    write_json(out, manifest)
    return Written(out, manifest, tuple(warnings))
