"""Write a synthetic cohort: one folder per case, then the manifest ``dataset.json``.

Layout (paths in the manifest are relative to its folder)::

    <out>/dataset.json
    <out>/case000/image.nii.gz        int16 image
    <out>/case000/liver.nii.gz        uint8 liver mask (tumours included)
    <out>/case000/tumor_R1.nii.gz     uint8 tumour mask of rater R1 (R2, R3 on test cases)
    <out>/case000/tumor_truth.nii.gz  uint8 true tumour mask (hidden truth, not a rater)
    <out>/case000/tissues.nii.gz      uint8 tissue codes (hidden truth, codes in meta.json)
    <out>/case000/meta.json           geometry, intensity scaling, anatomy, lesion list, rater decisions

Cases are independent, so they are made in parallel processes; the bytes do not depend on the
number of workers (nibabel writes gzip without time stamps or file names).
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from ..io.atomic import write_json
from ..io.lock import folder_lock
from ..io.volumes import write_volume
from ..progress import Progress
from .case import case_id, make_case
from .spec import CohortSpec, default_spec, small_spec


def write_case(spec: CohortSpec, seed: int, index: int, out: str | Path) -> dict:
    """Generate and write case ``index``; return its manifest entry."""
    case = make_case(spec, seed, index)
    cid = case_id(index)
    folder = Path(out) / cid
    files = {"image": f"{cid}/image.nii.gz", "liver": f"{cid}/liver.nii.gz"}
    write_volume(case.image, case.affine, Path(out) / files["image"])
    write_volume(case.liver, case.affine, Path(out) / files["liver"])
    write_volume(case.truth, case.affine, folder / "tumor_truth.nii.gz")
    write_volume(case.tissues, case.affine, folder / "tissues.nii.gz")
    tumor = {}
    for name, mask in case.raters.items():
        tumor[name] = f"{cid}/tumor_{name}.nii.gz"
        write_volume(mask, case.affine, Path(out) / tumor[name])
    write_json(folder / "meta.json", case.meta)
    return {"id": cid, "split": case.meta["split"], **files, "tumor": tumor}


def write_cohort(out: str | Path, seed: int = 0, small: bool = False, workers: int | None = None,
                 spec: CohortSpec | None = None, progress: bool = True) -> Path:
    """Write a synthetic hepatobiliary-phase cohort with simulated raters to ``out``.

    Args:
        out: output folder (created).
        seed: random seed; the same seed gives the same bytes.
        small: use ``small_spec()`` (a handful of coarse cases) instead of the paper's cohort.
        workers: parallel processes (default: all cores; 1 = in this process).
        spec: the cohort to make; overrides ``small``.
        progress: show a progress bar on stderr.

    Returns:
        The path of the manifest, ``<out>/dataset.json``.
    """
    spec = spec or (small_spec() if small else default_spec())
    out = Path(out)
    workers = max(1, min(workers or os.cpu_count() or 1, spec.n_cases))
    entries: dict[int, dict] = {}
    with folder_lock(out), Progress(spec.n_cases, "synth", "case", enabled=progress) as bar:
        if workers == 1:
            for index in range(spec.n_cases):
                entries[index] = write_case(spec, seed, index, out)
                bar.update()
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(write_case, spec, seed, i, out): i for i in range(spec.n_cases)}
                for future in as_completed(futures):
                    entries[futures[future]] = future.result()
                    bar.update()
        manifest = {
            "name": spec.name,
            "raters": [r.name for r in spec.raters],
            "seed": seed,
            "spec": dataclasses.asdict(spec),
            "cases": [entries[i] for i in range(spec.n_cases)],
        }
        path = out / "dataset.json"
        write_json(path, manifest)
    return path
