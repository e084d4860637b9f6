"""Atomic writes (``io.atomic``): no temporary file left behind, normal permissions."""

from __future__ import annotations

import os

import pytest

from hepaseg.io.atomic import FILE_MODE, atomic_path, write_text


def test_atomic_writes_leave_no_temporary_and_use_normal_permissions(tmp_path):
    write_text(tmp_path / "a.txt", "x")
    assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == FILE_MODE
    with pytest.raises(OSError) as failed:  # a writer's RuntimeError (torch, SimpleITK) names the target
        with atomic_path(tmp_path / "b.nii.gz") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert failed.value.filename == str(tmp_path / "b.nii.gz") and "crash while writing" in failed.value.strerror
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
