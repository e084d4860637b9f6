"""Analytic shapes as approximate signed distance functions (SDF, mm; < 0 inside).

Every function takes coordinates ``x, y, z`` in mm that broadcast against each other: usually
vectors shaped (n, 1, 1), (1, n, 1), (1, 1, n) from a grid box, or equal-length point lists.
Distances are exact on the surface and first-order accurate near it, which is all that the
partial-volume rendering (a soft edge one voxel wide) and lesion placement need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float32]
Vec3 = tuple[float, float, float]


def _rotate(rotation: NDArray, px, py, pz) -> list:
    """``rotation @ (px, py, pz)`` on broadcastable arrays, skipping zero coefficients so that a
    rotation about z keeps in-plane arrays two-dimensional."""
    out = []
    for row in np.asarray(rotation, dtype=np.float64):
        terms = [float(c) * p for c, p in zip(row, (px, py, pz)) if abs(c) > 1e-12]
        acc = terms[0]
        for t in terms[1:]:
            acc = acc + t
        out.append(acc)
    return out


def ellipsoid(x, y, z, centre: Vec3, radii: Vec3, rotation: NDArray | None = None) -> Array:
    """Signed distance (mm) to an ellipsoid; ``rotation`` (3, 3) maps world offsets to its axes.

    Uses ``(q - 1) / |grad q|`` with ``q`` the ellipsoid norm: exact on the surface, first-order near it.
    """
    p = [x - float(centre[0]), y - float(centre[1]), z - float(centre[2])]
    if rotation is not None:
        p = _rotate(rotation, *p)
    r = [float(v) for v in radii]
    s1 = (p[0] * (1 / r[0])) ** 2 + (p[1] * (1 / r[1])) ** 2 + (p[2] * (1 / r[2])) ** 2
    s2 = (p[0] * (1 / r[0] ** 2)) ** 2 + (p[1] * (1 / r[1] ** 2)) ** 2 + (p[2] * (1 / r[2] ** 2)) ** 2
    return ((s1 - np.sqrt(s1)) / np.sqrt(np.maximum(s2, 1e-12))).astype(np.float32, copy=False)


def ellipse(x, y, centre: tuple[float, float], radii: tuple[float, float]) -> Array:
    """Signed distance (mm) to an elliptic cylinder along z; centre and radii may vary with z."""
    px, py = x - centre[0], y - centre[1]
    a, b = radii
    s1 = (px / a) ** 2 + (py / b) ** 2
    s2 = (px / a**2) ** 2 + (py / b**2) ** 2
    return ((s1 - np.sqrt(s1)) / np.sqrt(np.maximum(s2, 1e-12))).astype(np.float32, copy=False)


def capsule(x, y, z, a: Vec3, b: Vec3, ra: float, rb: float) -> Array:
    """Signed distance (mm) to a tapered tube from point ``a`` (radius ``ra``) to ``b`` (``rb``)."""
    d = [float(bi - ai) for ai, bi in zip(a, b)]
    length2 = max(d[0] ** 2 + d[1] ** 2 + d[2] ** 2, 1e-9)
    px, py, pz = x - float(a[0]), y - float(a[1]), z - float(a[2])
    t = np.clip((px * d[0] + py * d[1] + pz * d[2]) * (1 / length2), 0.0, 1.0)
    dist = np.sqrt((px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2)
    return (dist - (float(ra) + float(rb - ra) * t)).astype(np.float32, copy=False)


def smooth_union(a: Array, b: Array, k: float) -> Array:
    """Union of two SDFs with a fillet of about ``k`` mm (polynomial smooth minimum)."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def smooth_intersection(a: Array, b: Array, k: float) -> Array:
    """Intersection of two SDFs with a fillet of about ``k`` mm."""
    return -smooth_union(-a, -b, k)


def random_rotation(rng: np.random.Generator, max_angle_deg: float = 180.0) -> NDArray[np.float64]:
    """A random rotation matrix (3, 3) with angles up to ``max_angle_deg`` about each axis."""
    ax, ay, az = np.deg2rad(rng.uniform(-max_angle_deg, max_angle_deg, 3))
    return rotation_xyz(ax, ay, az)


def rotation_xyz(ax: float, ay: float, az: float) -> NDArray[np.float64]:
    """Rotation matrix (3, 3) for angles (radians) about x, then y, then z."""
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class WaveField:
    """A smooth random field: a sum of plane waves in random directions (isotropic, no grid pattern).

    ``value(p) = sum_t amp[t] * sin(k[t] . p + phase[t])`` with wave vectors in rad/mm.
    """

    k: NDArray[np.float64]  # (terms, 3) rad / mm
    phase: NDArray[np.float64]  # (terms,) rad
    amp: NDArray[np.float64]  # (terms,) mm or signal units

    @classmethod
    def draw(cls, rng: np.random.Generator, terms: int, wavelength_mm: tuple[float, float],
             amplitude: float) -> WaveField:
        """Draw a field whose wavelengths lie in ``wavelength_mm`` and whose SD is about ``amplitude``."""
        direction = rng.normal(size=(terms, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        k = direction * (2 * np.pi / rng.uniform(*wavelength_mm, size=terms))[:, None]
        phase = rng.uniform(0, 2 * np.pi, size=terms)
        # each term has variance amp^2 / 2; scale so that the sum has SD ``amplitude``
        amp = rng.normal(1.0, 0.3, size=terms) * amplitude * np.sqrt(2.0 / terms)
        return cls(k, phase, amp)

    def __call__(self, x, y, z) -> Array:
        total = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), dtype=np.float32)
        for (kx, ky, kz), p, a in zip(self.k.tolist(), self.phase.tolist(), self.amp.tolist()):
            total += a * np.sin(kx * x + p + ky * y + kz * z)
        return total
