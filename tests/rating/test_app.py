"""The web app over a real server on 127.0.0.1 and a real SQLite database: sign-in, ratings,
the CSRF and origin checks, another rater's items, bad values, unknown items and path tricks."""

from __future__ import annotations

import http.client
import re
import sqlite3
from urllib.parse import urlsplit

import httpx

from hepaseg.rating.store import DB_FILE


def sign_in(url: str, token: str) -> tuple[httpx.Client, dict]:
    """A client signed in with ``token`` and the rater's state (with its CSRF token)."""
    client = httpx.Client(base_url=url, timeout=10)
    answer = client.post("/api/signin", json={"token": token})
    assert answer.status_code == 200, answer.text
    return client, client.get("/api/state").json()


def put(client: httpx.Client, state: dict, index: int, body: dict, **headers) -> httpx.Response:
    return client.put(f"/api/r/{state['rater']}/items/{index}", json=body,
                      headers={"X-CSRF-Token": state["csrf"], **headers})


def stored(folder) -> list[tuple]:
    """Every stored rating (rater, round, position, rating, quality), read from the database itself."""
    with sqlite3.connect(folder / DB_FILE) as con:
        return con.execute("SELECT rater, round, position, rating, quality FROM ratings ORDER BY 1, 2, 3").fetchall()


def sessions(folder) -> int:
    with sqlite3.connect(folder / DB_FILE) as con:
        return con.execute("SELECT count(*) FROM sessions").fetchone()[0]


def test_sign_in_sets_a_strict_http_only_cookie_and_bad_tokens_are_refused(rating, serve):
    init = rating(("R3", "R4"))
    with serve(init.folder) as url:
        for bad in ("", "x" * 32, init.tokens["R3"][:-1]):
            answer = httpx.post(url + "/api/signin", json={"token": bad})
            assert answer.status_code == 401 and "set-cookie" not in answer.headers
        assert httpx.post(url + "/api/signin", json={"token": 5}).status_code == 401
        assert sessions(init.folder) == 0
        answer = httpx.post(url + "/api/signin", json={"token": init.tokens["R4"]})
        assert answer.status_code == 200 and answer.json() == {"rater": "R4"}
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert sessions(init.folder) == 1
        # the database keeps hashes only: neither the token nor the session id is in it
        raw = (init.folder / DB_FILE).read_bytes()
        assert init.tokens["R4"].encode() not in raw and answer.cookies["hepaseg_session"].encode() not in raw


def test_every_route_but_sign_in_needs_a_session(rating, serve):
    init = rating()
    with serve(init.folder) as url:
        assert httpx.get(url + "/").status_code == 303
        assert httpx.get(url + "/").headers["location"] == "/signin"
        for path in ("/api/state", "/api/r/R3/items/0", "/api/r/R3/items/0/image", "/api/r/R3/items/0/contour"):
            assert httpx.get(url + path).status_code == 401, path
        assert httpx.put(url + "/api/r/R3/items/0", json={"rating": 3}).status_code == 401
        forged = httpx.Client(base_url=url, cookies={"hepaseg_session": "forged"})
        assert forged.get("/api/state").status_code == 401
        assert httpx.get(url + "/static/viewer.js").status_code == 200
        signin = httpx.get(url + "/signin")
        assert signin.status_code == 200 and "default-src 'none'" in signin.headers["content-security-policy"]
        pages = signin.text + sign_in(url, init.tokens["R3"])[0].get("/").text
        links = re.findall(r'(?:src|href)="([^"]*)"', pages)
        assert len(links) == 6 and all(link.startswith(("/static/", "data:")) for link in links)  # nothing external
    assert stored(init.folder) == []


def test_a_rating_is_stored_at_once_with_its_time_and_kept_across_sessions(rating, serve):
    init = rating()
    with serve(init.folder) as url:
        client, state = sign_in(url, init.tokens["R3"])
        assert state["cases"] == 3 and state["rounds"] == 2 and state["current_round"] == 1
        answer = put(client, state, 1, {"rating": 4})
        assert answer.status_code == 200 and answer.json()["rating"] == 4 and answer.json()["quality"] is None
        assert stored(init.folder) == [("R3", 0, 1, 4, None)]
        assert put(client, state, 1, {"quality": 2}).status_code == 200
        assert put(client, state, 1, {"rating": 5}).status_code == 200
        assert stored(init.folder) == [("R3", 0, 1, 5, 2)]
        with sqlite3.connect(init.folder / DB_FILE) as con:
            (rated_at,) = con.execute("SELECT rated_at FROM ratings").fetchone()
            events = con.execute("SELECT field, value FROM events ORDER BY id").fetchall()
        assert rated_at.endswith("+00:00") and events == [("rating", 4), ("quality", 2), ("rating", 5)]
        assert client.post("/api/signout", headers={"X-CSRF-Token": state["csrf"]}).status_code == 200
        assert client.get("/api/state").status_code == 401  # the old cookie is gone with its session
        again, state = sign_in(url, init.tokens["R3"])  # a new browser later
        kept = next(i for i in state["items"] if i["index"] == 1)
        assert (kept["rating"], kept["quality"]) == (5, 2)


def test_state_changing_requests_need_the_csrf_token_and_the_same_origin(rating, serve):
    init = rating()
    with serve(init.folder) as url:
        client, state = sign_in(url, init.tokens["R3"])
        path = "/api/r/R3/items/0"
        assert client.put(path, json={"rating": 3}).status_code == 403
        assert client.put(path, json={"rating": 3}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
        assert put(client, state, 0, {"rating": 3}, Origin="http://evil.example").status_code == 403
        assert put(client, state, 0, {"rating": 3}, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert client.post("/api/signout").status_code == 403
        assert httpx.post(url + "/api/signin", json={"token": init.tokens["R3"]},
                          headers={"Origin": "http://evil.example"}).status_code == 403
        answer = client.put(path, content=b"rating=3", headers={"X-CSRF-Token": state["csrf"],
                                                                "Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 415
        assert stored(init.folder) == []
        assert put(client, state, 0, {"rating": 3}, Origin=url).status_code == 200


def test_another_raters_items_bad_values_and_unknown_items_are_refused(rating, serve):
    init = rating(("R3", "R4"))
    with serve(init.folder) as url:
        client, state = sign_in(url, init.tokens["R3"])
        other = {**state, "rater": "R4"}
        assert put(client, other, 0, {"rating": 3}).status_code == 403
        assert client.get("/api/r/R4/items/0").status_code == 403
        assert client.get("/api/r/R4/items/0/contour").status_code == 403
        for body in ({"rating": 0}, {"rating": 6}, {"rating": 2.5}, {"rating": "3"}, {"rating": True},
                     {"quality": 0}, {"quality": 4}, {"rating": 3, "rater": "R4"}, {}, {"rating": None}):
            assert put(client, state, 0, body).status_code == 422, body
        assert put(client, state, 6, {"rating": 3}).status_code == 404  # 3 cases x 2 rounds: 0-5
        assert client.get("/api/r/R3/items/99").status_code == 404
        assert client.get("/api/r/R3/items/-1").status_code == 404
        assert put(client, state, 3, {"rating": 3}).status_code == 409  # round 2 before round 1 is done
        assert client.get("/api/r/R3/items/3/image").status_code == 409
        assert stored(init.folder) == []


def test_round_two_opens_when_round_one_is_complete_and_then_closes_round_one(rating, serve):
    init = rating()
    with serve(init.folder) as url:
        client, state = sign_in(url, init.tokens["R3"])
        for index in range(3):
            assert put(client, state, index, {"rating": index + 1}).status_code == 200
        assert client.get("/api/r/R3/items/3").status_code == 409  # qualities missing: round 2 not open
        for index in range(3):
            assert put(client, state, index, {"quality": 1}).status_code == 200
        assert client.get("/api/state").json()["current_round"] == 2
        assert put(client, state, 0, {"rating": 5}).status_code == 200  # round 1 may still be changed
        second = client.get("/api/r/R3/items/3")
        assert second.status_code == 200
        assert second.json()["case"] == state["items"][0]["case"]  # the same order in every round
        assert put(client, state, 3, {"rating": 2}).status_code == 200
        assert put(client, state, 0, {"rating": 4}).status_code == 409  # closed by the round-2 rating
        assert client.get("/api/r/R3/items/0").status_code == 409
    assert stored(init.folder)[:2] == [("R3", 0, 0, 5, 1), ("R3", 0, 1, 2, 1)]


def raw_get(url: str, path: str, host: str | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    """GET exactly ``path`` (no client-side normalisation of dots or escapes)."""
    parts = urlsplit(url)
    con = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    con.putrequest("GET", path, skip_host=True)
    con.putheader("Host", host or parts.netloc)
    for name, value in (headers or {}).items():
        con.putheader(name, value)
    con.endheaders()
    answer = con.getresponse()
    body = answer.read()
    con.close()
    return answer.status, body


PATH_TRICKS = (
    "/static/../rating.db", "/static/..%2frating.db", "/static/%2e%2e%2ftokens.txt", "/static/..%5ctokens.txt",
    "/rating.db", "/tokens.txt", "/data/0000.bin", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
    "/api/r/R3/items/0/..%2f..%2ftokens.txt", "/api/r/..%2f..%2frating.db/items/0", "/static/index.html/..",
)


def test_path_tricks_reach_no_file(rating, serve):
    init = rating()
    secret = init.tokens["R3"].encode()
    with serve(init.folder) as url:
        client, _ = sign_in(url, init.tokens["R3"])
        cookie = f"hepaseg_session={client.cookies['hepaseg_session']}"
        for path in PATH_TRICKS:
            for headers in ({}, {"Cookie": cookie}):
                status, body = raw_get(url, path, headers=headers)
                assert status in (401, 404), (path, status)
                assert secret not in body and b"SQLite format" not in body and b"root:" not in body


def test_unknown_host_names_are_refused(rating, serve):
    init = rating()
    with serve(init.folder) as url:
        assert raw_get(url, "/signin", host="evil.example")[0] == 400
        assert raw_get(url, "/signin")[0] == 200
        assert raw_get(url, "/signin", host="localhost")[0] == 200
