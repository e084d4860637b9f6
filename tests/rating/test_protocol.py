"""The protocol: one round per algorithm, each case once per round in the rater's own order, no
algorithm twice for a case, the algorithm of round 1 random per case, everything from the seed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hepaseg.rating.protocol import QUALITY_SCALE, RATING_SCALE, assign, in_scale

CASES = [f"case{i:03d}" for i in range(44)]


@pytest.mark.parametrize("algorithms", [("A1", "A2"), ("A1", "A2", "A3")])
def test_each_case_once_per_round_in_one_order_and_no_algorithm_twice(algorithms):
    raters = ("R3", "R4")
    items = assign(CASES, algorithms, raters, seed=0)
    assert len(items) == len(raters) * len(algorithms) * len(CASES)
    orders = {}
    for rater in raters:
        mine = [i for i in items if i.rater == rater]
        rounds = [[i for i in mine if i.round == r] for r in range(len(algorithms))]
        for rnd in rounds:
            assert sorted(i.case for i in rnd) == sorted(CASES)
            assert [i.position for i in rnd] == list(range(len(CASES)))
        order = [i.case for i in rounds[0]]
        assert all([i.case for i in rnd] == order for rnd in rounds)  # the same order in every round
        for case in CASES:
            assert sorted(i.algorithm for i in mine if i.case == case) == sorted(algorithms)
        orders[rater] = order
    assert orders["R3"] != orders["R4"]  # each rater their own order


def test_the_seed_decides_everything():
    a = assign(CASES, ("A1", "A2"), ("R3",), seed=5)
    assert a == assign(CASES, ("A1", "A2"), ("R3",), seed=5)
    assert a != assign(CASES, ("A1", "A2"), ("R3",), seed=6)


def test_round_one_draws_the_algorithm_per_case_at_random():
    shares = []
    for seed in range(40):
        first = Counter(i.algorithm for i in assign(CASES, ("A1", "A2"), ("R3",), seed) if i.round == 0)
        shares.append(first["A1"] / len(CASES))
    # 40 x 44 fair coin flips: the mean share lies within 0.5 +- 0.05 (about 4 standard errors)
    assert abs(np.mean(shares) - 0.5) < 0.05
    assert 0 < min(shares) and max(shares) < 1


@pytest.mark.parametrize("args", [([], ("A1",), ("R3",)), (["c"], (), ("R3",)), (["c"], ("A1",), ()),
                                  (["c", "c"], ("A1",), ("R3",)), (["c"], ("A1", "A1"), ("R3",))])
def test_empty_or_repeated_names_are_errors(args):
    with pytest.raises(ValueError):
        assign(*args, seed=0)


def test_scales_accept_integers_in_range_only():
    assert [v for v in (0, 1, 3, 5, 6) if in_scale(v, RATING_SCALE)] == [1, 3, 5]
    assert [v for v in (0, 1, 3, 4) if in_scale(v, QUALITY_SCALE)] == [1, 3]
    assert not any(in_scale(v, RATING_SCALE) for v in (True, 2.0, "2", None))
