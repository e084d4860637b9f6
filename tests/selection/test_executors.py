"""The executors (``selection.executors``): a local Ray instance and local worker processes run the
tiny selection to the same ranking, winner and histories as the reference study in this process."""

from __future__ import annotations

import pytest

from hepaseg.selection.executors import LocalExecutor, RayExecutor, SlotPool
from hepaseg.selection.halving import run_selection

from .tiny_selection import records, tiny_config


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module's Ray tests (started and shut down once)."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'hepaseg[cluster]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_study_gives_the_same_ranking_and_winner(local_ray, study, prep):
    out, reference = study
    result = run_selection(prep, prep.parent / "ray", tiny_config(), RayExecutor(cpus_per_task=1), progress=False)
    assert (result.winner, result.ranking) == (reference.winner, reference.ranking)
    assert result.best_score == reference.best_score
    ours, theirs = records(prep.parent / "ray"), records(out)
    assert {k: t["history"] for k, t in ours.items()} == {k: t["history"] for k, t in theirs.items()}


def test_local_worker_processes_give_the_same_study(study, prep):
    out, reference = study
    with LocalExecutor(["cpu", "cpu"], threads=1) as executor:
        result = run_selection(prep, prep.parent / "pool", tiny_config(), executor, progress=False)
    assert (result.winner, result.ranking) == (reference.winner, reference.ranking)
    ours, theirs = records(prep.parent / "pool"), records(out)
    assert {k: t["history"] for k, t in ours.items()} == {k: t["history"] for k, t in theirs.items()}


def _stopped_once(marker: str, device: str, threads: int) -> str:
    """A task whose first attempt is stopped by SIGTERM (as a preempted worker's run is)."""
    from pathlib import Path

    from hepaseg.errors import Stopped

    if not Path(marker).exists():
        Path(marker).write_text("stopped once")
        raise Stopped(15, "stopped at iteration 3; checkpoint in run/checkpoint.pt (continue with --resume)")
    return f"done on {device} with {threads} thread(s)"


def test_a_ray_task_stopped_by_sigterm_is_retried(local_ray, tmp_path):
    with RayExecutor(cpus_per_task=1) as executor:
        results = list(executor.map_unordered(_stopped_once, [str(tmp_path / "marker")]))
    assert results == ["done on cpu with 1 thread(s)"]
    assert (tmp_path / "marker").read_text() == "stopped once"


def _clock_after(seconds: float, device: str, threads: int) -> int:
    """A task that waits ``seconds``, then reads the worker's monotonic clock (ns)."""
    import time

    time.sleep(seconds)
    return time.monotonic_ns()


def _fails(message: str, device: str, threads: int) -> None:
    raise ValueError(message)


def test_a_free_slot_takes_the_queued_task_of_the_highest_priority():
    with SlotPool(["cpu"], threads=1) as pool:
        first = pool.submit(_clock_after, 0.5, priority=5)  # holds the one slot while the others queue
        low, high, same = (pool.submit(_clock_after, 0.0, priority=p) for p in (2, 0, 2))
        cancelled = pool.submit(_clock_after, 0.0, priority=1)
        assert cancelled.cancel()
        order = sorted((f.result(), name) for name, f in (("first", first), ("low", low), ("high", high),
                                                           ("same", same)))
    assert [name for _, name in order] == ["first", "high", "low", "same"]  # equal priority: first queued first
    assert cancelled.cancelled()


def test_a_task_error_reaches_its_caller_and_the_pool_goes_on():
    with SlotPool(["cpu", "cpu"], threads=1) as pool:
        with pytest.raises(ValueError, match="bad case"):
            pool.submit(_fails, "bad case").result()
        assert len(list(pool.executor(priority=3).map_unordered(_clock_after, [0.0, 0.0]))) == 2
        assert pool.slots == 2
