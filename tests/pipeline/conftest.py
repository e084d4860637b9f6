"""Fixtures of the study tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """The small synthetic cohort (seed 3), written once per test module."""
    from hepaseg.synth import write_cohort

    return write_cohort(tmp_path_factory.mktemp("cohort"), seed=3, small=True, workers=1, progress=False)
