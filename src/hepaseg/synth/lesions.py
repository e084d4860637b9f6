"""Liver lesions: draw kinds, sizes and positions inside the liver, paint them, make the truth mask.

Kinds and relative signals (shared/PHANTOM.md): HCC 0.3-0.75 (some with a capsule, mosaic
interior), metastases 0.25-0.6 with a darker centre (target), cysts 0.05-0.2 (round, sharp),
haemangiomas 0.3-0.6 (lobulated). Some lesions are faint (contrast cut to a quarter to half),
some touch the liver surface, some sit next to another (satellites: raters may merge them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import shapes
from .anatomy import Anatomy
from .raster import Array, Box, Canvas, Grid, sample
from .render import Rendered, T
from .shapes import Vec3, WaveField

KINDS = ("hcc", "metastasis", "cyst", "haemangioma")
DIAMETER_MM = {"hcc": (5.0, 80.0), "metastasis": (3.0, 60.0), "cyst": (3.0, 40.0), "haemangioma": (4.0, 60.0)}


@dataclass(frozen=True)
class Lesion:
    """One lesion in the patient frame (mm).

    Attributes:
        id: 1-based label in the truth instance map.
        kind: one of ``KINDS``.
        centre: (x, y, z) mm.
        diameter_mm: equivalent diameter of the main body.
        radii: semi-axes of the main ellipsoid; ``rotation`` (3, 3) orients it.
        lobes: extra spheres (offset from centre, radius) blended in (haemangiomas).
        surface: small radial irregularity of the boundary (mm).
        signal: relative signal of the lesion (rim for metastases).
        core_signal: signal of the centre (metastasis target; equals ``signal`` otherwise).
        capsule: a darker rim 1.5 mm thick (HCC).
        mosaic: heterogeneity of the interior (HCC), a wave field in signal units.
        faint: contrast reduced to a quarter to half.
        border: placed so that it reaches the liver surface.
        satellite_of: id of the lesion it sits next to, or 0.
        conspicuity: how easy it is to see, shared by all raters (standard normal).
    """

    id: int
    kind: str
    centre: Vec3
    diameter_mm: float
    radii: Vec3
    rotation: np.ndarray
    lobes: tuple[tuple[Vec3, float], ...]
    surface: WaveField
    signal: float
    core_signal: float
    capsule: bool
    mosaic: WaveField | None
    faint: bool
    border: bool
    satellite_of: int
    conspicuity: float

    @property
    def radius(self) -> float:
        return self.diameter_mm / 2

    def sdf(self, x, y, z) -> Array:
        d = shapes.ellipsoid(x, y, z, self.centre, self.radii, self.rotation)
        for offset, r in self.lobes:
            c = tuple(np.add(self.centre, offset))
            d = shapes.smooth_union(d, shapes.ellipsoid(x, y, z, c, (r, r, r)), 0.25 * r)
        return d + self.surface(x - self.centre[0], y - self.centre[1], z - self.centre[2])

    def value(self, x, y, z, d) -> Array:
        """Relative signal inside the lesion; ``d`` is its signed distance (mm)."""
        v = np.full(d.shape, self.signal, np.float32)
        if self.core_signal != self.signal:  # target: darker centre, smooth transition
            depth = np.clip((-d - 0.3 * self.radius) / (0.3 * self.radius), 0.0, 1.0)
            v += (self.core_signal - self.signal) * depth
        if self.capsule:
            v -= np.float32(0.12) * (np.abs(d + 0.75) < 0.75)
        if self.mosaic is not None:
            v += self.mosaic(x, y, z)
        return np.clip(v, 0.02, None).astype(np.float32, copy=False)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        reach = max(self.radii) * 1.15 + 1.0
        for offset, r in self.lobes:
            reach = max(reach, float(np.linalg.norm(offset)) + r * 1.15 + 1.0)
        return np.asarray(self.centre) - reach, np.asarray(self.centre) + reach


def _count(rng: np.random.Generator, kind: str, least: int, most: int) -> int:
    """Lesions in one case: about 6 % none, a median of 2-3, a long tail; within [least, most]."""
    none = rng.random() < 0.06
    mean_extra = 4.0 if kind == "metastasis" else 1.8
    n = 0 if none else 1 + rng.negative_binomial(1.2, 1.2 / (1.2 + mean_extra))
    return int(np.clip(n, least, most))


def _diameter(rng: np.random.Generator, kind: str, index_lesion: bool) -> float:
    lo, hi = DIAMETER_MM[kind]
    if index_lesion:  # the lesion that brought the patient to the scanner
        d = np.exp(rng.uniform(np.log(10.0), np.log(hi)))
    else:  # many small ones
        d = np.exp(rng.normal(np.log(9.0), 0.6))
    return float(np.clip(d, lo, hi))


def _signals(rng: np.random.Generator, kind: str, faint: bool) -> tuple[float, float]:
    if kind == "hcc":
        signal = rng.uniform(0.3, 0.75)
        core = signal
    elif kind == "metastasis":
        signal = rng.uniform(0.35, 0.6)
        core = max(0.15, signal - rng.uniform(0.1, 0.25))
    elif kind == "cyst":
        signal = core = rng.uniform(0.05, 0.2)
    else:
        signal = core = rng.uniform(0.3, 0.6)
    if faint:
        keep = rng.uniform(0.25, 0.5)
        signal, core = 1 - (1 - signal) * keep, 1 - (1 - core) * keep
    return float(signal), float(core)


def _shape(rng: np.random.Generator, kind: str, diameter: float):
    r = diameter / 2
    if kind == "cyst":
        radii = tuple(r * rng.uniform(0.92, 1.08, 3))
        surface = WaveField.draw(rng, 3, (diameter, 3 * diameter), 0.01 * r)
    else:
        radii = tuple(r * rng.uniform(0.8, 1.2, 3))
        surface = WaveField.draw(rng, 6, (0.7 * diameter, 2.5 * diameter), 0.06 * r)
    lobes: tuple = ()
    if kind == "haemangioma":
        lobes = tuple((tuple(rng.normal(size=3) / np.sqrt(3) * 0.7 * r), float(rng.uniform(0.45, 0.7) * r))
                      for _ in range(int(rng.integers(2, 5))))
    return radii, shapes.random_rotation(rng), lobes, surface


def draw_lesions(rng: np.random.Generator, anat: Anatomy, least: int, most: int) -> tuple[Lesion, ...]:
    """Draw ``least``-``most`` lesions of one case and place them inside the liver (largest first).

    Cirrhotic livers mostly carry HCC; other cases metastases, haemangiomas or cysts; a few
    incidental cysts or haemangiomas join any case. Lesions never overlap; a lesion that finds
    no room is dropped.
    """
    if anat.liver.cirrhotic:
        primary = "hcc" if rng.random() < 0.8 else "metastasis"
    else:
        primary = rng.choice(KINDS, p=(0.15, 0.55, 0.15, 0.15)).item()
    n = _count(rng, primary, least, most)
    kinds = [primary if i == 0 or rng.random() < 0.8 else rng.choice(KINDS[2:]).item() for i in range(n)]
    diameters = [_diameter(rng, k, i == 0) for i, k in enumerate(kinds)]
    order = np.argsort(diameters)[::-1]

    lo, hi = anat.liver_bounds()
    pts = rng.uniform(lo, hi, size=(6000, 3))
    depth = -anat.liver_sdf(pts[:, 0], pts[:, 1], pts[:, 2])
    pts, depth = pts[depth > 1.0], depth[depth > 1.0]

    placed: list[Lesion] = []
    for i in order:
        kind, diameter = kinds[i], diameters[i]
        faint = kind != "cyst" and rng.random() < (0.25 if diameter < 12 else 0.1)
        border = rng.random() < 0.2
        satellite = bool(placed) and diameter < 20 and rng.random() < 0.3
        centre, parent = _place(rng, anat, pts, depth, placed, diameter / 2, border, satellite)
        if centre is None:
            continue
        radii, rotation, lobes, surface = _shape(rng, kind, diameter)
        signal, core = _signals(rng, kind, faint)
        mosaic = WaveField.draw(rng, 5, (6, 16), rng.uniform(0.02, 0.08)) if kind == "hcc" else None
        placed.append(Lesion(
            id=len(placed) + 1, kind=kind, centre=tuple(float(c) for c in centre), diameter_mm=diameter,
            radii=radii, rotation=rotation, lobes=lobes, surface=surface, signal=signal, core_signal=core,
            capsule=kind == "hcc" and diameter > 15 and rng.random() < 0.4, mosaic=mosaic, faint=faint,
            border=border, satellite_of=parent, conspicuity=float(rng.normal())))
    return tuple(placed)


def _place(rng, anat: Anatomy, pts, depth, placed: list[Lesion], r: float, border: bool, satellite: bool):
    """A centre for a lesion of radius ``r``: ``(centre, parent id)`` or ``(None, 0)``."""
    def free(c: np.ndarray, gap: float = 2.0) -> bool:
        return all(np.linalg.norm(c - np.asarray(p.centre)) >= r + p.radius * 1.2 + gap for p in placed)

    if satellite:
        parent = placed[int(rng.integers(len(placed)))]
        for _ in range(12):
            u = rng.normal(size=3)
            c = np.asarray(parent.centre) + u / np.linalg.norm(u) * (parent.radius * 1.2 + r + rng.uniform(0.5, 4.0))
            if -anat.liver_sdf(c[0], c[1], c[2]) > 0.8 * r and free(c, gap=0.0):
                return c, parent.id
    want = (depth > 0.2 * r) & (depth < 0.8 * r) if border else depth > r + 2.0
    if not want.any() and not border:
        want = depth > 0.7 * r
    for j in rng.permutation(np.flatnonzero(want))[:200]:
        if free(pts[j]):
            return pts[j], 0
    return None, 0


@dataclass
class LesionMaps:
    """Rendered lesions.

    Attributes:
        fractions: per lesion id, (box, fraction of each voxel in the lesion, clipped to the liver).
        truth: (ni, nj, nk) int16 instance map, 0 = no lesion.
    """

    fractions: dict[int, tuple[Box, Array]]
    truth: np.ndarray


def render_lesions(lesions: tuple[Lesion, ...], rendered: Rendered, grid: Grid) -> LesionMaps:
    """Paint the lesions into the liver and build the truth instance map.

    A voxel belongs to a lesion where at least half of it does (after clipping to the liver); a
    lesion smaller than that everywhere (a few mm across a thick slice) keeps the voxels of its
    partial-volume peak (>= half the maximum), so every drawn lesion stays in the truth.
    """
    canvas: Canvas = rendered.canvas
    lbox, liver_frac = rendered.liver_box, rendered.liver_frac
    truth = np.zeros(grid.shape, np.int16)
    fractions: dict[int, tuple[Box, Array]] = {}
    for lesion in lesions:
        box = grid.box(*lesion.bounds())
        if box is None:
            continue
        box = tuple(slice(max(b.start, o.start), min(b.stop, o.stop)) for b, o in zip(box, lbox))
        if any(b.stop <= b.start for b in box):
            continue
        rel = tuple(slice(b.start - o.start, b.stop - o.start) for b, o in zip(box, lbox))
        frac, paint = sample(grid, box, lesion.sdf, lesion.value)
        clipped = np.minimum(frac, liver_frac[rel])
        paint *= np.divide(clipped, frac, out=np.zeros_like(frac), where=frac > 0)
        if clipped.max() < 0.1:
            continue
        canvas.paint(box, clipped, None, T["lesion"], paint=paint)
        inside = clipped >= 0.5
        if not inside.any():
            inside = clipped >= 0.5 * clipped.max()
        truth[box][inside] = lesion.id
        fractions[lesion.id] = (box, clipped)
    return LesionMaps(fractions, truth)
