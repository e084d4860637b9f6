"""A resumable pipeline's record: ``pipeline.json`` in its folder, and the runner of its stages.

Per stage the record holds a fingerprint of what the stage depends on, its wall seconds and its
result facts. ``Stages.run`` skips a finished stage whose fingerprint is unchanged, and starts one
afresh (deleting its stale outputs) when the fingerprint changed; ``Stages.run_together`` does so for
independent stages at once. Used by ``hepaseg study`` and its
ablation (``pipeline.study``, ``pipeline.ablation``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import InputError, Stopped
from ..io.atomic import write_json

STATE = "pipeline.json"


def fingerprint(*parts: Any) -> str:
    """A short SHA-256 of JSON-serialisable parts (16 hex digits)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


class Record:
    """``pipeline.json``: per stage its fingerprint, wall seconds and result facts; written atomically."""

    def __init__(self, folder: Path, config: Config, resume: bool, what: str = "a study") -> None:
        self.path = folder / STATE
        if self.path.exists() and not resume:
            raise InputError(folder, f"already holds {what}; continue it with --resume or choose another folder")
        self.data: dict[str, Any] = {"stages": {}}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise InputError(self.path, f"corrupt study record ({exc})") from exc
        self.data["config"] = config.to_dict()
        folder.mkdir(parents=True, exist_ok=True)
        write_json(self.path, self.data)

    def done(self, stage: str, stamp: str) -> bool:
        entry = self.data["stages"].get(stage)
        return bool(entry and entry.get("finished") and entry.get("fingerprint") == stamp)

    def fingerprint(self, stage: str) -> str | None:
        return self.data["stages"].get(stage, {}).get("fingerprint")

    def facts(self, stage: str) -> dict[str, Any]:
        return self.data["stages"].get(stage, {}).get("facts", {})

    def start(self, stage: str, stamp: str) -> None:
        self.data["stages"][stage] = {"fingerprint": stamp, "finished": False}
        write_json(self.path, self.data)

    def finish(self, stage: str, seconds: float, facts: dict[str, Any]) -> None:
        entry = self.data["stages"][stage]
        entry.update(finished=True, seconds=round(seconds, 3), facts=facts)
        write_json(self.path, self.data)

    def timings(self, but: str) -> dict[str, float | None]:
        """Recorded wall seconds per stage, leaving out stage ``but`` (the one that reports them)."""
        return {name: entry.get("seconds") for name, entry in self.data["stages"].items() if name != but}


Stage = tuple[str, str, Callable[[], dict[str, Any]], tuple[Path, ...]]  # name, fingerprint, work, stale outputs


def _timed(work: Callable[[], dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    """``work()``'s wall seconds and facts."""
    t0 = time.perf_counter()
    facts = work()
    return time.perf_counter() - t0, facts


def failure_text(exc: BaseException) -> str:
    """What went wrong, in words: an ``InputError``'s or ``Stopped``'s own message; for any other
    exception its kind too (``ValueError: ...``), never a bare Python message such as "list index out
    of range"."""
    if isinstance(exc, (InputError, Stopped)):
        return str(exc)
    text = str(exc)
    return f"unexpected {type(exc).__name__}" + (f" ({text})" if text else "")


class Stages:
    """Runs a pipeline's stages against its ``Record``, logging each; ``seconds`` / ``skipped`` say
    what this call did."""

    def __init__(self, record: Record, log: Callable[[str], None] = print) -> None:
        self.record, self.log = record, log
        self.seconds: dict[str, float] = {}
        self.skipped: list[str] = []

    def run(self, name: str, stamp: str, work: Callable[[], dict[str, Any]], stale: tuple[Path, ...] = ()) -> None:
        """Run ``work`` (returning the stage's facts) unless the stage is finished with fingerprint ``stamp``;
        where it ran before with another fingerprint, delete ``stale`` first."""
        if self.record.done(name, stamp):
            self.skipped.append(name)
            self.log(f"[{name}] up to date, skipped")
            return
        self.begin(name, stamp, stale)
        self.log(f"[{name}] running")
        self.seconds[name], facts = _timed(work)
        self.record.finish(name, self.seconds[name], facts)
        self.log(f"[{name}] done in {self.seconds[name]:.0f} s")

    def run_together(self, works: Sequence[Stage], on_error: Callable[[], None] = lambda: None) -> None:
        """``run`` for independent stages at once, each stage's work in a thread of its own (the work
        itself waits on other processes). At the first failure ``on_error`` is called (to stop the
        other stages' work) and the failure is logged in words (``failure_text``); the stages that end
        in an error after it were stopped by it and say so. The first failure is raised once every
        stage has ended."""
        todo = []
        for name, stamp, work, stale in works:
            if self.record.done(name, stamp):
                self.skipped.append(name)
                self.log(f"[{name}] up to date, skipped")
            else:
                self.begin(name, stamp, stale)
                self.log(f"[{name}] running")
                todo.append((name, work))
        if not todo:
            return
        errors: list[BaseException] = []
        with ThreadPoolExecutor(len(todo), thread_name_prefix="stage") as threads:
            running = {threads.submit(_timed, work): name for name, work in todo}
            for future in as_completed(running):
                name = running[future]
                try:
                    seconds, facts = future.result()
                except BaseException as exc:
                    if errors:
                        self.log(f"[{name}] stopped: another stage failed")
                        continue
                    self.log(f"[{name}] failed: {failure_text(exc)}")
                    on_error()
                    errors.append(exc)
                    continue
                self.seconds[name] = seconds
                self.record.finish(name, seconds, facts)
                self.log(f"[{name}] done in {seconds:.0f} s")
        if errors:
            raise errors[0]

    def begin(self, name: str, stamp: str, stale: tuple[Path, ...] = ()) -> None:
        """Mark stage ``name`` as started with ``stamp``; where it ran before with another fingerprint,
        delete ``stale`` first (``run`` and ``run_together`` begin their stages themselves)."""
        if self.record.fingerprint(name) not in (None, stamp):
            for path in stale:  # inputs or configuration changed: start this stage afresh
                shutil.rmtree(path, ignore_errors=True)
        self.record.start(name, stamp)
