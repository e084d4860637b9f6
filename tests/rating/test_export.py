"""``hepaseg rate export``: the numbers, worked out by hand on known ratings, and the files."""

from __future__ import annotations

import csv
import json
import math

from scipy.stats import wilcoxon

from hepaseg.cli import main
from hepaseg.rating.export import summarise
from hepaseg.rating.store import DB_FILE, RatedItem, Store


def item(rater, rnd, case, algorithm, rating, quality):
    return RatedItem(rater, rnd, 0, case, algorithm, 0, rating, quality, "t")


def test_summary_numbers_by_hand():
    # (case, rating A1, rating A2, quality round 1, quality round 2); A1 shown first in round 1
    table = [("a", 5, 3, 3, 3), ("b", 4, 2, 2, 3), ("c", 2, 2, 1, 1), ("d", 4, 1, 3, 2), ("e", 3, 1, 2, 2)]
    items = []
    for case, r1, r2, q1, q2 in table:
        items += [item("R3", 0, case, "A1", r1, q1), item("R3", 1, case, "A2", r2, q2)]
    items.append(item("R3", 1, "f", "A2", 5, None))  # incomplete: left out
    s = summarise(items, ["A1", "A2"], {"R3": False})
    assert (s["complete"], s["rated"], s["items"], s["simulated"]) == (False, 10, 11, False)
    a1, a2 = s["per_algorithm"]["A1"], s["per_algorithm"]["A2"]
    assert (a1["n"], a1["mean"], a1["median"], a1["share_4_5"]) == (5, 18 / 5, 4.0, 3 / 5)
    assert (a2["mean"], a2["median"], a2["share_4_5"]) == (9 / 5, 2.0, 0.0)
    assert a1["histogram"] == {"1": 0, "2": 1, "3": 1, "4": 2, "5": 1}
    # mean quality per case: a 3, b 2.5, c 1, d 2.5, e 2
    assert s["quality_levels"] == ["1", "2", "2.5", "3"]
    assert s["by_quality"]["A1"]["2.5"]["n"] == 2 and s["by_quality"]["A1"]["2.5"]["mean"] == 4.0
    assert s["by_quality"]["A2"]["2.5"]["histogram"]["1"] == 1 and s["by_quality"]["A2"]["2.5"]["histogram"]["2"] == 1
    (test,) = s["tests"]
    expected = wilcoxon([5, 4, 4, 3], [3, 2, 1, 1])  # case c is a tie: scipy's default drops it
    assert test["n"] == 5 and math.isclose(test["p"], expected.pvalue) and test["mean_difference"] == 9 / 5


def test_export_writes_the_table_summary_figure_and_test(rating, tmp_path, capsys):
    init = rating(("R3", "R4"))
    store = Store(init.folder / DB_FILE)
    given = {}
    for k, it in enumerate(store.items("R3")):
        given[(it.case, it.algorithm)] = (1 + k % 5, 1 + k % 3)
        store.rate("R3", it.round, it.position, *given[(it.case, it.algorithm)])
    store.rate("R4", 0, 0, rating=2)
    out = tmp_path / "results"
    assert main(["rate", "export", str(init.folder), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "7 of 12 contours rated" not in printed and "6 of 12 contours rated" in printed
    assert "SIMULATED" not in printed
    with (out / "ratings.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7 and set(rows[0]) == {"rater", "simulated", "case", "round", "algorithm", "rating",
                                               "quality", "time"}
    mine = {(r["case"], r["algorithm"]): (int(r["rating"]), int(r["quality"])) for r in rows if r["rater"] == "R3"}
    assert mine == given
    r4 = next(r for r in rows if r["rater"] == "R4")
    assert (r4["round"], r4["rating"], r4["quality"], r4["simulated"]) == ("1", "2", "", "no")
    summary = json.loads((out / "summary.json").read_text())
    ratings = [v[0] for (c, a), v in given.items() if a == "A1"]
    assert summary["per_algorithm"]["A1"]["mean"] == sum(ratings) / len(ratings)
    assert (out / "rating.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (out / "summary.csv").open(newline="") as handle:
        assert [r["algorithm"] for r in csv.DictReader(handle)] == ["A1", "A2"]
    assert (out / "tests.csv").read_text().startswith("first,second,n,statistic,p,mean_difference\nA1,A2,3,")
