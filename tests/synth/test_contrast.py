"""MR-physics contrasts of the randomised cohort (``synth.contrast``).

Expected values are the signal equations' limits worked out by hand (an infinitely long TR leaves only
T2 decay, an inversion nulls a tissue at TI = T1 ln 2, a spoiled gradient echo peaks at the Ernst angle
arccos(exp(-TR/T1)), SSFP with T1 = T2 gives PD sin a / 2) and textbook orderings of 1.5 T tissues
(on T2-weighted spin echoes the spleen is brighter than the liver, on T1-weighted gradient echoes darker).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hepaseg.synth.appearance import SIGNAL_RANGE, draw_appearance
from hepaseg.synth.contrast import FAMILIES, Sequence, draw_sequence, signal, tissue_signals


def _seq(family: str, tr: float, te: float = 0.0, flip: float = 90.0, ti: float = 0.0) -> Sequence:
    return Sequence(family, tr, te, flip, ti, flow=1.0, fat_factor=1.0, agent_t1={})


def test_spin_echo_limits():
    assert signal(_seq("spin_echo", 1e12, te=80), 800, 40, 0.9) == pytest.approx(0.9 * math.exp(-2))
    assert signal(_seq("spin_echo", 500, te=0), 500, 40, 1.0) == pytest.approx(1 - math.exp(-1))


def test_inversion_nulls_a_tissue_at_t1_ln2():
    t1 = 290.0
    assert signal(_seq("inversion_recovery", 1e12, ti=t1 * math.log(2)), t1, 60, 1.0) == pytest.approx(0, abs=1e-9)
    assert signal(_seq("inversion_recovery", 1e12, ti=0.0), t1, 60, 1.0) == pytest.approx(1.0)


def test_gradient_echo_peaks_at_the_ernst_angle():
    tr, t1 = 10.0, 600.0
    ernst = math.degrees(math.acos(math.exp(-tr / t1)))
    at = [signal(_seq("gradient_echo", tr, flip=ernst + d), t1, 50, 1.0) for d in (-3.0, 0.0, 3.0)]
    assert at[1] > at[0] and at[1] > at[2]


def test_ssfp_with_equal_relaxation_times():
    assert signal(_seq("ssfp", 4.0, flip=60), 100, 100, 1.0) == pytest.approx(math.sin(math.radians(60)) / 2)


def test_tissue_orderings_of_t2_and_t1_weighting():
    rng = np.random.default_rng(3)
    t2w = dataclasses.replace(_seq("spin_echo", 4000, te=90), fat_factor=0.1)
    t1w = _seq("gradient_echo", 8, te=2.3, flip=15)
    t2 = [tissue_signals(t2w, rng) for _ in range(200)]
    t1 = [tissue_signals(t1w, rng) for _ in range(200)]
    assert np.mean([s["spleen"] > s["liver"] for s in t2]) > 0.8
    assert np.mean([s["fluid"] >= s["liver"] for s in t2]) > 0.95
    assert np.mean([s["liver"] > s["spleen"] for s in t1]) > 0.8
    every = [v for s in t1 + t2 for v in s.values()]
    assert min(every) >= 0 and max(every) <= SIGNAL_RANGE[1]


def test_sequence_draws_cover_the_families_and_are_seeded():
    draws = [draw_sequence(np.random.default_rng([5, i])) for i in range(200)]
    assert {d.family for d in draws} == set(FAMILIES)
    assert [d.to_dict() for d in draws] == [draw_sequence(np.random.default_rng([5, i])).to_dict() for i in range(200)]
    assert any(d.agent_t1 for d in draws) and any(d.fat_factor < 1 for d in draws)


def test_about_two_fifths_of_the_appearances_come_from_a_sequence():
    draws = [draw_appearance(np.random.default_rng([9, i])) for i in range(400)]
    physics = [d for d in draws if d.sequence is not None]
    assert 0.3 < len(physics) / len(draws) < 0.5
    assert all(not d.hbp for d in physics)
    assert all(0 <= v <= SIGNAL_RANGE[1] for d in physics for v in dataclasses.asdict(d.signals).values())
