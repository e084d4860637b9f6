"""Simulated human raters: who sees which lesion, and how each one draws it, slice by slice.

A rater (``RaterProfile``) first decides what to contour (``draw_plan``): a lesion is seen when
``slope * log(d_eff / d50) + 0.6 * conspicuity + 0.8 * noise > 0``, where ``d_eff`` shrinks with
low contrast and thick slices and ``conspicuity`` is shared by all raters (hard lesions are hard for
everyone). Nearby lesions may be merged into one contour; a vessel cut across may be contoured as
a lesion. Then it draws (``contour``): on each slice the edge is placed where the partial-volume
fraction crosses a jittered level, then moved outwards or inwards by the rater's rim bias plus
per-slice jitter and a smooth in-plane wobble, so boundaries differ between raters and between slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import convex_hull_image

from .lesions import Lesion, LesionMaps
from .raster import Box, Grid
from .spec import RaterProfile
from .vessels import Tube

SHARED = 0.6  # weight of the shared conspicuity in the detection score (unit total variance)
Mask = NDArray[np.bool_]


@dataclass(frozen=True)
class RatingPlan:
    """What one rater contours in one case.

    Attributes:
        seen: ids of the lesions contoured.
        groups: sets of seen lesion ids drawn as one lesion (merges), each of size >= 2.
        false_positives: (centre index (i, j, k), radius mm, slices) of non-lesions contoured.
    """

    seen: tuple[int, ...]
    groups: tuple[tuple[int, ...], ...]
    false_positives: tuple[tuple[tuple[int, int, int], float, int], ...]

    def to_dict(self) -> dict:
        return {"seen": list(self.seen), "merged": [list(g) for g in self.groups],
                "false_positives": len(self.false_positives)}


def effective_diameter(lesion: Lesion, slice_mm: float) -> float:
    """Diameter (mm) scaled down for low contrast (1 at a relative signal of 0.5, 0.55 for the
    faintest) and for lesions thinner than the slice."""
    contrast = np.clip((1.0 - lesion.signal) / 0.5, 0.3, 1.3) ** 0.5
    thickness = np.clip(lesion.diameter_mm / slice_mm, 0.3, 1.0) ** 0.5
    return float(lesion.diameter_mm * contrast * thickness)


def lesion_gaps(maps: LesionMaps, grid: Grid, max_gap_mm: float) -> dict[tuple[int, int], float]:
    """Surface-to-surface distance (mm) between truth lesions closer than ``max_gap_mm``."""
    gaps: dict[tuple[int, int], float] = {}
    ids = sorted(maps.fractions)
    pad = [int(np.ceil(max_gap_mm / s)) + 1 for s in grid.spacing]
    for a in ids:
        box_a = maps.fractions[a][0]
        big = tuple(slice(max(0, b.start - p), min(n, b.stop + p)) for b, p, n in zip(box_a, pad, grid.shape))
        region = maps.truth[big]
        others = [b for b in np.unique(region) if b > a]
        if not others:
            continue
        dist = ndimage.distance_transform_edt(region != a, sampling=grid.spacing)
        for b in others:
            gap = float(dist[region == b].min()) - float(np.mean(grid.spacing[:2]))
            if gap <= max_gap_mm:
                gaps[(a, int(b))] = max(gap, 0.0)
    return gaps


def draw_plan(rng: np.random.Generator, profile: RaterProfile, lesions: tuple[Lesion, ...], maps: LesionMaps,
              gaps: dict[tuple[int, int], float], vessels: tuple[Tube, ...], grid: Grid) -> RatingPlan:
    """Decide which lesions the rater sees, which it merges, and which vessels it mistakes for lesions."""
    seen = []
    for lesion in lesions:
        if lesion.id not in maps.fractions:
            continue
        d_eff = effective_diameter(lesion, grid.spacing[2])
        score = (profile.slope * np.log(d_eff / profile.d50_mm) + SHARED * lesion.conspicuity
                 + np.sqrt(1 - SHARED**2) * rng.normal())
        if score > 0:
            seen.append(lesion.id)
    parent = {i: i for i in seen}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for (a, b), gap in sorted(gaps.items()):
        if a in parent and b in parent and gap <= profile.merge_gap_mm and rng.random() < profile.merge_probability:
            parent[root(b)] = root(a)
    members: dict[int, list[int]] = {}
    for i in seen:
        members.setdefault(root(i), []).append(i)
    groups = tuple(tuple(g) for g in members.values() if len(g) > 1)

    fps = []
    candidates = [t for t in vessels if 1.5 <= t.rb and t.ra <= 5.0]
    for _ in range(int(rng.poisson(profile.false_positives)) if candidates else 0):
        tube = candidates[int(rng.integers(len(candidates)))]
        point = np.add(tube.a, rng.uniform(0.3, 0.7) * np.subtract(tube.b, tube.a))
        index = np.rint((point - np.asarray(grid.origin)) / np.asarray(grid.spacing)).astype(int)
        if np.all(index >= 0) and np.all(index < grid.shape):
            radius = float((tube.ra + tube.rb) / 2 + rng.uniform(0.3, 1.2))
            fps.append((tuple(int(i) for i in index), radius, int(rng.integers(1, 3))))
    return RatingPlan(tuple(seen), groups, tuple(fps))


def _slice_edges(rng: np.random.Generator, profile: RaterProfile, frac: NDArray[np.float32]) -> Mask:
    """Draw one lesion slice by slice from its partial-volume fraction (box array (ni, nj, nk))."""
    out = np.zeros(frac.shape, bool)
    for k in range(frac.shape[2]):
        f = frac[:, :, k]
        level = float(np.clip(profile.level + profile.level_sd * rng.normal(), 0.15, 0.85))
        inside = f >= level
        if not inside.any():
            continue
        signed = np.where(inside, 0.5 - ndimage.distance_transform_edt(inside),
                          ndimage.distance_transform_edt(~inside) - 0.5)
        wobble = ndimage.gaussian_filter(rng.standard_normal(f.shape), 3.0, mode="nearest")
        wobble *= profile.wobble_vox / max(float(wobble.std()), 1e-6)
        offset = profile.rim_vox + profile.rim_sd_vox * rng.normal()
        out[:, :, k] = signed <= offset + wobble
    return out


def _padded(maps: LesionMaps, lesion_id: int, grid: Grid, pad: int) -> tuple[Box, NDArray[np.float32]]:
    """The lesion's fraction on its box grown in-plane by ``pad`` voxels (zeros outside)."""
    box, frac = maps.fractions[lesion_id]
    big = tuple(slice(max(0, b.start - p), min(n, b.stop + p)) for b, p, n in zip(box, (pad, pad, 0), grid.shape))
    out = np.zeros(tuple(b.stop - b.start for b in big), np.float32)
    out[tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, big))] = frac
    return big, out  # type: ignore[return-value]


def contour(rng: np.random.Generator, profile: RaterProfile, plan: RatingPlan, maps: LesionMaps,
            liver: Mask, grid: Grid) -> Mask:
    """The rater's tumour mask (canonical grid), restricted to the liver mask."""
    mask = np.zeros(grid.shape, bool)
    pad = int(np.ceil(abs(profile.rim_vox) + 3 * profile.rim_sd_vox + 2 * profile.wobble_vox)) + 2
    drawn: dict[int, tuple[Box, Mask]] = {}
    for lesion_id in plan.seen:
        box, frac = _padded(maps, lesion_id, grid, pad)
        drawn[lesion_id] = (box, _slice_edges(rng, profile, frac))
    for group in plan.groups:
        _merge(group, drawn, mask)
    merged = {i for g in plan.groups for i in g}
    for lesion_id, (box, m) in drawn.items():
        if lesion_id not in merged:
            mask[box] |= m
    for centre, radius, n_slices in plan.false_positives:
        _disc(mask, grid, centre, radius, n_slices)
    mask &= liver
    return mask


def _merge(group: tuple[int, ...], drawn: dict[int, tuple[Box, Mask]], mask: Mask) -> None:
    """Draw a group of lesions as one: on slices showing two or more, fill their convex hull."""
    boxes = [drawn[i][0] for i in group]
    big = tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(3))
    union = np.zeros(tuple(b.stop - b.start for b in big), bool)
    count = np.zeros(union.shape[2], int)
    for i in group:
        box, m = drawn[i]
        rel = tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, big))
        union[rel] |= m
        count[rel[2]] += m.any(axis=(0, 1))
    for k in np.flatnonzero(count >= 2):
        union[:, :, k] = convex_hull_image(union[:, :, k])
    mask[big] |= union


def _disc(mask: Mask, grid: Grid, centre: tuple[int, int, int], radius_mm: float, n_slices: int) -> None:
    """A disc of ``radius_mm`` around ``centre`` on ``n_slices`` slices from it upwards."""
    r = int(np.ceil(radius_mm / grid.pixel))
    i0, j0, k0 = centre
    ii, jj = np.ogrid[-r:r + 1, -r:r + 1]
    disc = (ii**2 + jj**2) * grid.pixel**2 <= radius_mm**2
    si = slice(max(0, i0 - r), min(grid.shape[0], i0 + r + 1))
    sj = slice(max(0, j0 - r), min(grid.shape[1], j0 + r + 1))
    di = slice(si.start - (i0 - r), si.stop - (i0 - r))
    dj = slice(sj.start - (j0 - r), sj.stop - (j0 - r))
    for k in range(k0, min(grid.shape[2], k0 + n_slices)):
        mask[si, sj, k] |= disc[di, dj]
