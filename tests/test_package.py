"""The public API: every exported name resolves, and ``import hepaseg`` stays light."""

from __future__ import annotations

import subprocess
import sys

import hepaseg


def test_every_exported_name_resolves():
    missing = [name for name in hepaseg.__all__ if getattr(hepaseg, name, None) is None]
    assert missing == []


def test_import_loads_no_heavy_library():
    code = ("import sys, hepaseg; "
            "print(','.join(m for m in ('torch', 'cc3d', 'nibabel', 'SimpleITK', 'matplotlib') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
