"""One writer per folder: an advisory lock held while a command writes into it.

``folder_lock(folder)`` takes an exclusive ``flock`` on ``<folder>/.hepaseg.lock`` and writes the
holder's process id and start time into it; the file is removed when the block ends. The kernel
drops the lock when the holding process exits in any way (kill -9 included), so a crash never
leaves a stale lock: the file it leaves behind is simply locked again by the next process. A
second process gets ``InputError(folder, "in use by process <pid> since <time>")``. Readers
(``report``, ``evaluate`` reading a finished folder) take no lock. Taking the lock removes the
temporaries a killed writer left in the folder (``atomic.remove_stale_temporaries``).

Locks are per open file: one process must not lock the same folder twice (nested stages lock
their own sub-folders: the study its folder, A2 its run folder, and so on).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from .atomic import remove_stale_temporaries

LOCK_FILE = ".hepaseg.lock"


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the write lock of ``folder`` (created if missing) for the duration of the block.

    Raises:
        InputError: another process holds the lock (its pid and since when), or the folder cannot
            be created.
    """
    folder = Path(folder)
    path = folder / LOCK_FILE
    fd = _acquire(folder, path)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        remove_stale_temporaries(folder, LOCK_FILE)
        yield folder
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # while still holding it: a newcomer then locks a new file
        os.close(fd)


def _acquire(folder: Path, path: Path) -> int:
    """An open descriptor of ``path`` holding its exclusive lock, on the file that ``path`` still names."""
    while True:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(folder, f"cannot create the folder's lock ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise InputError(folder, f"in use by {holder}") from None
        except OSError as exc:  # ENOLCK, EOPNOTSUPP: a file system without flock
            os.close(fd)
            raise InputError(folder, f"cannot lock the folder ({exc.strerror}; a file system without flock?)") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder before us removed the file after we opened it: lock the new one


def _holder(fd: int) -> str:
    """``process <pid> since <time>`` from the lock file's text (written by the holder)."""
    text = os.pread(fd, 200, 0).decode(errors="replace").split(maxsplit=1)
    if len(text) == 2:
        return f"process {text[0]} since {text[1].strip()}"
    return "another process"
