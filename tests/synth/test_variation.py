"""The randomised cohort's wider anatomy (``synth.variation``): left lobe, heart chambers, lung vessels.

Expected values come from the module's stated ranges, from the ellipsoid equation, and from painting
known signals (every tissue its own value) and reading them back where the shapes say they are.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from hepaseg.synth import case as case_module
from hepaseg.synth import make_case, small_spec
from hepaseg.synth.anatomy import Ellipsoid, draw_anatomy
from hepaseg.synth.raster import Grid
from hepaseg.synth.render import TISSUES, render_anatomy
from hepaseg.synth.variation import LEFT_LOBE, PERICARDIAL_FAT_MM, vary_anatomy


def _varied(seed: int):
    anat = draw_anatomy(np.random.default_rng([seed, 1]), cirrhotic=False)
    return anat, vary_anatomy(np.random.default_rng([seed, 7]), anat)


def test_variation_is_seeded_and_covers_the_left_lobe_ranges():
    draws = [_varied(seed)[1] for seed in range(120)]
    again = _varied(3)[1]
    assert again.liver.left.centre == draws[3].liver.left.centre and again.heart_blood == draws[3].heart_blood
    assert draws[3].liver.left.centre != draws[4].liver.left.centre
    reach = np.array([d.liver.left.radii[0] for d in draws])
    lo, hi = LEFT_LOBE["rx"]
    assert lo <= reach.min() < lo + 10 and hi - 10 < reach.max() <= hi, "semi-axes over the whole range"
    centre_x = np.array([-d.liver.left.centre[0] for d in draws])
    assert (LEFT_LOBE["x"][0] <= centre_x).all() and (centre_x <= LEFT_LOBE["x"][1]).all()
    fat = np.array([d.pericardial_fat_mm for d in draws])
    assert (PERICARDIAL_FAT_MM[0] <= fat).all() and (fat <= PERICARDIAL_FAT_MM[1]).all()


def test_the_blood_pools_sit_inside_the_heart_and_the_lung_trees_start_above_the_domes():
    for seed in range(40):
        base, anat = _varied(seed)
        heart = anat.heart
        assert anat.heart == base.heart and anat.liver.right == base.liver.right, "only the left lobe is redrawn"
        assert len(anat.heart_blood) == 2 and anat.lung_vessels
        for pool in anat.heart_blood:
            offset = (np.subtract(pool.centre, heart.centre) / np.asarray(heart.radii)) ** 2
            assert offset.sum() < 1.0, "the pool's centre is inside the heart (ellipsoid equation)"
            assert all(p < h for p, h in zip(pool.radii, heart.radii))
        tops = max(t.a[2] for t in anat.lung_vessels)
        assert tops >= min(anat.diaphragm.left[2], anat.diaphragm.right[2]) + 40, "roots at the hila, above the domes"


@pytest.fixture(scope="module")
def painted():
    """One varied anatomy (8 mm of pericardial fat) with every tissue a distinct signal, air dark,
    rendered on a 2 mm grid around the heart."""
    _, anat = _varied(11)
    names = [f.name for f in dataclasses.fields(anat.signals) if f.name != "air"]
    signals = dataclasses.replace(anat.signals, air=0.0, **{n: 0.05 * (i + 1) for i, n in enumerate(names)})
    anat = dataclasses.replace(anat, signals=signals, pericardial_fat_mm=8.0)
    lo, hi = np.subtract(anat.heart.bounds()[0], 20), np.add(anat.heart.bounds()[1], 20)
    shape = tuple(int(np.ceil((h - lo_) / 2.0)) for lo_, h in zip(lo, hi))
    grid = Grid(shape, (2.0, 2.0, 2.0), tuple(float(v) for v in lo))
    return anat, grid, render_anatomy(anat, grid).canvas


def test_the_heart_has_a_blood_filled_chamber_inside_a_wall_of_its_own_signal(painted):
    anat, grid, canvas = painted
    s = anat.signals
    heart = canvas.labels == TISSUES["heart"]
    values = canvas.signal[heart]
    assert np.isclose(values, s.blood, atol=1e-4).sum() > 50, "ventricles painted with the blood's signal"
    assert np.isclose(values, s.heart, atol=1e-4).sum() > 50, "the myocardium keeps the heart's signal"


def test_pericardial_fat_and_lung_vessels_are_painted(painted):
    anat, grid, canvas = painted
    s = anat.signals
    x, y, z = (grid.axis(a) for a in range(3))
    x, y, z = x[:, None, None], y[None, :, None], z[None, None, :]
    heart = anat.heart
    fat = Ellipsoid(heart.centre, tuple(r + anat.pericardial_fat_mm for r in heart.radii))
    shell = (heart.sdf(x, y, z) > 2.5) & (fat.sdf(x, y, z) < -2.5) & (anat.diaphragm.below_sdf(x, y, z) > 12)
    assert shell.sum() > 20 and (canvas.labels[shell] == TISSUES["visceral"]).mean() > 0.75, "fat around the heart (aorta, IVC, spine painted later)"
    assert np.isclose(canvas.signal[shell], s.visceral, atol=1e-4).mean() > 0.75
    lung = canvas.labels == TISSUES["lung"]
    assert np.isclose(canvas.signal[lung], s.air, atol=1e-4).any(), "air-filled lung"
    inner = ndimage.binary_erosion(lung, iterations=2)  # away from the lung's walls' partial volume
    vessel = inner & (canvas.signal > s.air + 0.5 * (s.blood - s.air))
    assert vessel.sum() > 5, "vessels in the lung"
    near = np.min([t.sdf(x, y, z) for t in anat.lung_vessels], axis=0)
    assert (near[vessel] < grid.pixel).all(), "blood-bright lung voxels lie on the vessel trees"


def test_the_paper_cohort_is_not_varied(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("vary_anatomy called for a cohort that is not randomised")

    monkeypatch.setattr(case_module, "vary_anatomy", refuse)
    case = make_case(small_spec(), 0, 0)
    assert case.image.size > 0
