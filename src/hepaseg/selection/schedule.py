"""Successive-halving schedule over seeds (METHOD.md section 6, algorithm A1): pure arithmetic.

A schedule is a tuple of rungs. Rung ``k`` trains ``runs`` runs until they have done
``iterations`` iterations in total; runs continue from their checkpoints, so rung ``k`` costs
``runs * (iterations - previous rung's iterations)``. After each rung the runs are ranked by
their best validation score so far and the best ``next rung's runs`` continue.

The budgets follow hpbandster (``HyperBand.__init__`` / ``get_next_iteration``):
``s_max = floor(log_eta(max / min))``; rung budgets ``max * eta^-k`` for ``k = s_max .. 0``;
bracket ``s`` starts ``n0 = floor((s_max + 1) / (s + 1)) * eta^s`` configurations and keeps
``max(floor(n0 * eta^-i), 1)`` of them at rung ``i``. A1 is the most aggressive bracket
(``s = s_max``) with ``n0`` set to the configured number of runs: for the paper's defaults
16 @ 5k, 8 @ 10k, 4 @ 20k, 2 @ 40k, 1 @ 80k = 240k iterations, 3 x a single 80k run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..checks import select_problems
from ..config import SelectConfig
from ..errors import InputError


@dataclass(frozen=True)
class Rung:
    """One rung: ``runs`` runs are trained until ``iterations`` (counted from iteration 0)."""

    index: int
    runs: int
    iterations: int
    start_iterations: int  # where the runs of this rung continue from (the previous rung's budget)

    @property
    def cost(self) -> int:
        """Iterations this rung trains in total (runs continue from their checkpoints)."""
        return self.runs * (self.iterations - self.start_iterations)


Schedule = tuple[Rung, ...]


def _check(min_iterations: int, max_iterations: int, eta: int) -> None:
    problems = select_problems(SelectConfig(runs=1, min_iterations=min_iterations, max_iterations=max_iterations,
                                            eta=eta))
    if problems:
        raise InputError(None, "select config: " + "; ".join(problems))


def max_bracket(min_iterations: int, max_iterations: int, eta: int) -> int:
    """``s_max = floor(log_eta(max / min))``, in integer arithmetic (no rounding surprises)."""
    _check(min_iterations, max_iterations, eta)
    s = 0
    while min_iterations * eta ** (s + 1) <= max_iterations:
        s += 1
    return s


def budgets(min_iterations: int, max_iterations: int, eta: int) -> tuple[int, ...]:
    """Rung budgets ``round(max * eta^-k)`` for ``k = s_max .. 0`` (ascending)."""
    s_max = max_bracket(min_iterations, max_iterations, eta)
    return tuple(round(max_iterations / eta**k) for k in range(s_max, -1, -1))


def bracket(s: int, n0: int, min_iterations: int, max_iterations: int, eta: int) -> Schedule:
    """Successive halving with ``n0`` starting runs over the last ``s + 1`` budgets."""
    if n0 < 1:
        raise InputError(None, f"select config: runs must be >= 1, got {n0}")
    steps = budgets(min_iterations, max_iterations, eta)[-(s + 1):]
    rungs, start = [], 0
    for i, iterations in enumerate(steps):
        rungs.append(Rung(i, max(n0 // eta**i, 1), iterations, start))
        start = iterations
    return tuple(rungs)


def successive_halving(config: SelectConfig) -> Schedule:
    """The A1 schedule: the most aggressive bracket, starting ``config.runs`` runs."""
    s_max = max_bracket(config.min_iterations, config.max_iterations, config.eta)
    return bracket(s_max, config.runs, config.min_iterations, config.max_iterations, config.eta)


def hyperband_brackets(min_iterations: int, max_iterations: int, eta: int) -> tuple[Schedule, ...]:
    """All Hyperband brackets ``s = s_max .. 0`` as hpbandster computes them (for comparison)."""
    s_max = max_bracket(min_iterations, max_iterations, eta)
    return tuple(bracket(s, (s_max + 1) // (s + 1) * eta**s, min_iterations, max_iterations, eta)
                 for s in range(s_max, -1, -1))


def total_iterations(schedule: Schedule) -> int:
    """Iterations the whole schedule trains (runs continue from their checkpoints)."""
    return sum(r.cost for r in schedule)


def makespan_iterations(schedule: Schedule, workers: int) -> int:
    """Iterations on the critical path with ``workers`` parallel workers and a barrier per rung.

    Each rung runs in ``ceil(runs / workers)`` waves of equal tasks; this is the least wall time
    (in single-run iterations) any executor can reach.
    """
    if workers < 1:
        raise InputError(None, f"workers must be >= 1, got {workers}")
    return sum(math.ceil(r.runs / workers) * (r.iterations - r.start_iterations) for r in schedule)


def rank(best_score: Mapping[int, float | None]) -> list[int]:
    """Seeds ordered best first: higher best validation score, ties by lower seed.

    A run without a validation yet (``None`` or NaN) ranks behind every validated run.
    """
    def key(seed: int) -> tuple[bool, float, int]:
        value = best_score[seed]
        missing = value is None or math.isnan(value)
        return (missing, 0.0 if missing else -value, seed)

    return sorted(best_score, key=key)


def plan(schedule: Schedule, workers: int, its_per_second: float | None) -> dict:
    """The schedule as plain JSON values, with costs and (given a speed) estimated times."""
    total = total_iterations(schedule)
    critical = makespan_iterations(schedule, workers)
    out: dict = {
        "rungs": [{"rung": r.index, "runs": r.runs, "from_iterations": r.start_iterations,
                   "to_iterations": r.iterations, "iterations": r.cost} for r in schedule],
        "total_iterations": total,
        "single_run_iterations": schedule[-1].iterations,
        "cost_vs_single_run": total / schedule[-1].iterations,
        "workers": workers,
        "critical_path_iterations": critical,
    }
    if its_per_second is not None:
        if not its_per_second > 0:
            raise InputError(None, f"iterations per second must be > 0, got {its_per_second}")
        out["its_per_second"] = its_per_second
        out["estimated_device_hours"] = total / its_per_second / 3600
        out["estimated_wall_hours"] = critical / its_per_second / 3600
    return out


def seeds(config: SelectConfig) -> Sequence[int]:
    """The seeds of the selection's runs: ``first_seed .. first_seed + runs - 1``."""
    return range(config.first_seed, config.first_seed + config.runs)
