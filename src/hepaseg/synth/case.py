"""One synthetic case: anatomy, lesions, scan, acquisition and raters, from (seed, case index).

Every random draw comes from ``np.random.default_rng([seed, index, stream])``, one stream per
stage, so a case never depends on other cases, on the number of workers, or on the order of work.
All arrays here are in the file's voxel order (see ``Scan.to_file``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from .acquisition import acquire, draw_acquisition
from .anatomy import Anatomy, draw_anatomy
from .appearance import Appearance, apply_appearance, draw_appearance, texture
from .distort import Deformation, cut_field_of_view
from .lesions import Lesion, draw_lesions, render_lesions
from .raters import contour, draw_plan, lesion_gaps
from .render import TISSUES, render_anatomy
from .scanner import Scan, draw_scan
from .spec import CohortSpec
from .variation import vary_anatomy

STREAMS = {"anatomy": 1, "lesions": 2, "scan": 3, "acquisition": 4, "appearance": 5, "geometry": 6, "variation": 7, "raters": 10}


def case_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The generator of one stage of one case."""
    return np.random.default_rng([seed, index, stream])


def case_id(index: int) -> str:
    return f"case{index:03d}"


@dataclass
class Case:
    """A generated case, arrays in file voxel order.

    Attributes:
        image: (i, j, k) int16 stored intensities.
        affine: (4, 4) voxel -> RAS+ mm.
        liver: uint8 0/1 liver mask (tumours included).
        truth: uint8 0/1 true tumour mask.
        tissues: uint8 tissue codes (``TISSUES``).
        raters: rater name -> uint8 0/1 tumour mask, for the raters of the case's split.
        meta: JSON-ready description (geometry, intensity, anatomy, lesions, rater decisions).
    """

    image: NDArray[np.int16]
    affine: NDArray[np.float64]
    liver: NDArray[np.uint8]
    truth: NDArray[np.uint8]
    tissues: NDArray[np.uint8]
    raters: dict[str, NDArray[np.uint8]]
    meta: dict


def make_case(spec: CohortSpec, seed: int, index: int) -> Case:
    """Generate case ``index`` of the cohort ``spec`` with ``seed``."""
    split = spec.split_of(index)
    rng = case_rng(seed, index, STREAMS["anatomy"])
    anat = draw_anatomy(rng, cirrhotic=bool(rng.random() < 0.35))
    if spec.randomized:
        anat = vary_anatomy(case_rng(seed, index, STREAMS["variation"]), anat)
    lesions = draw_lesions(case_rng(seed, index, STREAMS["lesions"]), anat,
                           least=1 if split == "test" else 0, most=spec.lesions_max)
    scan = draw_scan(case_rng(seed, index, STREAMS["scan"]), spec, anat)
    look, deformation = None, None
    if spec.randomized:
        anat, lesions, scan, look, deformation = _randomize(seed, index, anat, lesions, scan)
        acq = look.acquisition
    else:
        acq = draw_acquisition(case_rng(seed, index, STREAMS["acquisition"]))
    grid = scan.grid

    rendered = render_anatomy(anat, grid)
    maps = render_lesions(lesions, rendered, grid)
    liver = np.zeros(grid.shape, bool)
    liver[rendered.liver_box] = rendered.liver_frac >= 0.5
    liver |= maps.truth > 0
    if deformation is not None:
        canvas = rendered.canvas
        canvas.signal, canvas.labels, liver, maps.truth = deformation.apply(
            [canvas.signal, canvas.labels, liver, maps.truth], grid, [1, 0, 0, 0])
        canvas.signal = texture(canvas.signal, canvas.labels, look, grid.spacing, look.acquisition.noise_seed + 1)
    image = acquire(rendered.canvas.signal, acq, grid)
    rendered.canvas.signal = np.empty(0, np.float32)  # free the float volume early

    raters, plans = {}, {}
    profiles = spec.raters_for(split)
    if profiles:
        gaps = lesion_gaps(maps, grid, max(p.merge_gap_mm for p in profiles))
        for r, profile in enumerate(spec.raters):
            if profile not in profiles:
                continue
            rng = case_rng(seed, index, STREAMS["raters"] + r)
            plan = draw_plan(rng, profile, lesions, maps, gaps, anat.portal + anat.hepatic, grid)
            raters[profile.name] = scan.to_file(contour(rng, profile, plan, maps, liver, grid).view(np.uint8))
            plans[profile.name] = plan.to_dict()

    voxels = np.bincount(maps.truth.ravel(), minlength=len(lesions) + 1)
    table = np.asarray(scan.table)
    lesion_rows = [{
        "id": les.id, "kind": les.kind, "diameter_mm": round(les.diameter_mm, 2),
        "centre_mm": [round(float(c), 2) for c in np.add(les.centre, table)],
        "centre_voxel": [round(float(c), 2) for c in scan.file_index(
            (np.asarray(les.centre) - np.asarray(grid.origin)) / np.asarray(grid.spacing))],
        "faint": les.faint, "border": les.border, "satellite_of": les.satellite_of,
        "signal": round(les.signal, 3), "core_signal": round(les.core_signal, 3),
        "voxels": int(voxels[les.id]) if les.id < len(voxels) else 0,
    } for les in lesions]
    affine = scan.affine()
    meta = {
        "id": case_id(index), "split": split, "seed": seed, "index": index,
        "geometry": {"shape": list(scan.file_shape), "spacing_mm": [grid.spacing[a] for a in scan.axes],
                     "orientation": scan.orientation(), "slice_axis": 2, "affine": affine.round(6).tolist()},
        "intensity": acq.to_dict(),
        "appearance": None if look is None else look.to_dict(),
        "anatomy": {"cirrhotic": anat.liver.cirrhotic, "liver_span_mm": round(anat.span_mm, 1),
                    "gallbladder": anat.gallbladder is not None,
                    "signals": {k: round(v, 3) for k, v in asdict(anat.signals).items()},
                    "tissue_labels": TISSUES},
        "lesions": [row for row in lesion_rows if row["voxels"] > 0],
        "raters": plans,
    }
    return Case(image=scan.to_file(image), affine=affine, liver=scan.to_file(liver.view(np.uint8)),
                truth=scan.to_file((maps.truth > 0).view(np.uint8)), tissues=scan.to_file(rendered.canvas.labels),
                raters=raters, meta=meta)


def _randomize(seed: int, index: int, anat: Anatomy, lesions: tuple[Lesion, ...], scan: Scan
               ) -> tuple[Anatomy, tuple[Lesion, ...], Scan, Appearance, Deformation]:
    """A randomised case (``CohortSpec.randomized``): its appearance (signals and signal chain), a
    field of view that may cut the liver, and a smooth deformation, each from its own stream."""
    look = draw_appearance(case_rng(seed, index, STREAMS["appearance"]))
    anat, lesions = apply_appearance(anat, lesions, look)
    rng = case_rng(seed, index, STREAMS["geometry"])
    grid, _ = cut_field_of_view(rng, scan.grid, anat.diaphragm.right[2], anat.span_mm)
    return anat, lesions, dataclasses.replace(scan, grid=grid), look, Deformation.draw(rng)
