"""``hepaseg rate simulate``: ratings from the agreement with the hidden truth, labelled as simulated."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from hepaseg.cli import main
from hepaseg.errors import InputError
from hepaseg.rating import init_rating, simulate_ratings
from hepaseg.rating.simulate import dice, latent_quality
from hepaseg.rating.store import DB_FILE, Store

from ..conftest import make_study


def test_dice_and_latent_quality():
    a = np.zeros(10, bool)
    a[:4] = True
    b = np.zeros(10, bool)
    b[2:8] = True
    assert dice(a, b) == 2 * 2 / 10 and dice(a, a) == 1.0 and dice(~a & a, ~a & a) == 1.0
    assert latent_quality({"intensity": {"snr": 40.0, "ghost_amplitude": 0.0}}) == 3.0
    assert latent_quality({"intensity": {"snr": 15.0, "ghost_amplitude": 0.05}}) == 0.5
    assert latent_quality({}) == 2.0


def test_the_truth_outrates_the_eroded_truth_and_everything_says_simulated(rating, tmp_path, capsys):
    init = rating(("R3",))
    assert main(["rate", "simulate", str(init.folder), "--noise", "0"]) == 0
    assert "SIMULATED" in capsys.readouterr().out
    store = Store(init.folder / DB_FILE)
    items = store.items("R3")
    assert all(i.complete for i in items) and store.raters() == {"R3": True}
    by = {(i.case, i.algorithm): i for i in items}
    for case in {i.case for i in items}:
        assert by[(case, "A1")].rating >= by[(case, "A2")].rating  # Dice 1 vs Dice < 1, no noise
    assert len({by[(c, "A1")].rating for c, _ in by}) == 1  # Dice 1 everywhere: one rating
    assert any(by[(c, "A1")].rating > by[(c, "A2")].rating for c, _ in by)
    assert main(["rate", "export", str(init.folder)]) == 0
    assert "SIMULATED rater" in capsys.readouterr().out
    with (init.folder / "results" / "ratings.csv").open(newline="") as handle:
        assert {r["simulated"] for r in csv.DictReader(handle)} == {"yes"}
    summary = json.loads((init.folder / "results" / "summary.json").read_text())
    assert summary["simulated"] and summary["simulated_raters"] == ["R3"] and summary["complete"]


def test_simulation_is_seeded(rating):
    runs = []
    for seed in (0, 0, 1):
        init = rating(("R3", "R4"))
        simulate_ratings(init.folder, seed=seed, noise=1.0)
        runs.append([(i.rater, i.case, i.algorithm, i.rating, i.quality) for i in Store(init.folder / DB_FILE).items()])
    assert runs[0] == runs[1] != runs[2]


def test_a_person_who_rated_is_never_overwritten_and_a_real_cohort_is_refused(rating, rating_cohort, tmp_path):
    init = rating(("R3", "R4"))
    Store(init.folder / DB_FILE).rate("R3", 0, 0, rating=4)
    with pytest.raises(InputError, match="R3 has given ratings"):
        simulate_ratings(init.folder)
    assert simulate_ratings(init.folder, raters=["R4"]) == 6
    with pytest.raises(InputError, match="no rater 'R9'"):
        simulate_ratings(init.folder, raters=["R9"])
    cohort = shutil.copytree(rating_cohort.parent, tmp_path / "cohort") / "dataset.json"
    study = make_study(cohort, tmp_path / "study")
    for truth in cohort.parent.glob("*/tumor_truth.nii.gz"):
        truth.unlink()
    real = init_rating(study, tmp_path / "real", ["R3"])
    with pytest.raises(InputError, match="works only on a synthetic cohort"):
        simulate_ratings(real.folder)
    assert not any(i.rating for i in Store(real.folder / DB_FILE).items())
