"""Paint an ``Anatomy`` onto the voxel grid: noiseless relative signal, tissue labels, liver fraction.

Painting runs back to front (body, cavity contents, organs, spine, vessels, liver, vessels in the
liver); each tissue is composited with its partial-volume fraction, so edges blur over thick slices
exactly as much as the geometry says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .anatomy import Anatomy, Column, Ellipsoid
from .raster import Array, Box, Canvas, Grid, occupancy, sample
from .vessels import Tube

TISSUES = {
    "background": 0, "fat": 1, "muscle": 2, "visceral": 3, "lung": 4, "heart": 5, "bone": 6, "csf": 7,
    "aorta": 8, "ivc": 9, "portal_vein": 10, "hepatic_vein": 11, "bile_duct": 12, "gallbladder": 13,
    "spleen": 14, "kidney": 15, "stomach": 16, "bowel": 17, "liver": 18, "lesion": 19,
}
T = TISSUES


@dataclass
class Rendered:
    """A rendered anatomy.

    Attributes:
        canvas: signal (liver = 1.0) and tissue labels on the full grid.
        liver_box: index box holding the liver.
        liver_frac: (box shape) fraction of each voxel that is liver (tumours included later).
    """

    canvas: Canvas
    liver_box: Box
    liver_frac: Array


def _column_box(grid: Grid, column: Column, margin: float = 2.0) -> Box | None:
    z = grid.axis(2)
    cx = column.centre[0] + column.drift[0] * z
    cy = column.centre[1] + column.drift[1] * z
    r = max(column.radii) + margin
    return grid.box((cx.min() - r, cy.min() - r, z[0]), (cx.max() + r, cy.max() + r, z[-1]))


def _paint_shape(canvas: Canvas, grid: Grid, box: Box | None, sdf, value, label: int,
                 partial_volume: bool = True) -> None:
    """Sample ``sdf`` in ``box`` and composite it with a scalar or a ``value(x, y, z, d)`` signal."""
    if box is None:
        return
    if callable(value):
        frac, paint = sample(grid, box, sdf, value, partial_volume=partial_volume)
        canvas.paint(box, frac, None, label, paint=paint)
    else:
        frac, _ = sample(grid, box, sdf, partial_volume=partial_volume)
        canvas.paint(box, frac, value, label)


def _inner(box: Box, outer: Box) -> tuple[Box, Box] | None:
    """The overlap of ``box`` with ``outer``: (absolute box, box relative to ``outer``)."""
    absolute, relative = [], []
    for s, o in zip(box, outer):
        lo, hi = max(s.start, o.start), min(s.stop, o.stop)
        if hi <= lo:
            return None
        absolute.append(slice(lo, hi))
        relative.append(slice(lo - o.start, hi - o.start))
    return tuple(absolute), tuple(relative)  # type: ignore[return-value]


def tube_fraction(grid: Grid, tubes: tuple[Tube, ...], outer: Box) -> Array:
    """Union (max) of the partial-volume fractions of ``tubes``, on the box ``outer``."""
    shape = tuple(s.stop - s.start for s in outer)
    frac = np.zeros(shape, np.float32)
    for tube in tubes:
        box = grid.box(*tube.bounds())
        overlap = _inner(box, outer) if box is not None else None
        if overlap is None:
            continue
        absolute, relative = overlap
        f, _ = sample(grid, absolute, tube.sdf)
        np.maximum(frac[relative], f, out=frac[relative])
    return frac


def _sample_tight(grid: Grid, box: Box, sdf) -> tuple[Box, Array]:
    """Sample a shape on ``box`` and shrink the box to the voxels it touches."""
    frac, _ = sample(grid, box, sdf)
    used = [np.flatnonzero(frac.any(axis=other)) for other in ((1, 2), (0, 2), (0, 1))]
    rel = tuple(slice(int(u[0]), int(u[-1]) + 1) for u in used)
    tight = tuple(slice(b.start + r.start, b.start + r.stop) for b, r in zip(box, rel))
    return tight, np.ascontiguousarray(frac[rel])  # type: ignore[return-value]


def _smooth_noise(rng: np.random.Generator, shape, sigma_mm: float, spacing) -> Array:
    """Gaussian-filtered white noise with unit SD and correlation length ``sigma_mm``."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32),
                                    sigma=[sigma_mm / s for s in spacing], mode="reflect")
    return noise / max(float(noise.std()), 1e-6)


def render_anatomy(anat: Anatomy, grid: Grid) -> Rendered:
    """Paint everything but the lesions onto a new canvas for ``grid``."""
    s = anat.signals
    canvas = Canvas.empty(grid)
    full = grid.full()
    x, y, z = grid.axis(0)[:, None, None], grid.axis(1)[None, :, None], grid.axis(2)[None, None, :]
    px = grid.pixel

    # body wall, the same on every slice: fat (suppression failing towards the skin), muscle, then
    # the cavity's visceral fat; painted on one slice and copied to all
    flat = Canvas(np.zeros((*grid.shape[:2], 1), np.float32), np.zeros((*grid.shape[:2], 1), np.uint8))
    one = (full[0], full[1], slice(0, 1))
    d_body = anat.body.sdf(x, y, z[:, :, :1])
    flat.paint(one, occupancy(d_body, px), s.fat + s.fat_edge * np.exp(np.minimum(d_body, 0) / 10.0), T["fat"])
    flat.paint(one, occupancy(d_body + anat.body.fat_mm, px), s.muscle, T["muscle"])
    flat.paint(one, occupancy(d_body + (anat.body.fat_mm + anat.body.wall_mm), px), s.visceral, T["visceral"])
    canvas.signal[:] = flat.signal
    canvas.labels[:] = flat.labels

    below = anat.diaphragm.below_sdf
    cav = anat.body.cavity_sdf
    _paint_thorax(canvas, grid, anat)
    for blob, gas in zip(anat.bowel, anat.bowel_gas):
        _paint_shape(canvas, grid, grid.box(*blob.bounds()),
                     lambda x, y, z, b=blob: np.maximum(b.sdf(x, y, z), cav(x, y, z)),
                     s.air if gas else s.bowel, T["bowel"])
    if anat.stomach is not None:
        st = anat.stomach
        _paint_shape(canvas, grid, grid.box(*st.bounds()),
                     lambda x, y, z: np.maximum(np.maximum(st.sdf(x, y, z), below(x, y, z)), cav(x, y, z)),
                     lambda x, y, z, d: np.where(y > anat.stomach_gas_y, s.air, s.stomach).astype(np.float32),
                     T["stomach"])
    for kidney in anat.kidneys:
        medulla = Ellipsoid(kidney.centre, tuple(0.5 * r for r in kidney.radii), kidney.rotation)
        box = grid.box(*kidney.bounds())
        _paint_shape(canvas, grid, box, kidney.sdf, s.kidney_cortex, T["kidney"])
        _paint_shape(canvas, grid, box, medulla.sdf, s.kidney_medulla, T["kidney"])
    sp = anat.spleen
    _paint_shape(canvas, grid, grid.box(*sp.bounds()),
                 lambda x, y, z: np.maximum(np.maximum(sp.sdf(x, y, z), below(x, y, z)), cav(x, y, z)),
                 s.spleen, T["spleen"])
    _paint_spine(canvas, grid, anat)
    _paint_shape(canvas, grid, _column_box(grid, anat.aorta), anat.aorta.sdf, s.blood, T["aorta"], False)

    # the liver with its texture, then the vessels and ducts inside it
    lbox, liver_frac = _sample_tight(grid, grid.box(*anat.liver_bounds()), anat.liver_sdf)
    canvas.paint(lbox, liver_frac, _liver_signal(anat, grid, liver_frac.shape), T["liver"])
    for tubes, value, label in ((anat.portal, s.blood, T["portal_vein"]), (anat.hepatic, s.blood, T["hepatic_vein"]),
                                (anat.bile, s.bile, T["bile_duct"])):
        frac = np.minimum(tube_fraction(grid, tubes, lbox), liver_frac)
        canvas.paint(lbox, frac, value, label)
    _paint_shape(canvas, grid, _column_box(grid, anat.ivc), anat.ivc.sdf, s.blood, T["ivc"], False)
    _paint_shape(canvas, grid, grid.box(*anat.portal_trunk.bounds()), anat.portal_trunk.sdf, s.blood,
                 T["portal_vein"])
    if anat.gallbladder is not None:
        _paint_shape(canvas, grid, grid.box(*anat.gallbladder.bounds()), anat.gallbladder.sdf, s.gallbladder,
                     T["gallbladder"])
    return Rendered(canvas, lbox, liver_frac)


def _liver_signal(anat: Anatomy, grid: Grid, shape) -> Array:
    """Parenchymal signal on the liver box: base level, fine texture, regenerative nodules."""
    liver = anat.liver
    rng = np.random.default_rng(anat.texture_seed)
    value = liver.base_signal * (1.0 + liver.texture_sd * _smooth_noise(rng, shape, 1.2, grid.spacing))
    if liver.nodule_sd > 0:
        value *= 1.0 + liver.nodule_sd * _smooth_noise(rng, shape, 3.5, grid.spacing)
    return value.astype(np.float32, copy=False)


def _paint_thorax(canvas: Canvas, grid: Grid, anat: Anatomy) -> None:
    """Diaphragm muscle, lung bases and the heart above the diaphragm."""
    s, dia, body = anat.signals, anat.diaphragm, anat.body
    half = body.a
    xs = np.linspace(-half, half, 61)[:, None]
    ys = np.linspace(-body.b_post, body.b_ant, 61)[None, :]
    z_lo = float(dia.height(xs, ys)[body.cavity_sdf(xs, ys, 0.0) < 0].min())
    box = grid.box((-half, -body.b_post, z_lo), (half, body.b_ant, grid.axis(2)[-1] + grid.spacing[2]))
    if box is None:
        return
    cav = body.cavity_sdf
    t = np.float32(dia.thickness)
    _paint_shape(canvas, grid, box, lambda x, y, z: np.maximum(cav(x, y, z), -dia.below_sdf(x, y, z)),
                 s.muscle, T["muscle"])
    def above(x, y, z):  # above the diaphragm's upper surface
        return t - dia.below_sdf(x, y, z)

    def lung(x, y, z):
        return np.maximum(cav(x, y, z) + 2.0, above(x, y, z))

    _paint_shape(canvas, grid, box, lung, s.air, T["lung"])
    for tube in anat.lung_vessels:
        _paint_shape(canvas, grid, grid.box(*tube.bounds()),
                     lambda x, y, z, v=tube: np.maximum(v.sdf(x, y, z), lung(x, y, z)), s.blood, T["lung"])
    heart = anat.heart
    if anat.pericardial_fat_mm > 0:
        fat = Ellipsoid(heart.centre, tuple(r + anat.pericardial_fat_mm for r in heart.radii), heart.rotation)
        _paint_shape(canvas, grid, grid.box(*fat.bounds()),
                     lambda x, y, z: np.maximum(fat.sdf(x, y, z), above(x, y, z)), s.visceral, T["visceral"])
    for shape, value in ((heart, s.heart), *((pool, s.blood) for pool in anat.heart_blood)):
        _paint_shape(canvas, grid, grid.box(*shape.bounds()),
                     lambda x, y, z, e=shape: np.maximum(e.sdf(x, y, z), above(x, y, z)), value, T["heart"])


def _paint_spine(canvas: Canvas, grid: Grid, anat: Anatomy) -> None:
    """Vertebral bodies with discs, the spinal canal, and the paraspinal muscles behind them."""
    s = anat.signals
    period, phase = anat.disc_period, anat.disc_phase

    def bone_or_disc(x, y, z, d):
        return np.where((z - phase) % period < 7.0, s.disc, s.bone).astype(np.float32)

    body_sdf = anat.body.sdf
    for muscle in anat.paraspinal:
        box = grid.box(*muscle.bounds())
        _paint_shape(canvas, grid, box, lambda x, y, z, m=muscle: np.maximum(m.sdf(x, y, z), body_sdf(x, y, z) + 4.0),
                     s.muscle, T["muscle"], False)
    _paint_shape(canvas, grid, _column_box(grid, anat.vertebra), anat.vertebra.sdf, bone_or_disc, T["bone"])
    _paint_shape(canvas, grid, _column_box(grid, anat.canal), anat.canal.sdf, s.csf, T["csf"], False)
