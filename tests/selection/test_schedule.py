"""The successive-halving schedule (``selection.schedule``): the paper's rungs, hpbandster's brackets,
A1's bracket, bad configurations, and the ranking rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hepaseg.config import SelectConfig
from hepaseg.errors import InputError
from hepaseg.selection.schedule import (
    bracket,
    hyperband_brackets,
    makespan_iterations,
    rank,
    successive_halving,
    total_iterations,
)


def test_paper_schedule_is_16_runs_halved_to_one_for_240k_iterations():
    schedule = successive_halving(SelectConfig())
    assert [(r.runs, r.start_iterations, r.iterations) for r in schedule] == [
        (16, 0, 5_000), (8, 5_000, 10_000), (4, 10_000, 20_000), (2, 20_000, 40_000), (1, 40_000, 80_000)]
    assert [r.cost for r in schedule] == [16 * 5_000, 8 * 5_000, 4 * 10_000, 2 * 20_000, 1 * 40_000]
    assert total_iterations(schedule) == 240_000 == 3 * 80_000
    assert makespan_iterations(schedule, 1) == 240_000
    assert makespan_iterations(schedule, 16) == 5_000 + 5_000 + 10_000 + 20_000 + 40_000
    assert makespan_iterations(schedule, 4) == 4 * 5_000 + 2 * 5_000 + 10_000 + 20_000 + 40_000


def _hpbandster(min_budget: float, max_budget: float, eta: int) -> list[list[tuple[int, float]]]:
    """hpbandster's HyperBand.__init__ / get_next_iteration, in its own float arithmetic."""
    max_sh_iter = -int(np.log(min_budget / max_budget) / np.log(eta)) + 1
    budgets = max_budget * np.power(eta, -np.linspace(max_sh_iter - 1, 0, max_sh_iter))
    brackets = []
    for iteration in range(max_sh_iter):
        s = max_sh_iter - 1 - iteration
        n0 = int(np.floor(max_sh_iter / (s + 1)) * eta**s)
        ns = [max(int(n0 * eta ** (-i)), 1) for i in range(s + 1)]
        brackets.append(list(zip(ns, budgets[-s - 1:])))
    return brackets


@pytest.mark.parametrize("min_it, max_it, eta", [(5_000, 80_000, 2), (1, 81, 3), (2, 8, 2), (10, 1_000, 3),
                                                 (7, 100, 4), (3, 50, 2), (1_000, 80_000, 3)])
def test_brackets_match_hpbandster(min_it, max_it, eta):
    ours = [[(r.runs, r.iterations) for r in b] for b in hyperband_brackets(min_it, max_it, eta)]
    theirs = [[(n, round(float(budget))) for n, budget in b] for b in _hpbandster(min_it, max_it, eta)]
    assert ours == theirs
    for b in hyperband_brackets(min_it, max_it, eta):  # each rung continues from the previous budget
        starts = [0] + [r.iterations for r in b[:-1]]
        assert total_iterations(b) == sum(r.runs * (r.iterations - s) for r, s in zip(b, starts))


def test_a1_is_the_most_aggressive_bracket_with_the_configured_runs():
    cfg = SelectConfig(runs=10, min_iterations=1, max_iterations=27, eta=3)
    assert [(r.runs, r.iterations) for r in successive_halving(cfg)] == [(10, 1), (3, 3), (1, 9), (1, 27)]
    assert successive_halving(SelectConfig()) == hyperband_brackets(5_000, 80_000, 2)[0]
    assert total_iterations(bracket(0, 5, 1, 8, 2)) == 5 * 8


@pytest.mark.parametrize("kwargs", [dict(eta=1), dict(min_iterations=0), dict(min_iterations=9, max_iterations=8),
                                    dict(runs=0)])
def test_bad_select_config_is_an_input_error(kwargs):
    with pytest.raises(InputError, match="select config"):
        successive_halving(replace(SelectConfig(), **kwargs))


def test_rank_by_best_score_ties_by_lower_seed_unvalidated_last():
    assert rank({3: 0.5, 1: 0.5, 2: 0.7, 0: None, 4: float("nan"), 5: 0.1}) == [2, 1, 3, 5, 0, 4]
