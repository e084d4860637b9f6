"""Branching vessel trees (portal and hepatic veins) and the bile ducts beside the portal branches.

A tree is a tuple of tapered tubes (``Tube``) in the patient frame (mm). Branches cut across by a
slice show as small dark discs: the paper's main source of false-positive lesions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import shapes
from .shapes import Array, Vec3


@dataclass(frozen=True)
class Tube:
    """A tapered tube from ``a`` (radius ``ra``) to ``b`` (radius ``rb``), mm."""

    a: Vec3
    b: Vec3
    ra: float
    rb: float

    def sdf(self, x, y, z) -> Array:
        return shapes.capsule(x, y, z, self.a, self.b, self.ra, self.rb)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        r = max(self.ra, self.rb)
        return np.minimum(self.a, self.b) - r, np.maximum(self.a, self.b) + r

    @property
    def direction(self) -> np.ndarray:
        d = np.subtract(self.b, self.a, dtype=np.float64)
        return d / max(float(np.linalg.norm(d)), 1e-9)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _perpendicular(rng: np.random.Generator, d: np.ndarray) -> np.ndarray:
    """A random unit vector perpendicular to the unit vector ``d``."""
    v = rng.normal(size=3)
    return _unit(v - (v @ d) * d)


def grow_tree(rng: np.random.Generator, start, direction, radius: float, length: float,
              min_radius: float = 1.0, max_depth: int = 5) -> tuple[Tube, ...]:
    """Grow a tree of tapering, forking tubes from ``start`` along ``direction``.

    Each segment bends a little, narrows by 10 %, and forks into two (sometimes three) children
    that turn away by 15-50 degrees, are 60-92 % as wide and 70-90 % as long.

    Args:
        rng: random generator.
        start: root point (mm).
        direction: initial direction (any length).
        radius: root radius (mm).
        length: root segment length (mm).
        min_radius: no children below this radius.
        max_depth: most generations after the root.
    """
    tubes: list[Tube] = []
    stack = [(np.asarray(start, np.float64), _unit(np.asarray(direction, np.float64)), radius, length, 0)]
    while stack:
        p, d, r, seg, depth = stack.pop()
        d = _unit(d + rng.normal(0.0, 0.12, 3))
        q = p + d * seg
        r_end = r * 0.9
        tubes.append(Tube(tuple(p), tuple(q), float(r), float(r_end)))
        if depth >= max_depth or r_end < min_radius:
            continue
        n_children = 3 if rng.random() < 0.2 else 2
        for child in range(n_children):
            angle = np.deg2rad(rng.uniform(15, 30) if child == 0 else rng.uniform(30, 50))
            turned = _unit(np.cos(angle) * d + np.sin(angle) * _perpendicular(rng, d))
            width = rng.uniform(0.8, 0.92) if child == 0 else rng.uniform(0.6, 0.78)
            stack.append((q, turned, r_end * width, seg * rng.uniform(0.7, 0.9), depth + 1))
    return tuple(tubes)


def bile_ducts(rng: np.random.Generator, portal: tuple[Tube, ...], min_radius: float = 2.5) -> tuple[Tube, ...]:
    """Bile ducts running beside the portal branches wider than ``min_radius`` (mm)."""
    ducts = []
    for t in portal:
        if t.ra < min_radius:
            continue
        offset = _perpendicular(rng, t.direction) * (t.ra + rng.uniform(1.5, 3.0))
        width = rng.uniform(0.25, 0.4)
        ducts.append(Tube(tuple(np.add(t.a, offset)), tuple(np.add(t.b, offset)),
                          max(0.8, t.ra * width), max(0.8, t.rb * width)))
    return tuple(ducts)
