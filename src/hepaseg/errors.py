"""Errors that reach the user as one line (``path: problem``) and exit code 2."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input from the user: a file that is missing, unreadable or inconsistent.

    The CLI prints ``error: <path>: <message>`` and exits with code 2.
    """

    def __init__(self, path: str | Path | None, message: str) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)

    def __reduce__(self):
        # Keep (path, message) across process boundaries (worker pools pickle exceptions).
        return (type(self), (self.path, self.message))


class Stopped(KeyboardInterrupt):
    """A long command stopped by a signal (Ctrl-C: SIGINT, or SIGTERM from a scheduler or
    ``docker stop``) after it saved what it needs to resume. The CLI exits with 128 + ``signum``."""

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.signum, str(self)))
