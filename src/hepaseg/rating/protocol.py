"""The rating protocol (METHOD.md section 9): which contour each rater sees, in which order.

Conventions:
- One *round* per algorithm. In every round a rater sees every case once, in the rater's own
  order, which is the same in every round (the paper: "the cases were presented in the same
  order"). For each case and rater, the algorithms are shuffled once; round ``r`` (0-based) shows
  the ``r``-th of them, so no algorithm is shown twice for a case. With two algorithms, round 1
  shows A1 or A2 at random per case and round 2 the other one.
- Every random choice comes from ``numpy.random.default_rng([seed, i])``, ``i`` the rater's index
  in the given rater list: the same seed and lists give the same assignment.
- An *item* is one (rater, round, position): ``index = round * n_cases + position`` is its place
  in the rater's sequence, and the only handle a rater's browser ever gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RATING_SCALE = (1, 5)  # 1 very poor ... 5 very good segmentation
QUALITY_SCALE = (1, 3)  # 1 poor ... 3 good image quality


@dataclass(frozen=True)
class Item:
    """One contour shown to one rater: round and position are 0-based."""

    rater: str
    round: int
    position: int
    case: str
    algorithm: str


def assign(cases: Sequence[str], algorithms: Sequence[str], raters: Sequence[str], seed: int) -> list[Item]:
    """Every rater's items, rater by rater, round by round, in the order shown.

    Raises:
        ValueError: no case, no algorithm, no rater, or a name given twice.
    """
    for what, names in (("case", cases), ("algorithm", algorithms), ("rater", raters)):
        if not names:
            raise ValueError(f"no {what} to rate")
        if len(set(names)) != len(names):
            raise ValueError(f"a {what} is named twice")
    items = []
    for index, rater in enumerate(raters):
        rng = np.random.default_rng([seed, index])
        order = [cases[i] for i in rng.permutation(len(cases))]
        shown = {case: [algorithms[i] for i in rng.permutation(len(algorithms))] for case in order}
        for rnd in range(len(algorithms)):
            items += [Item(rater, rnd, pos, case, shown[case][rnd]) for pos, case in enumerate(order)]
    return items


def in_scale(value: object, scale: tuple[int, int]) -> bool:
    """Whether ``value`` is an int (not a bool) within ``scale`` (inclusive)."""
    return isinstance(value, int) and not isinstance(value, bool) and scale[0] <= value <= scale[1]
