"""``hepaseg rate init``: a new rating folder from a study folder.

The rating folder::

    rating/rating.db     the database (store.py): raters with hashed tokens, cases, contours,
                         the assignment (protocol.py), ratings, sessions
    rating/tokens.txt    one line per rater, "<rater> <token>", readable by its owner only:
                         hand each rater their token, then delete the file
    rating/data/<n>.bin  the prepared image stacks and contour masks (images.py)
    rating/results/      written later by ``hepaseg rate export``

The data files are numbered in an order drawn from the seed and written in that order, so neither
their names nor their times follow the algorithms; the browser never sees them anyway (the server
reads them by database id). The folder is built under a temporary name and renamed when complete;
the study folder is only read. Tokens come from ``secrets`` (never from the seed, which is not secret).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.manifest import SAFE_ID, load_manifest
from ..errors import InputError
from ..evaluation.inputs import find_predictions
from ..evaluation.results import INFO_FILE
from ..io.atomic import temporary_prefix
from ..io.volumes import read_volume
from . import images
from .protocol import assign
from .store import DB_FILE, Contour, Store, digest, now

TOKENS_FILE = "tokens.txt"
DATA_DIR = "data"
FORMAT = 1


@dataclass(frozen=True)
class InitResult:
    folder: Path
    tokens: dict[str, str]  # rater -> sign-in token
    cases: tuple[str, ...]
    algorithms: tuple[str, ...]


def study_manifest(study: Path) -> Path:
    """The manifest a study evaluated: from ``<study>/eval/evaluation.json``."""
    info = study / "eval" / INFO_FILE
    if not info.is_file():
        raise InputError(study, f"no eval/{INFO_FILE}; is this a finished study folder? (or give --manifest)")
    try:
        return Path(json.loads(info.read_text(encoding="utf-8"))["manifest"])
    except (json.JSONDecodeError, KeyError) as exc:
        raise InputError(info, f"cannot read the manifest's path ({exc})") from exc


def init_rating(study: str | Path, out: str | Path, raters: Sequence[str], algorithms: Sequence[str] | None = None,
                splits: Sequence[str] = ("test", "unlabeled"), seed: int = 0,
                manifest: str | Path | None = None) -> InitResult:
    """Prepare a rating folder (see the module docstring) for ``raters``.

    Args:
        study: a study folder with ``preds/<algorithm>/`` (and ``eval/evaluation.json`` unless
            ``manifest`` is given).
        algorithms: which of ``preds/``'s folders (default: all, sorted by name).
        splits: the manifest splits whose cases are rated.
        seed: the protocol's seed (orders and algorithm per round).

    Raises:
        InputError: the output exists, a bad rater or algorithm name, no case, a missing
            prediction, an unreadable volume or a grid mismatch.
    """
    study, out = Path(study), Path(out)
    if out.exists():
        raise InputError(out, "already exists; choose a new rating folder")
    preds = study / "preds"
    if not preds.is_dir():
        raise InputError(study, "no preds/ folder; is this a study folder?")
    algorithms = list(algorithms) if algorithms else sorted(p.name for p in preds.iterdir() if p.is_dir() and not p.name.startswith("."))
    bad = [r for r in raters if not SAFE_ID.match(r)]
    if bad or not raters:
        raise InputError(None, f"invalid rater name(s): {', '.join(bad) or '(none given)'}")
    if len(algorithms) < 1 or len(set(raters)) != len(raters) or len(set(algorithms)) != len(algorithms):
        raise InputError(preds, "need at least one algorithm, and no rater or algorithm named twice")
    manifest = Path(manifest) if manifest else study_manifest(study)
    dataset = load_manifest(manifest)
    cases = [c for c in dataset.cases if c.split in splits]
    if not cases:
        raise InputError(manifest, f"no case in split(s) {', '.join(splits)}")
    files = find_predictions({a: preds / a for a in algorithms}, [c.id for c in cases])
    tmp = out.parent / f"{temporary_prefix(out)}{secrets.token_hex(4)}"
    (tmp / DATA_DIR).mkdir(parents=True)
    try:
        tokens = _build(tmp, dataset, cases, algorithms, files, raters, splits, seed, study, manifest)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return InitResult(out, tokens, tuple(c.id for c in cases), tuple(algorithms))


def _build(tmp: Path, dataset, cases, algorithms, files, raters, splits, seed, study, manifest) -> dict[str, str]:
    rng = np.random.default_rng([seed, len(raters)])  # independent of the per-rater streams of assign
    n_files = len(cases) * (1 + len(algorithms))
    names = iter(f"{DATA_DIR}/{n:04d}.bin" for n in rng.permutation(n_files))
    contour_ids = iter(int(i) + 1 for i in rng.permutation(len(cases) * len(algorithms)))
    case_rows: dict[str, tuple[str, dict]] = {}
    contours: list[Contour] = []
    for case in cases:
        image, liver, frame = images.read_case(case.image, case.liver, case.series)
        stack = images.image_stack(image, liver, frame)
        image_file = next(names)
        (tmp / image_file).write_bytes(stack.tobytes())
        case_rows[case.id] = (image_file, {"shape": list(stack.shape), "pixel_mm": list(frame.pixel_mm),
                                           "split": case.split})
        shown = [algorithms[i] for i in rng.permutation(len(algorithms))]  # writing order
        for algorithm in shown:
            mask = images.mask_stack(read_volume(files[algorithm][case.id]), image, frame)
            mask_file = next(names)
            (tmp / mask_file).write_bytes(images.pack_mask(mask))
            contours.append(Contour(next(contour_ids), case.id, algorithm, mask_file, images.lesion_slices(mask)))
    items = assign([c.id for c in cases], algorithms, raters, seed)
    tokens = {r: secrets.token_urlsafe(24) for r in raters}
    meta = {"format": FORMAT, "seed": seed, "algorithms": list(algorithms), "splits": list(splits),
            "cases": [c.id for c in cases], "raters": list(raters), "study": str(study.resolve()),
            "manifest": str(Path(manifest).resolve()), "created": now()}
    Store(tmp / DB_FILE).create(meta, {r: digest(t) for r, t in tokens.items()}, case_rows,
                                sorted(contours, key=lambda c: c.id), items)
    token_file = tmp / TOKENS_FILE
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.writelines(f"{r} {t}\n" for r, t in tokens.items())
    return tokens


def read_tokens(folder: Path) -> dict[str, str]:
    """The tokens ``rate init`` wrote (empty once the operator deleted the file)."""
    path = folder / TOKENS_FILE
    if not path.is_file():
        return {}
    pairs = (line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def open_store(folder: str | Path) -> Store:
    """The store of a rating folder.

    Raises:
        InputError: not a rating folder.
    """
    path = Path(folder) / DB_FILE
    if not path.is_file():
        raise InputError(folder, f"no {DB_FILE}; is this a folder written by 'hepaseg rate init'?")
    return Store(path)
