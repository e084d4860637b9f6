"""Debian's dicom3tools validator ``dciodvfy``, which checks a DICOM object against the standard's
IODs independently of the library that wrote it: warnings are allowed (printed), errors are not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def assert_valid(path: Path, iod: str) -> None:
    """``dciodvfy path`` recognises the IOD ``iod`` (e.g. "Segmentation") and prints no "Error" line;
    the test is skipped, saying so, where dciodvfy is not installed."""
    dciodvfy = shutil.which("dciodvfy")
    if dciodvfy is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) not installed: the object is not checked by an "
                    "independent validator here; as root `make test` installs it, or `apt-get install dicom3tools`")
    done = subprocess.run([dciodvfy, str(path)], check=False, capture_output=True, text=True, timeout=60)
    lines = (done.stdout + done.stderr).splitlines()
    print(f"dciodvfy {path.name}:", *lines, sep="\n  ")
    assert iod in lines, lines  # it recognised the IOD it checked
    errors = [line for line in lines if line.startswith("Error")]
    assert errors == [], "\n".join(lines)
