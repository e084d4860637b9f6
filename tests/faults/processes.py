"""Helpers of the fault-injection tests (not a test module): hepaseg in a subprocess, killed or
signalled at a chosen moment, and the files two runs must agree on."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hepaseg.io.atomic import TEMPORARY_MARK

DEADLINE_S = 120.0  # no single wait of these tests lasts longer
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same CPU threads in every run: bit-identical results


def hepaseg(*args: str) -> list[str]:
    return [sys.executable, "-m", "hepaseg", *args]


def run(*args: str) -> subprocess.CompletedProcess:
    """Run ``hepaseg args`` to its end (at most ``DEADLINE_S``)."""
    return subprocess.run(hepaseg(*args), capture_output=True, text=True, env=ENV, timeout=DEADLINE_S)


def interrupt_when(args: list[str], ready: Callable[[], bool], signum: int = signal.SIGKILL) -> subprocess.CompletedProcess:
    """Start ``hepaseg args``, send ``signum`` as soon as ``ready()`` holds, and wait for the end.

    Returns the finished process with its output; raises AssertionError if it ended, or the
    deadline passed, before ``ready()`` held.
    """
    proc = subprocess.Popen(hepaseg(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not ready():
            assert proc.poll() is None, f"ended before the fault point: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "the fault point was not reached in time"
            time.sleep(0.005)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def digests(folder: Path, pattern: str) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` matching ``pattern`` (relative paths as keys), hidden
    files (temporaries, the lock) left out."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob(pattern)) if p.is_file() and not p.name.startswith(".")}


def temporaries(folder: Path) -> list[str]:
    """What is left under a temporary name of ``io.atomic`` below ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(f"*{TEMPORARY_MARK}*"))
