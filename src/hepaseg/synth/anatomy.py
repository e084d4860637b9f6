"""The abdomen of one synthetic patient as analytic shapes: draw the parameters, ask for distances.

Patient frame in mm: x to the patient's right, y anterior, z superior (RAS+), z = 0 at the apex of
the right diaphragm dome (the top of the liver). ``draw_anatomy`` draws every parameter from one
rng; the dataclasses only answer signed-distance queries, so rendering is a pure function of them.
Relative signals follow shared/PHANTOM.md (liver parenchyma = 1.0, fat-suppressed T1, late HBP).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import shapes
from .shapes import Array, Vec3, WaveField
from .vessels import Tube, bile_ducts, grow_tree


@dataclass(frozen=True)
class Ellipsoid:
    """An ellipsoid; ``rotation`` (3, 3) maps world offsets to its axes (None: axis-aligned)."""

    centre: Vec3
    radii: Vec3
    rotation: np.ndarray | None = None

    def sdf(self, x, y, z) -> Array:
        return shapes.ellipsoid(x, y, z, self.centre, self.radii, self.rotation)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        r = max(self.radii) if self.rotation is not None else np.asarray(self.radii)
        return np.asarray(self.centre) - r, np.asarray(self.centre) + r


@dataclass(frozen=True)
class Column:
    """A vertical tube of elliptic cross-section whose centre drifts linearly with z (IVC, aorta)."""

    centre: tuple[float, float]
    radii: tuple[float, float]
    drift: tuple[float, float]  # mm of x, y per mm of z

    def sdf(self, x, y, z) -> Array:
        cx, cy = self.centre[0] + self.drift[0] * z, self.centre[1] + self.drift[1] * z
        return shapes.ellipse(x, y, (cx, cy), self.radii)


@dataclass(frozen=True)
class Body:
    """Skin outline (an ellipse, flatter behind) with subcutaneous fat and the muscle wall."""

    a: float  # left-right semi-axis
    b_ant: float
    b_post: float
    fat_mm: float
    wall_mm: float

    def sdf(self, x, y, z) -> Array:
        """Signed distance to the skin; the outline does not change along z (``z`` is ignored)."""
        b = np.where(y >= 0, self.b_ant, self.b_post)
        return shapes.ellipse(x, y, (0.0, 0.0), (self.a, b))

    def cavity_sdf(self, x, y, z) -> Array:
        """The abdominal / thoracic cavity inside the muscle wall."""
        return self.sdf(x, y, z) + np.float32(self.fat_mm + self.wall_mm)

    @property
    def cavity_half_width(self) -> float:
        return self.a - self.fat_mm - self.wall_mm


@dataclass(frozen=True)
class Diaphragm:
    """Two paraboloid domes; the liver, spleen and stomach lie below ``height``, lungs above."""

    right: tuple[float, float, float]  # apex (x, y, z)
    left: tuple[float, float, float]
    curvature: tuple[float, float]  # radii of curvature along x and y, mm
    thickness: float

    def height(self, x, y) -> Array:
        rx, ry = self.curvature
        hr = self.right[2] - (x - self.right[0]) ** 2 / (2 * rx) - (y - self.right[1]) ** 2 / (2 * ry)
        hl = self.left[2] - (x - self.left[0]) ** 2 / (2 * rx) - (y - self.left[1]) ** 2 / (2 * ry)
        return -shapes.smooth_union(-hr, -hl, 15.0)

    def below_sdf(self, x, y, z) -> Array:
        """< 0 below the diaphragm's lower surface (not a metric distance on steep slopes)."""
        return (z - self.height(x, y)).astype(np.float32)


@dataclass(frozen=True)
class Liver:
    """Three lobes blended into one, with low-frequency shape variation and (cirrhosis) nodules."""

    right: Ellipsoid
    left: Ellipsoid
    caudate: Ellipsoid
    shape_wave: WaveField
    nodules: WaveField | None  # surface nodularity (cirrhosis)
    cirrhotic: bool
    base_signal: float
    texture_sd: float  # fine parenchymal texture, relative
    nodule_sd: float  # regenerative-nodule heterogeneity, relative (cirrhosis)

    def lobes_sdf(self, x, y, z) -> Array:
        d = shapes.smooth_union(self.right.sdf(x, y, z), self.left.sdf(x, y, z), 20.0)
        d = shapes.smooth_union(d, self.caudate.sdf(x, y, z), 10.0)
        d = d + self.shape_wave(x, y, z)
        if self.nodules is not None:
            d = d + self.nodules(x, y, z)
        return d


@dataclass(frozen=True)
class Signals:
    """Relative signal of each tissue for this patient (liver parenchyma = 1.0)."""

    fat: float
    fat_edge: float  # extra signal at the skin where fat suppression fails
    muscle: float
    visceral: float
    blood: float  # IVC, aorta, portal and hepatic veins
    bile: float  # bile ducts
    gallbladder: float
    spleen: float
    kidney_cortex: float
    kidney_medulla: float
    bone: float
    disc: float
    csf: float
    heart: float
    stomach: float
    bowel: float
    air: float = 0.0


@dataclass(frozen=True)
class Anatomy:
    """Everything that is not a lesion, in the patient frame (mm)."""

    body: Body
    diaphragm: Diaphragm
    liver: Liver
    span_mm: float  # liver height, dome to tip
    vertebra: Column
    canal: Column
    paraspinal: tuple[Ellipsoid, ...]
    disc_period: float
    disc_phase: float
    aorta: Column
    ivc: Column
    heart: Ellipsoid
    spleen: Ellipsoid
    kidneys: tuple[Ellipsoid, ...]
    renal_fossa: Ellipsoid  # right kidney and the space behind it: no liver there
    crus: Ellipsoid  # behind the IVC, around the spine, narrowing upwards: no liver there
    stomach: Ellipsoid | None
    stomach_gas_y: float  # anterior gas cap of the stomach above this y (supine patient)
    bowel: tuple[Ellipsoid, ...]
    bowel_gas: tuple[bool, ...]
    gallbladder: Ellipsoid | None
    portal_trunk: Tube
    portal: tuple[Tube, ...]
    hepatic: tuple[Tube, ...]
    bile: tuple[Tube, ...]
    signals: Signals
    texture_seed: int
    # drawn only for the randomised cohort (``synth.variation``); the defaults paint what the paper cohort has
    heart_blood: tuple[Ellipsoid, ...] = ()  # blood pools (ventricles) inside the heart
    pericardial_fat_mm: float = 0.0
    lung_vessels: tuple[Tube, ...] = ()  # pulmonary vessels, painted only inside the lung

    def liver_sdf(self, x, y, z) -> Array:
        """Signed distance (mm) to the liver as contoured: lobes inside the cavity, below the
        diaphragm, minus the IVC, gallbladder, right kidney (and what lies behind it), the
        diaphragmatic crus behind the IVC, and the portal trunk."""
        d = self.liver.lobes_sdf(x, y, z)
        d = shapes.smooth_intersection(d, self.body.cavity_sdf(x, y, z) + np.float32(1.0), 4.0)
        d = shapes.smooth_intersection(d, self.diaphragm.below_sdf(x, y, z), 4.0)
        d = np.maximum(d, -self.ivc.sdf(x, y, z))
        d = np.maximum(d, -self.renal_fossa.sdf(x, y, z))
        d = np.maximum(d, -self.crus.sdf(x, y, z))
        d = np.maximum(d, -self.portal_trunk.sdf(x, y, z))
        if self.gallbladder is not None:
            d = np.maximum(d, -self.gallbladder.sdf(x, y, z))
        return d

    def liver_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """A box (mm) that surely holds the liver."""
        pad = 6.0 + float(np.abs(self.liver.shape_wave.amp).sum())
        los, his = zip(*(e.bounds() for e in (self.liver.right, self.liver.left, self.liver.caudate)))
        lo, hi = np.min(los, axis=0) - pad, np.max(his, axis=0) + pad
        hi[2] = min(hi[2], self.diaphragm.right[2] + 1.0)
        return lo, hi


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One draw from U(lo, hi) as a Python float (every draw of the phantom's shapes goes through it)."""
    return float(rng.uniform(lo, hi))


def draw_signals(rng: np.random.Generator) -> Signals:
    """Tissue signals within PHANTOM.md's ranges."""
    excreted = rng.random() < 0.5  # contrast already excreted into the bile?
    return Signals(
        fat=uniform(rng, 0.15, 0.3), fat_edge=uniform(rng, 0.05, 0.3), muscle=uniform(rng, 0.35, 0.5),
        visceral=uniform(rng, 0.15, 0.3), blood=uniform(rng, 0.3, 0.5),
        bile=uniform(rng, 0.8, 1.3) if excreted else uniform(rng, 0.2, 0.45),
        gallbladder=uniform(rng, 0.5, 1.2) if excreted and rng.random() < 0.5 else uniform(rng, 0.2, 0.4),
        spleen=uniform(rng, 0.45, 0.65), kidney_cortex=uniform(rng, 0.6, 0.8), kidney_medulla=uniform(rng, 0.5, 1.2),
        bone=uniform(rng, 0.45, 0.6), disc=uniform(rng, 0.35, 0.45), csf=uniform(rng, 0.1, 0.2), heart=uniform(rng, 0.3, 0.45),
        stomach=uniform(rng, 0.1, 0.4), bowel=uniform(rng, 0.25, 0.5),
    )


def draw_anatomy(rng: np.random.Generator, cirrhotic: bool) -> Anatomy:
    """Draw one patient. ``cirrhotic`` livers are smaller, nodular and more heterogeneous."""
    b_ant = uniform(rng, 100, 130)
    body = Body(a=uniform(rng, 140, 180), b_ant=b_ant, b_post=b_ant * uniform(rng, 0.85, 1.0),
                fat_mm=uniform(rng, 8, 32), wall_mm=uniform(rng, 7, 13))
    span = uniform(rng, 150, 200) * (uniform(rng, 0.78, 0.9) if cirrhotic else 1.0)
    spine = _draw_spine(rng, body, span)
    diaphragm = Diaphragm(right=(uniform(rng, 40, 70), uniform(rng, -20, 10), 0.0),
                          left=(-uniform(rng, 50, 80), uniform(rng, -20, 0), -uniform(rng, 5, 25)),
                          curvature=(uniform(rng, 110, 150), uniform(rng, 80, 110)), thickness=uniform(rng, 4, 7))
    liver = _draw_liver(rng, body, spine["ivc"], span, cirrhotic)
    organs = _draw_organs(rng, body, diaphragm, spine, span)
    anatomy = Anatomy(body=body, diaphragm=diaphragm, liver=liver, span_mm=span, **spine, **organs,
                      **_draw_vessels(rng, spine["ivc"], span), bile=(), signals=draw_signals(rng),
                      texture_seed=int(rng.integers(2**31)))
    return _prune_vessels(anatomy, rng)


def _draw_spine(rng: np.random.Generator, body: Body, span: float) -> dict:
    """Vertebrae, canal and paraspinal muscles, with the aorta and IVC in front of them."""
    r_v = uniform(rng, 16, 21)
    y_v = -body.b_post + body.fat_mm + uniform(rng, 45, 58) + r_v
    vertebra = Column((0.0, y_v), (r_v * uniform(rng, 1.0, 1.2), r_v), (0.0, uniform(rng, -0.05, 0.05)))
    r_a = uniform(rng, 9, 13)
    ivc_x = uniform(rng, 20, 32)
    return {
        "vertebra": vertebra,
        "canal": Column((0.0, y_v - r_v - 10), (uniform(rng, 7, 9), uniform(rng, 6, 8)), vertebra.drift),
        "paraspinal": tuple(Ellipsoid((side * uniform(rng, 24, 32), y_v - r_v - uniform(rng, 22, 30), -span / 2),
                                      (uniform(rng, 18, 26), uniform(rng, 16, 22), 1000.0)) for side in (-1, 1)),
        "disc_period": uniform(rng, 28, 34), "disc_phase": uniform(rng, 0, 34),
        "aorta": Column((-uniform(rng, 10, 22), y_v + r_v + r_a + uniform(rng, 2, 8)), (r_a, r_a),
                        (uniform(rng, -0.05, 0.05), uniform(rng, -0.05, 0.05))),
        "ivc": Column((ivc_x, y_v + r_v + uniform(rng, 12, 24)), (uniform(rng, 11, 15), uniform(rng, 8, 12)),
                      (uniform(rng, -0.05, 0.05), uniform(rng, -0.05, 0.05))),
        # behind the IVC, around the spine, narrowing upwards: no liver there
        "crus": Ellipsoid((0.3 * ivc_x, y_v - 10, -0.9 * span), (ivc_x + 12, r_v + 28, 1.1 * span)),
    }


def _draw_liver(rng: np.random.Generator, body: Body, ivc: Column, span: float, cirrhotic: bool) -> Liver:
    """Right lobe against the right wall, left lobe across the midline in front, caudate by the IVC."""
    half = body.cavity_half_width
    shrink = uniform(rng, 0.78, 0.9) if cirrhotic else 1.0
    rx = uniform(rng, 0.5, 0.6) * half * shrink
    right = Ellipsoid((half - rx * uniform(rng, 0.85, 1.0), uniform(rng, -12, 5), -0.45 * span),
                      (rx, uniform(rng, 0.7, 0.82) * body.b_post * shrink, 0.56 * span))
    left = Ellipsoid((-uniform(rng, 10, 35), uniform(rng, 25, 45), -uniform(rng, 0.25, 0.35) * span),
                     (uniform(rng, 45, 75) * shrink, uniform(rng, 25, 42), uniform(rng, 0.18, 0.26) * span),
                     shapes.rotation_xyz(0.0, 0.0, np.deg2rad(uniform(rng, -20, 20))))
    caudate_scale = uniform(rng, 1.2, 1.5) if cirrhotic else 1.0
    caudate = Ellipsoid((ivc.centre[0] - uniform(rng, 8, 16), ivc.centre[1] + uniform(rng, 12, 20), -0.3 * span),
                        (22 * caudate_scale, 18 * caudate_scale, 0.2 * span))
    return Liver(
        right=right, left=left, caudate=caudate,
        shape_wave=WaveField.draw(rng, 6, (80, 220), uniform(rng, 3, 8)),
        nodules=WaveField.draw(rng, 6, (15, 35), uniform(rng, 0.7, 1.3)) if cirrhotic else None,
        cirrhotic=cirrhotic, base_signal=uniform(rng, 0.85, 0.95) if cirrhotic else 1.0,
        texture_sd=uniform(rng, 0.015, 0.03), nodule_sd=uniform(rng, 0.025, 0.05) if cirrhotic else 0.0)


def _draw_organs(rng: np.random.Generator, body: Body, diaphragm: Diaphragm, spine: dict, span: float) -> dict:
    """Heart, spleen, kidneys, stomach, bowel loops and gallbladder."""
    half = body.cavity_half_width
    y_v = spine["vertebra"].centre[1]
    z_kidney = -uniform(rng, 0.85, 1.0) * span
    heart = Ellipsoid((-uniform(rng, 20, 40), uniform(rng, 25, 45), diaphragm.left[2] + uniform(rng, 45, 60)),
                      (uniform(rng, 55, 70), uniform(rng, 45, 55), uniform(rng, 50, 60)))
    spleen = Ellipsoid((-(half - uniform(rng, 30, 42)), y_v + uniform(rng, -10, 15), -uniform(rng, 0.2, 0.4) * span),
                       (uniform(rng, 20, 30), uniform(rng, 45, 65), uniform(rng, 40, 60)),
                       shapes.rotation_xyz(0.0, 0.0, np.deg2rad(uniform(rng, -60, -30))))
    kidneys = tuple(
        Ellipsoid((side * uniform(rng, 60, 75), y_v - uniform(rng, 0, 10), z_kidney + (side < 0) * uniform(rng, 10, 25)),
                  (uniform(rng, 22, 28), uniform(rng, 28, 34), uniform(rng, 45, 58)),
                  shapes.rotation_xyz(0.0, np.deg2rad(uniform(rng, -10, 10)), np.deg2rad(side * uniform(rng, 20, 40))))
        for side in (1, -1))
    right_kidney = kidneys[0]
    renal_fossa = Ellipsoid((right_kidney.centre[0], right_kidney.centre[1] - 30, right_kidney.centre[2]),
                            (34.0, 62.0, right_kidney.radii[2] + 4))
    stomach, gas_y = None, 0.0
    if rng.random() < 0.85:
        stomach = Ellipsoid((-uniform(rng, 30, 60), uniform(rng, 10, 45), -uniform(rng, 0.2, 0.45) * span),
                            (uniform(rng, 28, 48), uniform(rng, 22, 38), uniform(rng, 35, 55)))
        gas_y = stomach.centre[1] + uniform(rng, 0.3, 0.9) * stomach.radii[1]
    n_bowel = int(rng.integers(6, 16))
    bowel = tuple(Ellipsoid((uniform(rng, -half + 20, half - 20), uniform(rng, -20, body.b_ant - 45),
                             uniform(rng, -span - 70, -0.55 * span)), tuple(rng.uniform(10, 22, 3)))
                  for _ in range(n_bowel))
    bowel_gas = tuple(bool(g) for g in rng.random(n_bowel) < 0.2)
    gallbladder = None
    if rng.random() < 0.8:
        gallbladder = Ellipsoid((uniform(rng, 25, 50), uniform(rng, 35, 60), -uniform(rng, 0.55, 0.72) * span),
                                (uniform(rng, 12, 19), uniform(rng, 12, 19), uniform(rng, 26, 42)),
                                shapes.rotation_xyz(np.deg2rad(uniform(rng, 15, 40)), np.deg2rad(uniform(rng, -20, 20)), 0.0))
    return {"heart": heart, "spleen": spleen, "kidneys": kidneys, "renal_fossa": renal_fossa, "stomach": stomach,
            "stomach_gas_y": gas_y, "bowel": bowel, "bowel_gas": bowel_gas, "gallbladder": gallbladder}


def _draw_vessels(rng: np.random.Generator, ivc: Column, span: float) -> dict:
    """Portal trunk from the confluence to the hilum, portal trees, hepatic veins from the IVC."""
    hilum = np.array([ivc.centre[0] + uniform(rng, 5, 20), ivc.centre[1] + uniform(rng, 30, 45), -uniform(rng, 0.45, 0.55) * span])
    confluence = np.array([uniform(rng, 0, 15), ivc.centre[1] + uniform(rng, 25, 40), -uniform(rng, 0.75, 0.9) * span])
    r_pv = uniform(rng, 6, 8)
    vein_root = np.array([ivc.centre[0], ivc.centre[1], -uniform(rng, 0.08, 0.15) * span])
    r_hv = uniform(rng, 5.0, 7.0)
    return {
        "portal_trunk": Tube(tuple(confluence), tuple(hilum), r_pv, r_pv * 0.9),
        "portal": (grow_tree(rng, hilum, (1.0, -0.25, 0.15), r_pv * 0.8, 35.0)
                   + grow_tree(rng, hilum, (-1.0, 0.6, 0.2), r_pv * 0.7, 40.0)),
        "hepatic": (grow_tree(rng, vein_root, (1.0, 0.3, -0.7), r_hv, 45.0)
                    + grow_tree(rng, vein_root, (0.1, 1.0, -0.7), r_hv * 0.9, 45.0)
                    + grow_tree(rng, vein_root, (-1.0, 0.8, -0.35), r_hv * 0.8, 40.0)),
    }


def _prune_vessels(anatomy: Anatomy, rng: np.random.Generator) -> Anatomy:
    """Keep vessel segments whose middle lies in the liver, and add bile ducts beside the portal tree."""
    def inside(tubes: tuple[Tube, ...]) -> tuple[Tube, ...]:
        if not tubes:
            return tubes
        mid = np.array([(np.add(t.a, t.b)) / 2 for t in tubes])
        keep = anatomy.liver_sdf(mid[:, 0], mid[:, 1], mid[:, 2]) < -1.0
        return tuple(t for t, k in zip(tubes, keep) if k)

    portal = inside(anatomy.portal)
    return dataclasses.replace(anatomy, portal=portal, hepatic=inside(anatomy.hepatic),
                               bile=inside(bile_ducts(rng, portal)))
