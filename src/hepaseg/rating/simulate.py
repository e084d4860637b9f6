"""``hepaseg rate simulate``: a simulated rater standing in for a radiologist on a synthetic cohort.

It is not a radiologist and is labelled as simulated everywhere (database, ``ratings.csv``,
``summary.json``, Fig. 4, the report). It needs the cohort's hidden true tumour mask
(``tumor_truth`` in the manifest, or ``tumor_truth.nii.gz`` beside the case's image, as ``hepaseg
synth`` writes it) and so works only on synthetic cohorts.

The model, per simulated rater (index k in the rating folder's rater list, generator
``numpy.random.default_rng([seed, k, 1])``):

- a rater bias ``b ~ N(0, BIAS_SD)``, drawn once;
- contour rating = ``1 + 4 * Dice(contour, truth) + b + N(0, noise)``, rounded and clipped to 1-5
  (Dice on the viewer's crop, 1 when both are empty);
- image quality per round = ``q + N(0, QUALITY_SD)``, rounded and clipped to 1-3, where the case's
  latent quality ``q = 1 + 2 * clip((snr - 15) / 25, 0, 1) - 10 * ghost_amplitude`` comes from the
  synthetic acquisition (``meta.json``; 2 where it is missing).

Items are rated in the order the rater would see them, each committed with its time, through the
same store as the web app's ratings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.manifest import load_manifest
from ..errors import InputError
from ..io.volumes import read_volume
from . import images
from .prepare import open_store
from .protocol import QUALITY_SCALE, RATING_SCALE

BIAS_SD = 0.3
QUALITY_SD = 0.35
DEFAULT_NOISE = 0.5


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean arrays; 1 when both are empty."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def latent_quality(case_meta: dict) -> float:
    """The case's latent image quality from the synthetic acquisition (see the module docstring)."""
    intensity = case_meta.get("intensity", {})
    if "snr" not in intensity:
        return 2.0
    snr_term = float(np.clip((intensity["snr"] - 15.0) / 25.0, 0.0, 1.0))
    return 1.0 + 2.0 * snr_term - 10.0 * float(intensity.get("ghost_amplitude", 0.0))


def _truth_path(case) -> Path:
    path = case.tumor.get("truth", case.image.parent / "tumor_truth.nii.gz")
    if not Path(path).is_file():
        raise InputError(path, "no hidden true tumour mask: 'rate simulate' works only on a synthetic cohort")
    return Path(path)


def simulate_ratings(folder: str | Path, seed: int = 0, noise: float = DEFAULT_NOISE,
                     raters: Sequence[str] | None = None) -> int:
    """Rate every item of ``raters`` (default: all) as the simulated rater; returns the items rated.

    Raises:
        InputError: not a rating folder, an unknown rater, a rater who already gave ratings as a
            person, or a case without a true tumour mask.
    """
    store = open_store(folder)
    meta = store.meta()
    known = store.raters()
    chosen = list(raters) if raters else list(meta["raters"])
    for rater in chosen:
        if rater not in known:
            raise InputError(folder, f"no rater {rater!r} in this rating folder")
        if not known[rater] and any(i.rating is not None or i.quality is not None for i in store.items(rater)):
            raise InputError(folder, f"rater {rater} has given ratings; only raters without any can be simulated")
    dataset = load_manifest(meta["manifest"])
    agreement: dict[int, float] = {}
    quality: dict[str, float] = {}
    by_case: dict[str, list] = {}
    for contour in store.contours():
        by_case.setdefault(contour.case, []).append(contour)
    known_cases = {c.id: c for c in dataset.cases}
    for case_id, contours in by_case.items():
        if case_id not in known_cases:
            raise InputError(meta["manifest"], f"case {case_id} of the rating folder is not in this manifest")
        case = known_cases[case_id]
        image, liver, frame = images.read_case(case.image, case.liver, case.series)
        truth = images.mask_stack(read_volume(_truth_path(case)), image, frame)
        for contour in contours:
            mask = images.unpack_mask((Path(folder) / contour.mask_file).read_bytes(), truth.shape)
            agreement[contour.id] = dice(mask, truth)
        meta_file = case.image.parent / "meta.json"
        quality[case_id] = latent_quality(json.loads(meta_file.read_text()) if meta_file.is_file() else {})
    rated = 0
    for rater in chosen:
        rng = np.random.default_rng([seed, meta["raters"].index(rater), 1])
        bias = rng.normal(0.0, BIAS_SD)
        store.mark_simulated(rater)
        for item in store.items(rater):
            rating = np.clip(np.rint(1 + 4 * agreement[item.contour_id] + bias + rng.normal(0, noise)), *RATING_SCALE)
            grade = np.clip(np.rint(quality[item.case] + rng.normal(0, QUALITY_SD)), *QUALITY_SCALE)
            store.rate(rater, item.round, item.position, int(rating), int(grade))
            rated += 1
    return rated
