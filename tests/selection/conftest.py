"""The selection tests' phantom cache and their uninterrupted reference study, made once for the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from .tiny_selection import tiny_config


@pytest.fixture(scope="package")
def prep(tmp_path_factory, phantom_cache) -> Path:
    return phantom_cache(tmp_path_factory.mktemp("select") / "prep")


@pytest.fixture(scope="package")
def study(prep):
    """The uninterrupted reference study, in this process, one CPU thread per run."""
    from hepaseg.selection.executors import LocalExecutor
    from hepaseg.selection.halving import run_selection

    out = prep.parent / "study"
    result = run_selection(prep, out, tiny_config(), LocalExecutor(["cpu"], threads=1), progress=False)
    return out, result
