"""The rating folder's database, ``rating.db``: SQLite in WAL mode.

Tables: ``meta`` (the protocol's settings, JSON values), ``raters`` (name, SHA-256 of the sign-in
token, whether the rater is simulated), ``cases`` (the prepared image of each case), ``contours``
(one per case and algorithm: its mask file and the slices of its largest lesions), ``items`` (the
assignment of ``protocol.assign``), ``ratings`` (the current rating and quality of each item, with
the time of the last change), ``events`` (every rating given, in order: the audit trail) and
``sessions`` (signed-in browsers: SHA-256 of the session id, rater, CSRF token).

Every call opens its own connection (so the server's worker threads share nothing) and every
change is one transaction, committed before the call returns (``synchronous=FULL``): a rating is
on disk the moment it is acknowledged. Concurrent writers wait for each other (``busy_timeout``);
WAL lets readers go on while one writes. Times are UTC, ISO 8601 to the second.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .protocol import Item

DB_FILE = "rating.db"
BUSY_TIMEOUT_MS = 30_000

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE raters (name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, simulated INTEGER NOT NULL DEFAULT 0);
CREATE TABLE cases (id TEXT PRIMARY KEY, image_file TEXT NOT NULL, info TEXT NOT NULL);
CREATE TABLE contours (id INTEGER PRIMARY KEY, case_id TEXT NOT NULL REFERENCES cases(id),
    algorithm TEXT NOT NULL, mask_file TEXT NOT NULL, lesion_slices TEXT NOT NULL, UNIQUE (case_id, algorithm));
CREATE TABLE items (rater TEXT NOT NULL REFERENCES raters(name), round INTEGER NOT NULL, position INTEGER NOT NULL,
    contour_id INTEGER NOT NULL REFERENCES contours(id), PRIMARY KEY (rater, round, position));
CREATE TABLE ratings (rater TEXT NOT NULL, round INTEGER NOT NULL, position INTEGER NOT NULL,
    rating INTEGER CHECK (rating BETWEEN 1 AND 5), quality INTEGER CHECK (quality BETWEEN 1 AND 3),
    rated_at TEXT NOT NULL, PRIMARY KEY (rater, round, position),
    FOREIGN KEY (rater, round, position) REFERENCES items (rater, round, position));
CREATE TABLE events (id INTEGER PRIMARY KEY, rater TEXT NOT NULL, round INTEGER NOT NULL, position INTEGER NOT NULL,
    field TEXT NOT NULL, value INTEGER NOT NULL, at TEXT NOT NULL);
CREATE TABLE sessions (id_hash TEXT PRIMARY KEY, rater TEXT NOT NULL REFERENCES raters(name),
    csrf TEXT NOT NULL, created TEXT NOT NULL);
"""


def digest(secret: str) -> str:
    """SHA-256 hex of a token or session id; the database keeps only these (the secrets are
    random 192-bit strings, so a fast hash is enough)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Contour:
    """One algorithm's contour of one case, as ``rate init`` prepared it."""

    id: int
    case: str
    algorithm: str
    mask_file: str  # relative to the rating folder
    lesion_slices: tuple[int, ...]  # slice indices of the largest lesions, largest first


@dataclass(frozen=True)
class RatedItem:
    """An item with what its rater gave so far (None: not yet)."""

    rater: str
    round: int
    position: int
    case: str
    algorithm: str
    contour_id: int
    rating: int | None
    quality: int | None
    rated_at: str | None

    @property
    def complete(self) -> bool:
        return self.rating is not None and self.quality is not None


class Store:
    """The database of one rating folder (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection; with ``write`` one ``BEGIN IMMEDIATE`` transaction, committed on success."""
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            con.execute("PRAGMA foreign_keys = ON")
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA synchronous = FULL")
            if not write:
                yield con
                return
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    # --- creation (rate init) ------------------------------------------------------------------

    def create(self, meta: dict[str, Any], raters: dict[str, str], cases: dict[str, tuple[str, dict]],
               contours: Sequence[Contour], items: Sequence[Item]) -> None:
        """Write a new database: ``raters`` name -> token hash, ``cases`` id -> (image file, info)."""
        con = sqlite3.connect(self.path, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode = WAL")
            con.executescript(SCHEMA)
        finally:
            con.close()
        contour_id = {(c.case, c.algorithm): c.id for c in contours}
        with self.connect(write=True) as con:
            con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
            con.executemany("INSERT INTO raters (name, token_hash) VALUES (?, ?)", raters.items())
            con.executemany("INSERT INTO cases VALUES (?, ?, ?)",
                            [(cid, file, json.dumps(info)) for cid, (file, info) in cases.items()])
            con.executemany("INSERT INTO contours VALUES (?, ?, ?, ?, ?)",
                            [(c.id, c.case, c.algorithm, c.mask_file, json.dumps(list(c.lesion_slices)))
                             for c in contours])
            con.executemany("INSERT INTO items VALUES (?, ?, ?, ?)",
                            [(i.rater, i.round, i.position, contour_id[(i.case, i.algorithm)]) for i in items])

    # --- reading -------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        with self.connect() as con:
            return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}

    def raters(self) -> dict[str, bool]:
        """Rater name -> simulated."""
        with self.connect() as con:
            return {n: bool(s) for n, s in con.execute("SELECT name, simulated FROM raters ORDER BY name")}

    def case_info(self, case_id: str) -> tuple[str, dict[str, Any]]:
        """(image file, info) of a case."""
        with self.connect() as con:
            file, info = con.execute("SELECT image_file, info FROM cases WHERE id = ?", (case_id,)).fetchone()
        return file, json.loads(info)

    def contours(self, contour_id: int | None = None) -> list[Contour]:
        """Every contour (or the one with ``contour_id``), by id."""
        query = "SELECT * FROM contours" + (" WHERE id = ?" if contour_id is not None else "") + " ORDER BY id"
        with self.connect() as con:
            rows = con.execute(query, () if contour_id is None else (contour_id,)).fetchall()
        return [Contour(r[0], r[1], r[2], r[3], tuple(json.loads(r[4]))) for r in rows]

    def contour(self, contour_id: int) -> Contour:
        (found,) = self.contours(contour_id)
        return found

    def items(self, rater: str | None = None) -> list[RatedItem]:
        """The items of one rater (or of all), in the order shown, with their ratings."""
        query = ("SELECT i.rater, i.round, i.position, c.case_id, c.algorithm, c.id, r.rating, r.quality, r.rated_at "
                 "FROM items i JOIN contours c ON c.id = i.contour_id LEFT JOIN ratings r "
                 "ON r.rater = i.rater AND r.round = i.round AND r.position = i.position "
                 + ("WHERE i.rater = ? " if rater is not None else "")
                 + "ORDER BY i.rater, i.round, i.position")
        with self.connect() as con:
            rows = con.execute(query, (rater,) if rater is not None else ()).fetchall()
        return [RatedItem(*row) for row in rows]

    # --- ratings -------------------------------------------------------------------------------

    def rate(self, rater: str, round_: int, position: int, rating: int | None = None,
             quality: int | None = None, at: str | None = None) -> None:
        """Set the rating and/or quality of one item (None: leave as is), committed at once."""
        at = at or now()
        given = [(f, v) for f, v in (("rating", rating), ("quality", quality)) if v is not None]
        with self.connect(write=True) as con:
            con.execute("INSERT INTO ratings (rater, round, position, rating, quality, rated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (rater, round, position) DO UPDATE SET "
                        "rating = coalesce(excluded.rating, rating), quality = coalesce(excluded.quality, quality), "
                        "rated_at = excluded.rated_at", (rater, round_, position, rating, quality, at))
            con.executemany("INSERT INTO events (rater, round, position, field, value, at) VALUES (?, ?, ?, ?, ?, ?)",
                            [(rater, round_, position, f, v, at) for f, v in given])

    def mark_simulated(self, rater: str) -> None:
        with self.connect(write=True) as con:
            con.execute("UPDATE raters SET simulated = 1 WHERE name = ?", (rater,))

    # --- sign-in -------------------------------------------------------------------------------

    def rater_for_token(self, token: str) -> str | None:
        with self.connect() as con:
            row = con.execute("SELECT name FROM raters WHERE token_hash = ?", (digest(token),)).fetchone()
        return row[0] if row else None

    def open_session(self, rater: str) -> tuple[str, str]:
        """A new session: (session id for the cookie, CSRF token); only the id's hash is stored."""
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.connect(write=True) as con:
            con.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (digest(session), rater, csrf, now()))
        return session, csrf

    def session(self, session: str) -> tuple[str, str] | None:
        """(rater, CSRF token) of a session id, or None."""
        with self.connect() as con:
            row = con.execute("SELECT rater, csrf FROM sessions WHERE id_hash = ?", (digest(session),)).fetchone()
        return (row[0], row[1]) if row else None

    def close_session(self, session: str) -> None:
        with self.connect(write=True) as con:
            con.execute("DELETE FROM sessions WHERE id_hash = ?", (digest(session),))
