"""The executors (``selection.executors``): a local Ray instance and local worker processes run the
tiny selection to the same ranking, winner and histories as the reference study in this process."""

from __future__ import annotations

import pytest

from hepaseg.selection.executors import LocalExecutor, RayExecutor
from hepaseg.selection.halving import run_selection

from .tiny_selection import records, tiny_config


def test_ray_study_gives_the_same_ranking_and_winner(study, prep):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'hepaseg[cluster]')")
    out, reference = study
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        executor = RayExecutor(cpus_per_task=1)
        result = run_selection(prep, prep.parent / "ray", tiny_config(), executor, progress=False)
    finally:
        ray.shutdown()
    assert (result.winner, result.ranking) == (reference.winner, reference.ranking)
    assert result.best_jaccard == reference.best_jaccard
    ours, theirs = records(prep.parent / "ray"), records(out)
    assert {k: t["history"] for k, t in ours.items()} == {k: t["history"] for k, t in theirs.items()}


def test_local_worker_processes_give_the_same_study(study, prep):
    out, reference = study
    with LocalExecutor(["cpu", "cpu"], threads=1) as executor:
        result = run_selection(prep, prep.parent / "pool", tiny_config(), executor, progress=False)
    assert (result.winner, result.ranking) == (reference.winner, reference.ranking)
    ours, theirs = records(prep.parent / "pool"), records(out)
    assert {k: t["history"] for k, t in ours.items()} == {k: t["history"] for k, t in theirs.items()}
