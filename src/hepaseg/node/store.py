"""The node's jobs, ``NODE/jobs.db``: SQLite in WAL mode, one row per series seen and one per instance.

A series' ``state``: ``receiving`` (instances arriving; due for the worker once quiet), ``segmenting``,
``sending`` (results made, not yet acknowledged by the destination), ``done``, ``ignored`` (by the
rules; ``reason`` says which condition failed) or ``failed`` (``reason`` in one line). Every change is
one transaction, so a ``kill -9`` leaves each series in a state it resumes from: ``reopen_unfinished``
(at start) turns ``segmenting`` back into ``receiving``; ``sending`` stays ``sending``. An instance
already recorded (the same SOP Instance UID) changes nothing, so a series sent twice is segmented once.
Times are seconds since the epoch (UTC).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError

BUSY_TIMEOUT_MS = 10_000
STATES = ("receiving", "segmenting", "sending", "done", "ignored", "failed")
UNFINISHED = STATES[:3]
SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    uid TEXT PRIMARY KEY, study_uid TEXT, patient_id TEXT, description TEXT, calling_ae TEXT,
    state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', instances INTEGER NOT NULL DEFAULT 0,
    first_received REAL, last_received REAL, started REAL, finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL DEFAULT 0, waits INTEGER NOT NULL DEFAULT 0,
    forced INTEGER NOT NULL DEFAULT 0, sent TEXT NOT NULL DEFAULT '', cleaned INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS instances (sop_uid TEXT PRIMARY KEY, series_uid TEXT NOT NULL, received REAL);
"""


class Store:
    """``jobs.db`` of one node; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                    check_same_thread=False)
        self._con.execute("PRAGMA journal_mode = WAL")
        self._con.execute("PRAGMA synchronous = FULL")
        self._con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._con.row_factory = sqlite3.Row
        self._con.executescript(SCHEMA)

    def close(self) -> None:
        self._con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on an exception."""
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")

    def add_instance(self, sop_uid: str, series_uid: str, header, calling_ae: str, now: float | None = None) -> str:
        """Record a received instance (``header``: its dataset): ``"new"`` where it opened the series (its
        first instance, or a new one of a series in another state than ``receiving`` / ``segmenting``,
        which opens it again), ``"more"`` for another instance, ``""`` where it was recorded before."""
        now = time.time() if now is None else now
        with self._write() as con:
            if con.execute("INSERT OR IGNORE INTO instances VALUES (?, ?, ?)", (sop_uid, series_uid, now)).rowcount == 0:
                return ""
            row = con.execute("SELECT state FROM series WHERE uid = ?", (series_uid,)).fetchone()
            count = con.execute("SELECT COUNT(*) FROM instances WHERE series_uid = ?", (series_uid,)).fetchone()[0]
            if row is None:
                con.execute("INSERT INTO series (uid, study_uid, patient_id, description, calling_ae, state, instances, "
                            "first_received, last_received) VALUES (?, ?, ?, ?, ?, 'receiving', ?, ?, ?)",
                            (series_uid, str(header.get("StudyInstanceUID", "")), str(header.get("PatientID", "")),
                             str(header.get("SeriesDescription", "")), calling_ae, count, now, now))
                return "new"
            opens = row["state"] not in ("receiving", "segmenting")
            con.execute("UPDATE series SET instances = ?, last_received = ?, calling_ae = ?, waits = 0, cleaned = 0"
                        + (", state = 'receiving', reason = '', forced = 0" if opens else "") + " WHERE uid = ?",
                        (count, now, calling_ae, series_uid))
            return "new" if opens else "more"

    def due_series(self, quiet_seconds: float, now: float | None = None) -> list[str]:
        """Series ``receiving`` whose last instance came at least ``quiet_seconds`` ago, oldest first."""
        now = time.time() if now is None else now
        rows = self._con.execute("SELECT uid FROM series WHERE state = 'receiving' AND last_received <= ? "
                                 "ORDER BY last_received", (now - quiet_seconds,)).fetchall()
        return [r["uid"] for r in rows]

    def due_sending(self, now: float | None = None) -> list[str]:
        """Series ``sending`` whose next try is due, oldest first."""
        now = time.time() if now is None else now
        rows = self._con.execute("SELECT uid FROM series WHERE state = 'sending' AND next_try <= ? "
                                 "ORDER BY finished", (now,)).fetchall()
        return [r["uid"] for r in rows]

    def update(self, uid: str, expect: str | None = None, **fields) -> bool:
        """Set ``fields`` of series ``uid`` (only while its state is ``expect``, where given); whether it did."""
        names = ", ".join(f"{k} = ?" for k in fields)
        where, args = ("uid = ? AND state = ?", (uid, expect)) if expect else ("uid = ?", (uid,))
        with self._write() as con:
            return con.execute(f"UPDATE series SET {names} WHERE {where}", (*fields.values(), *args)).rowcount == 1

    def reopen_unfinished(self) -> int:
        """At start: series a stopped worker left ``segmenting`` are ``receiving`` again; how many."""
        with self._write() as con:
            return con.execute("UPDATE series SET state = 'receiving' WHERE state = 'segmenting'").rowcount

    def retry(self, uid: str) -> str:
        """A ``failed`` or ``ignored`` series once more (an ignored one past the rules); its old state.

        Raises:
            InputError: no such series, one in another state, or one whose files were removed.
        """
        row = self.get(uid)
        if row is None:
            raise InputError(uid, "no such series in this node (hepaseg node status lists them)")
        if row["state"] not in ("failed", "ignored"):
            raise InputError(uid, f"series is {row['state']}; only a failed or ignored series can be retried")
        if row["cleaned"]:
            raise InputError(uid, "its files were removed from the spool; send the series again")
        self.update(uid, state="receiving", reason="", waits=0, attempts=0, next_try=0,
                    forced=int(row["state"] == "ignored"), last_received=0)
        return row["state"]

    def get(self, uid: str) -> dict | None:
        row = self._con.execute("SELECT * FROM series WHERE uid = ?", (uid,)).fetchone()
        return None if row is None else dict(row)

    def rows(self) -> list[dict]:
        """Every series seen, in the order first received."""
        return [dict(r) for r in self._con.execute("SELECT * FROM series ORDER BY first_received, uid")]

    def to_clean(self, keep_seconds: float, now: float | None = None) -> list[str]:
        """Series in a final state for at least ``keep_seconds`` whose spool files are still there."""
        now = time.time() if now is None else now
        rows = self._con.execute(f"SELECT uid FROM series WHERE state NOT IN ({', '.join('?' * len(UNFINISHED))}) "
                                 "AND cleaned = 0 AND finished <= ?", (*UNFINISHED, now - keep_seconds)).fetchall()
        return [r["uid"] for r in rows]


def open_store(folder: str | Path) -> Store:
    """The store of a node folder (created where missing)."""
    from .config import DATABASE

    return Store(Path(folder) / DATABASE)
