"""The node's work on a complete series: select it, check its stack, segment it, send the results.

``Worker.segment`` takes a series that has been quiet for ``quiet_seconds`` (``Store.due_series``):

1. the rules (``node.rules``) on its headers: not selected -> ``ignored`` with the first condition
   it failed (a series retried with ``hepaseg node retry`` passes them);
2. the stack check of ``io.dicom.stack_files``: a series that fails it (a missing slice, a tilted or
   mixed stack) waits one more quiet period, then ``failed`` with the reason;
3. the model folder's own prediction without a liver mask (``inference.batch.predict_case``: the
   model's liver model, or the shipped one), into ``results/<series UID>/``; then ``sending``.

``Worker.send`` stores the DICOM objects at the destination (``node.sender``); refused or
unreachable: it stays ``sending`` and is tried again with back-off. Every failure is one line in
the series' ``reason``; nothing here stops the node.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ..inference.batch import one_line, predict_case
from ..inference.outputs import single_outputs
from ..io.dicom import choose_series, stack_files
from .config import RESULTS, SPOOL, NodeConfig
from .rules import select
from .sender import SendError, backoff, send_files
from .store import Store


class Worker:
    """Segments and sends the series of one node (``predictor``: ``inference.predictor.Predictor``)."""

    def __init__(self, folder: str | Path, config: NodeConfig, store: Store, predictor,
                 log: Callable[..., None], debug: bool = False) -> None:
        self.folder, self.config, self.store, self.predictor = Path(folder), config, store, predictor
        self.log, self.debug = log, debug

    def spool(self, uid: str) -> Path:
        return self.folder / SPOOL / uid

    def results(self, uid: str) -> Path:
        return self.folder / RESULTS / uid

    def segment(self, uid: str) -> None:
        """Steps 1-3 of the module docstring for the series ``uid`` (already quiet)."""
        started = time.time()
        row = self.store.get(uid)
        if row is None or not self.store.update(uid, expect="receiving", state="segmenting", started=started):
            return
        try:
            state, reason = self._segment(uid, row)
        except Exception as exc:  # noqa: BLE001 - one bad series must not stop the node
            state, reason = "failed", one_line(exc)
            if self.debug:
                self.log("traceback", series=uid, text=traceback.format_exc())
        if state == "receiving":
            self.store.update(uid, expect="segmenting", state=state, reason=reason, waits=1, last_received=time.time())
        elif self.store.get(uid)["last_received"] > started:  # more instances came meanwhile: once more
            self.store.update(uid, expect="segmenting", state="receiving", reason="")
            return
        else:
            self.store.update(uid, expect="segmenting", state=state, reason=reason, finished=time.time(),
                              next_try=0, attempts=0)
        self.log(state if state != "receiving" else "waiting", series=uid, reason=reason,
                 seconds=round(time.time() - started, 2))

    def _segment(self, uid: str, row: dict) -> tuple[str, str]:
        """(next state, reason) of one series."""
        folder = self.spool(uid)
        series = choose_series(folder, uid)
        if not row["forced"]:
            verdict = select(self.config.rules, [ds for _, ds in series.headers])
            if verdict.selection is None:
                return "ignored", verdict.reason
        try:
            stack_files(folder, series)
        except InputError as exc:
            if not row["waits"]:
                return "receiving", f"waiting one more quiet period: {exc.message}"
            raise
        results = self.results(uid)
        shutil.rmtree(results, ignore_errors=True)
        results.mkdir(parents=True)  # an existing folder: a UID's dots are no file suffix
        outputs = single_outputs(results, None, folder, False, None, self.config.objects)
        summary = predict_case(self.predictor, folder, None, outputs, uid)
        if not any(path.is_file() for path in outputs.dicom_objects.values()):
            return "failed", "no DICOM object could be made: " + "; ".join(summary.objects_left_out)
        return "sending", "; ".join(summary.objects_left_out)

    def send(self, uid: str) -> None:
        """Store the series' DICOM objects at the destination: ``done``, or tried again later."""
        row = self.store.get(uid)
        files = [self.results(uid) / name for name in _object_files(self.config.objects)]
        files = [f for f in files if f.is_file()]
        try:
            sent = send_files(self.config.send_to, files, self.config.ae)
        except (SendError, OSError) as exc:
            attempts = row["attempts"] + 1
            wait = backoff(attempts, *self.config.backoff_seconds)
            self.store.update(uid, expect="sending", attempts=attempts, next_try=time.time() + wait,
                              reason=f"try {attempts} failed: {exc}; next in {wait:.0f} s")
            self.log("send failed", series=uid, why=str(exc), attempts=attempts, retry_in_s=round(wait, 1))
            return
        names = json.dumps(dict(zip((f.name for f in files), sent)))
        if self.store.update(uid, expect="sending", state="done", sent=names, finished=time.time(), reason=""):
            self.log("sent", series=uid, to=self.config.send_to.describe(), objects=[f.name for f in files])

    def clean(self, now: float | None = None) -> None:
        """Remove the spool files and results of series finished ``keep_hours`` ago."""
        for uid in self.store.to_clean(self.config.keep_hours * 3600, now):
            shutil.rmtree(self.spool(uid), ignore_errors=True)
            shutil.rmtree(self.results(uid), ignore_errors=True)
            self.store.update(uid, cleaned=1)
            self.log("cleaned", series=uid)


def _object_files(objects: tuple[str, ...]) -> list[str]:
    """The file names of the DICOM objects ``objects``, in ``OBJECTS`` order (the SEG before the SR)."""
    from ..io.dicom_results import OBJECT_FILES

    return [OBJECT_FILES[kind] for kind in objects]
