"""Anatomy beyond the phantom's defaults, for the liver model's randomised cohort (issue 28).

The liver model trained on the randomised cohort erred on real scans where the phantom is narrower
than patients (docs/liver-model.md, "Where the errors come from"):

- **the left lobe**: real left lateral segments reach across the epigastrium towards the spleen, thin
  or bulky, high or low; the phantom's left lobe varied little, and the model missed a quarter of
  real livers there. ``vary_anatomy`` redraws it from wider ranges (``LEFT_LOBE``);
- **the heart on the dome**: a third of the model's false positives lay on the top three liver
  slices, in the heart and lung bases. The phantom's heart was one uniform ellipsoid; here it gets
  pericardial fat, a myocardial wall and two blood pools (the ventricles, painted with the blood's
  signal: dark flow voids in spin echoes, bright in SSFP), and the lung bases get pulmonary vessel
  trees.

The paper's cohort (and so ``make demo``) never calls this: its cases stay as they were. Every
draw comes from the generator it is given (``case.case_rng``'s ``variation`` stream).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import shapes
from .anatomy import Anatomy, Ellipsoid, uniform
from .vessels import Tube, grow_tree

# left lobe: centre x (mm left of the midline), centre y (anterior), centre z (fraction of the span
# below the dome); semi-axes x, y (mm) and z (fraction of the span); rotations about z and y (deg)
LEFT_LOBE = {"x": (10.0, 45.0), "y": (18.0, 48.0), "z": (0.18, 0.38), "rx": (40.0, 105.0), "ry": (16.0, 42.0),
             "rz": (0.14, 0.3), "turn": (-25.0, 25.0), "tilt": (-15.0, 15.0)}
PERICARDIAL_FAT_MM = (1.0, 8.0)
LUNG_TREES = 2  # per lung


def vary_anatomy(rng: np.random.Generator, anat: Anatomy) -> Anatomy:
    """``anat`` with a redrawn left lobe, a heart with chambers and pericardial fat, and lung vessels.

    Call it before lesions are drawn (they are placed inside the liver as it is then). Vessels and
    ducts keep their trees; they are painted only where the liver is.
    """
    span, shrink = anat.span_mm, 0.85 if anat.liver.cirrhotic else 1.0
    g = LEFT_LOBE
    left = Ellipsoid((-uniform(rng, *g["x"]), uniform(rng, *g["y"]), -uniform(rng, *g["z"]) * span),
                     (uniform(rng, *g["rx"]) * shrink, uniform(rng, *g["ry"]) * shrink, uniform(rng, *g["rz"]) * span),
                     shapes.rotation_xyz(0.0, np.deg2rad(uniform(rng, *g["tilt"])),
                                         np.deg2rad(uniform(rng, *g["turn"]))))
    heart = anat.heart
    pools = tuple(
        Ellipsoid((heart.centre[0] + side * uniform(rng, 0.2, 0.35) * heart.radii[0],
                   heart.centre[1] + uniform(rng, -0.15, 0.15) * heart.radii[1],
                   heart.centre[2] + uniform(rng, -0.1, 0.2) * heart.radii[2]),
                  (uniform(rng, 0.3, 0.45) * heart.radii[0], uniform(rng, 0.45, 0.65) * heart.radii[1],
                   uniform(rng, 0.5, 0.7) * heart.radii[2]))
        for side in (-1, 1))
    return dataclasses.replace(anat, liver=dataclasses.replace(anat.liver, left=left), heart_blood=pools,
                               pericardial_fat_mm=uniform(rng, *PERICARDIAL_FAT_MM), lung_vessels=_lung_trees(rng, anat))


def _lung_trees(rng: np.random.Generator, anat: Anatomy) -> tuple[Tube, ...]:
    """Pulmonary vessel trees from each hilum down and out into the lung bases (painted only in the lung)."""
    tubes: tuple[Tube, ...] = ()
    for dome, side in ((anat.diaphragm.right, 1.0), (anat.diaphragm.left, -1.0)):
        for _ in range(LUNG_TREES):
            root = (side * uniform(rng, 30, 55), uniform(rng, -15, 20), dome[2] + uniform(rng, 40, 70))
            direction = (side * uniform(rng, 0.3, 0.9), uniform(rng, -0.6, 0.6), -1.0)
            tubes += grow_tree(rng, root, direction, uniform(rng, 3.0, 5.0), uniform(rng, 25, 40),
                               min_radius=0.8, max_depth=5)
    return tubes
