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


def _file_mode() -> int:
    """The mode a plainly created file gets (0o666 less the umask); mkstemp would give 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()
TEMPORARY_MARK = ".hepaseg-tmp-"  # in every temporary name: .<target name>.hepaseg-tmp-<random><suffix>


def temporary_prefix(target: Path) -> str:
    """The name prefix of ``target``'s temporaries (for ``tempfile.mkstemp`` / ``mkdtemp``)."""
    return f".{target.name}{TEMPORARY_MARK}"


def remove_stale_temporaries(folder: str | Path) -> int:
    """Remove the temporaries a killed writer left in ``folder`` and its sub-folders; how many.

    Call it only while holding the folder's lock (``io.lock``), so that no live writer's file goes.
    """
    stale = [p for p in Path(folder).rglob(f".*{TEMPORARY_MARK}*") if TEMPORARY_MARK in p.name]
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
