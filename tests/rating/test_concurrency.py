"""Two raters rating at once, each through their own signed-in client: nothing is lost."""

from __future__ import annotations

import sqlite3
import threading

from hepaseg.rating.store import DB_FILE

from .test_app import put, sign_in

PASSES = 4  # every item of a round is rated this many times, rating and quality in separate requests


def value(rater: int, index: int, pass_: int, scale: int) -> int:
    return (rater * 7 + index * 3 + pass_) % scale + 1


def test_two_raters_at_once_lose_nothing(rating, serve):
    init = rating(("R3", "R4"))
    errors: list[str] = []
    with serve(init.folder) as url:
        clients = [sign_in(url, init.tokens[r]) for r in ("R3", "R4")]
        start = threading.Barrier(2)

        def work(k: int) -> None:
            client, state = clients[k]
            start.wait()
            for rnd in range(state["rounds"]):
                for pass_ in range(PASSES):
                    for index in range(rnd * state["cases"], (rnd + 1) * state["cases"]):
                        for field, scale in (("rating", 5), ("quality", 3)):
                            answer = put(client, state, index, {field: value(k, index, pass_, scale)})
                            if answer.status_code != 200:
                                errors.append(f"{state['rater']} {index} {answer.status_code}")

        threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    with sqlite3.connect(init.folder / DB_FILE) as con:
        rows = con.execute("SELECT rater, round * 3 + position, rating, quality FROM ratings").fetchall()
        events = con.execute("SELECT rater, count(*) FROM events GROUP BY rater ORDER BY rater").fetchall()
    expected = {(r, i, value(k, i, PASSES - 1, 5), value(k, i, PASSES - 1, 3))
                for k, r in enumerate(("R3", "R4")) for i in range(6)}
    assert set(rows) == expected and len(rows) == 12
    assert events == [("R3", 2 * 6 * PASSES), ("R4", 2 * 6 * PASSES)]
