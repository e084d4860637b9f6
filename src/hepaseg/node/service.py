"""``hepaseg node run``: the foreground service (receive, select, segment, send), and its log.

Three parts run side by side, so receiving never waits for segmentation: the Storage SCP's
association threads (``node.scp``), a segmenting thread and a sending thread (``node.worker``),
polling the store every ``POLL_S``. At start the node takes its folder's lock (one node per
folder), resumes every unfinished job (``Store.reopen_unfinished``) and loads the model before it
listens. SIGTERM or Ctrl-C stops it: the SCP closes, a send in progress finishes, a segmentation in
progress is left to the next start; exit code 128 + the signal's number. Every event is one log line
on stderr, ``time event key=value ...`` (``json_logs``: one JSON object a line).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from ..io.lock import folder_lock
from .config import read_node
from .scp import StorageSCP
from .store import UNFINISHED, open_store
from .worker import Worker

POLL_S = 0.5
STOP_GRACE_S = 5.0  # how long a stop waits for the segmenting thread to finish its series


class EventLog:
    """``log(event, **fields)``: one line per event on ``stream`` (thread-safe)."""

    def __init__(self, json_lines: bool = False, stream: TextIO | None = None) -> None:
        self.json_lines, self.stream = json_lines, stream or sys.stderr
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        if self.json_lines:
            line = json.dumps({"time": now, "event": event, **fields}, default=str)
        else:
            line = " ".join([now, event] + [f"{k}={_shown(v)}" for k, v in fields.items() if v not in ("", None)])
        with self._lock:
            print(line, file=self.stream, flush=True)


def _shown(value: object) -> str:
    text = str(value).replace("\n", " | ")
    return json.dumps(text) if " " in text or not text else text


def run_node(folder: str | Path, json_logs: bool = False, debug: bool = False,
             stop: threading.Event | None = None) -> int:
    """Run the node in ``folder`` until ``stop`` is set or SIGTERM / SIGINT arrives; the exit code.

    Raises:
        InputError: not a node folder, a bad configuration or model, or the folder in use.
        OSError: the port cannot be bound.
    """
    from ..inference.predictor import Predictor

    config = read_node(folder)
    log = EventLog(json_logs)
    stop = stop or threading.Event()
    caught: list[int] = []
    previous = _on_signals(lambda signum: (caught.append(signum), stop.set()))
    try:
        with folder_lock(folder):
            store = open_store(folder)
            resumed = store.reopen_unfinished()
            if not config.local_only:
                log("warning", why=f"listening on {config.host}, not only on this machine: check --allow")
            worker = Worker(folder, config, store, Predictor.load(config.model), log, debug)
            scp = StorageSCP(folder, config, store, log)
            scp.start()
            log("listening", ae=config.ae, host=config.host, port=config.port, send_to=config.send_to.describe(),
                resumed=resumed, waiting_to_send=len(store.due_sending(float("inf"))))
            segmenting = threading.Thread(target=_loop, args=(stop, lambda: _segment_due(worker)),
                                          name="hepaseg-segment", daemon=True)
            sending = threading.Thread(target=_loop, args=(stop, lambda: _send_due(worker, stop)),
                                       name="hepaseg-send", daemon=True)
            segmenting.start()
            sending.start()
            stop.wait()
            scp.stop()
            sending.join()
            segmenting.join(STOP_GRACE_S)
            log("stopped", signal=signal.Signals(caught[0]).name if caught else "",
                unfinished=len([r for r in store.rows() if r["state"] in UNFINISHED]))
    finally:
        _restore(previous)
    return 128 + caught[0] if caught else 0


def _loop(stop: threading.Event, step) -> None:
    """Call ``step`` until ``stop``; wait ``POLL_S`` after a step that found nothing to do."""
    while not stop.is_set():
        if not step():
            stop.wait(POLL_S)


def _segment_due(worker: Worker) -> bool:
    """Segment the oldest quiet series and clean the spool; whether there was a series."""
    worker.clean()
    due = worker.store.due_series(worker.config.quiet_seconds)
    if due:
        worker.segment(due[0])
    return bool(due)


def _send_due(worker: Worker, stop: threading.Event) -> bool:
    """Send every series whose try is due; whether there was one."""
    due = worker.store.due_sending()
    for uid in due:
        if stop.is_set():
            break
        worker.send(uid)
    return bool(due)


def _on_signals(handler) -> dict:
    """Route SIGTERM and SIGINT to ``handler(signum)`` (main thread only); the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, lambda s, _frame: handler(s))
    return previous


def _restore(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)

