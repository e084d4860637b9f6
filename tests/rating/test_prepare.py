"""``hepaseg rate init``: the rating folder, its determinism, bad input as one line with exit code 2,
no half-written folder, and the study folder left untouched."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
from pathlib import Path

import numpy as np

from hepaseg.cli import main
from hepaseg.data.manifest import load_manifest
from hepaseg.io.volumes import read_volume, write_volume
from hepaseg.rating.images import unpack_mask
from hepaseg.rating.prepare import read_tokens
from hepaseg.rating.store import DB_FILE, Store

from ..conftest import make_study


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_init_writes_the_folder_and_leaves_the_study_untouched(rating_study, rating_cohort, tmp_path, capsys):
    before = digests(rating_study), digests(rating_cohort.parent)
    out = tmp_path / "rating"
    assert main(["rate", "init", str(rating_study), "-o", str(out), "--raters", "R3,R4", "--seed", "2"]) == 0
    assert "3 cases x 2 rounds for R3, R4" in capsys.readouterr().out
    assert (digests(rating_study), digests(rating_cohort.parent)) == before
    assert stat.S_IMODE((out / "tokens.txt").stat().st_mode) == 0o600
    tokens = read_tokens(out)
    assert set(tokens) == {"R3", "R4"} and len(set(tokens.values())) == 2
    store = Store(out / DB_FILE)
    assert [store.rater_for_token(tokens[r]) for r in ("R3", "R4")] == ["R3", "R4"]
    with sqlite3.connect(out / DB_FILE) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(list((out / "data").iterdir())) == 3 * (1 + 2)
    # each stored contour is the prediction it was made from (A1: the truth, on the viewer's crop)
    dataset = load_manifest(rating_cohort)
    for contour in store.contours():
        _, info = store.case_info(contour.case)
        mask = unpack_mask((out / contour.mask_file).read_bytes(), tuple(info["shape"]))
        prediction = read_volume(rating_study / "preds" / contour.algorithm / f"{contour.case}.nii.gz")
        assert mask.sum() == np.count_nonzero(prediction.array)
        assert dataset.case(contour.case).split in ("test", "unlabeled")
    assert not list(tmp_path.glob(".rating.tmp-*"))


def test_the_same_seed_gives_the_same_folder_but_new_tokens(rating):
    a, b, c = rating(("R3",), seed=1), rating(("R3",), seed=1), rating(("R3",), seed=2)
    items = [[(i.round, i.position, i.case, i.algorithm) for i in Store(r.folder / DB_FILE).items()] for r in (a, b, c)]
    assert items[0] == items[1] != items[2]
    assert digests(a.folder / "data") == digests(b.folder / "data")
    assert a.tokens["R3"] != b.tokens["R3"]  # secrets never come from the seed


def test_only_the_chosen_splits_and_algorithms(rating):
    result = rating(("R3",), algorithms=["A2"], splits=["unlabeled"])
    assert result.cases == ("case007",) and result.algorithms == ("A2",)
    assert [(i.case, i.algorithm) for i in Store(result.folder / DB_FILE).items()] == [("case007", "A2")]


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_bad_input_is_one_line_exit_2_and_leaves_no_folder(rating_study, rating_cohort, tmp_path, capsys):
    out = tmp_path / "rating"
    base = ["rate", "init", str(rating_study), "-o", str(out)]
    assert "invalid rater name" in _error(capsys, [*base, "--raters", "../R3"])
    assert "prediction folder not found" in _error(capsys, [*base, "--raters", "R3", "--algorithms", "A9"])
    assert "no case in split" in _error(capsys, [*base, "--raters", "R3", "--split", "val2"])
    assert "no preds/ folder" in _error(capsys, ["rate", "init", str(tmp_path), "-o", str(out), "--raters", "R3"])
    assert not out.exists()
    # a prediction on the wrong grid, found while the folder is being built: nothing is left behind
    broken = make_study(rating_cohort, tmp_path / "broken")
    last = sorted((broken / "preds" / "A2").iterdir())[-1]
    volume = read_volume(last)
    write_volume(np.asarray(volume.array)[:-1], volume.affine, last)
    assert "grid differs" in _error(capsys, ["rate", "init", str(broken), "-o", str(out), "--raters", "R3"])
    assert not out.exists() and not list(tmp_path.glob(".rating*"))
    out.mkdir()
    assert "already exists" in _error(capsys, [*base, "--raters", "R3"])
