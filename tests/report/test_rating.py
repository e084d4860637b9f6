"""The report's rating section: found beside a study's evaluation, numbers as exported, simulated named."""

from __future__ import annotations

import csv
import shutil

from hepaseg.cli import main
from hepaseg.rating import export_ratings, simulate_ratings
from hepaseg.report.page import build_report
from hepaseg.report.rating import find_rating


def test_the_report_shows_the_exported_rating(rating, tiny_evaluation, tmp_path, capsys):
    init = rating(("R3",))
    simulate_ratings(init.folder, seed=0)
    results = export_ratings(init.folder, init.folder / "results").folder
    _, evaluation = tiny_evaluation
    assert "Expert rating" not in build_report(evaluation)  # no rating beside this evaluation
    page = build_report(evaluation, rating=results)
    assert "Expert rating (Fig. 4): SIMULATED rater, not a radiologist" in page
    with (results / "ratings.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for algorithm in ("A1", "A2"):
        values = [int(r["rating"]) for r in rows if r["algorithm"] == algorithm]
        share = sum(v >= 4 for v in values) / len(values)
        assert f"<td>{algorithm}</td><td>{len(values)}</td><td>{sum(values) / len(values):.2f}</td>" in page
        assert f"{share * 100:.0f} %" in page
    assert 'alt="Fig. 4: rating histograms"' in page
    # a study folder: eval/ and rating/results/ side by side; hepaseg report finds it by itself
    study = tmp_path / "study"
    shutil.copytree(evaluation, study / "eval")
    shutil.copytree(results, study / "rating" / "results")
    assert find_rating(study / "eval") == (study / "rating" / "results").resolve()
    assert main(["report", str(study / "eval")]) == 0
    assert "SIMULATED rater" in (study / "eval" / "report.html").read_text()
