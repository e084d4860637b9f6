"""The persistent record of a selection: ``<selection>/selection.json``, rewritten atomically.

It holds the configuration the selection was started with, the prepared-data folder, and one record
per finished run-to-budget task (seed, rung, iterations done, best validation score, the run's
validation history so far, timing, device, CPU threads, host). The record is written when the
selection starts, before any training, and a task is recorded only after it finished, each time in
one atomic rename, so a selection killed at any moment (kill -9 included) restarts with exactly the
finished tasks; everything else (which runs continue, the ranking, the winner) is derived from
these records and is therefore the same after a restart. A task cut off mid-way continues from its run's last checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import Config, resume_conflicts
from ..errors import InputError
from ..io.atomic import write_json
from ..model.folder import current_score_keys

STATE = "selection.json"
STATE_FORMAT = 1


@dataclass(frozen=True)
class TaskResult:
    """One finished run-to-budget task: run ``seed`` trained until ``until_iterations``.

    ``best_score`` is the best validation score (``train.validation_metric``) of the run so far (None
    before its first validation); ``history`` its validation history as (iteration, score) pairs; ``seconds``
    the task's wall time on its device; ``started_at`` / ``finished_at`` Unix times; ``threads``
    the CPU threads the task used (on the CPU the results depend on it).
    """

    seed: int
    rung: int
    until_iterations: int
    iterations_done: int
    best_score: float | None
    history: tuple[tuple[int, float], ...]
    seconds: float
    started_at: float
    finished_at: float
    device: str
    threads: int
    host: str

    def to_dict(self) -> dict:
        data = asdict(self)
        data["history"] = [list(p) for p in self.history]
        if self.best_score is not None and math.isnan(self.best_score):
            data["best_score"] = None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TaskResult:
        data = current_score_keys(data)  # a record of hepaseg 0.1 says best_jaccard
        return cls(**{**data, "history": tuple((int(i), float(j)) for i, j in data["history"])})


class SelectionState:
    """The selection record; ``finish`` adds a task and rewrites the file atomically."""

    def __init__(self, path: Path, config: Config, prep_dir: str, created_at: float,
                 results: list[TaskResult]) -> None:
        self.path = path
        self.config = config
        self.prep_dir = prep_dir
        self.created_at = created_at
        self._results = {(r.seed, r.rung): r for r in results}

    @classmethod
    def open(cls, selection_dir: str | Path, config: Config, prep_dir: str | Path, resume: bool) -> SelectionState:
        """Start a new selection record, or (``resume``) reopen the one in ``selection_dir`` if there is one.

        Raises:
            InputError: a selection exists and ``resume`` is False; a corrupt record; or the selection was
                started with another configuration or data folder.
        """
        path = Path(selection_dir) / STATE
        prep = str(Path(prep_dir).resolve())
        if not path.is_file():  # a new selection: its configuration is on disk before any training
            state = cls(path, config, prep, time.time(), [])
            state._write()
            return state
        if not resume:
            raise InputError(path.parent, "holds a selection already; pass --resume to continue it, or choose a new folder")
        state = cls.read(path)
        if resume_conflicts("selection", state.config, config):
            raise InputError(path, "the selection was started with another configuration; resume it with the same "
                                   "--preset/--config (or none)")
        if state.prep_dir != prep:
            raise InputError(path, f"the selection was started on {state.prep_dir}, not {prep}")
        return state

    @classmethod
    def read(cls, path: str | Path) -> SelectionState:
        """Read a selection record (``selection.json``).

        Raises:
            InputError: missing, unreadable, or not a selection record of this format.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != STATE_FORMAT:
                raise InputError(path, f"not a selection record of format {STATE_FORMAT}")
            return cls(path, Config.from_dict(data["config"]), str(data["prep_dir"]), float(data["created_at"]),
                       [TaskResult.from_dict(t) for t in data["tasks"]])
        except FileNotFoundError:
            raise InputError(path, "selection record not found") from None
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(path, f"corrupt selection record ({type(exc).__name__}: {exc})") from None

    def result(self, seed: int, rung: int) -> TaskResult | None:
        """The finished task (seed, rung), or None."""
        return self._results.get((seed, rung))

    def results(self) -> list[TaskResult]:
        """All finished tasks, by rung then seed."""
        return sorted(self._results.values(), key=lambda r: (r.rung, r.seed))

    def finish(self, result: TaskResult) -> None:
        """Record a finished task (replacing an older record of the same task) atomically."""
        self._results[(result.seed, result.rung)] = result
        self._write()

    def _write(self) -> None:
        write_json(self.path, {"format": STATE_FORMAT, "created_at": self.created_at, "prep_dir": self.prep_dir,
                               "config": self.config.to_dict(), "tasks": [r.to_dict() for r in self.results()]})
