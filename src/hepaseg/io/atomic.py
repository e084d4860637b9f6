"""Atomic file writes: write beside the target under a temporary name, then rename.

A reader never sees a half-written result, and a crash leaves the old file (or none).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


# the modes a plainly created file / folder gets; mkstemp / mkdtemp would give 0o600 / 0o700
FILE_MODE = 0o666 & ~_umask()
DIR_MODE = 0o777 & ~_umask()
TEMPORARY_MARK = ".hepaseg-tmp-"  # in every temporary name: .<target name>.hepaseg-tmp-<random><suffix>


def temporary_prefix(target: Path) -> str:
    """The name prefix of ``target``'s temporaries (for ``tempfile.mkstemp`` / ``mkdtemp``)."""
    return f".{target.name}{TEMPORARY_MARK}"


def remove_stale_temporaries(folder: str | Path, lock_file: str) -> int:
    """Remove the temporaries a killed writer left in ``folder`` and its sub-folders; how many.

    Call it only while holding the folder's lock (``io.lock``). Sub-folders holding a ``lock_file``
    are another writer's (a run inside a selection, say): they are left to that writer.
    """
    stale, todo = [], [Path(folder)]
    while todo:
        for path in todo.pop().iterdir():
            if TEMPORARY_MARK in path.name:
                stale.append(path)
            elif path.is_dir() and not path.is_symlink() and not (path / lock_file).exists():
                todo.append(path)
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return len(stale)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that is renamed onto it on success.

    The temporary name keeps the full suffix, lower-cased (``.nii.gz``, ``.nrrd``), so that writers
    which choose the format from the file name still work. On an exception the temporary file is
    removed. A failed write (an ``OSError``, or the ``RuntimeError`` that torch and SimpleITK raise
    when their writes fail) surfaces as ``OSError`` naming ``path`` (not the temporary name) and the cause.
    """
    target = Path(path)
    suffix = "".join(target.suffixes).lower() or ".tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=temporary_prefix(target), suffix=suffix, dir=target.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc
        if isinstance(exc, RuntimeError):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OSError(errno.EIO, f"write failed ({first[:200]})", str(target)) from exc
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def replace_dir(new: Path, target: Path) -> None:
    """Move the finished folder ``new`` to ``target``, replacing an older one.

    Readers never see a half-written folder; a crash between the two renames leaves the old one
    at ``.<name>.old`` and no ``target``, which callers treat as not done yet.
    """
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)
