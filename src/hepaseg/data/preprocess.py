"""Pre-processing (METHOD.md section 2) and the prepared-case cache.

A prepared case is a folder ``<cache>/<case id>/`` with memory-mappable ``.npy`` arrays on the
prepared grid, axes (x, y, z) in canonical RAS+ order at ``inplane_spacing_mm`` in-plane
(z untouched, or resampled to ``slice_spacing_mm`` where set): ``image.npy`` (float32, liver p2 -> 0,
p98 -> 1, not clipped), ``liver.npy`` and ``tumor_<rater>.npy`` (uint8 0/1), plus ``record.json``
holding the grid map back to the original file, the normalisation and a fingerprint of the inputs and configuration.

A liver-model cache (``PreprocessConfig.target == "liver"``) has the same layout: the image is
normalised with the body's percentiles, ``liver.npy`` is the region the sampler and loss see (the
whole field of view, all ones) and the target is the liver mask, stored as rater ``liver``
(``tumor_liver.npy``), so the one training loop trains both models; the raters' tumour masks are
kept beside it (``tumor_<rater>.npy``), for the liver model's lesion patches (``patch.lesion_fraction``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..config import PreprocessConfig
from ..errors import InputError
from ..io.atomic import replace_dir, temporary_prefix, write_json
from ..io.geometry import GridMap, on_grid, plan_grid, to_prepared
from ..io.lock import folder_lock
from ..io.volumes import Volume, read_volume
from ..progress import Progress
from .manifest import Case, load_manifest

RECORD = "record.json"
CACHE_FORMAT = 2  # 2: a liver-model cache also holds the raters' tumour masks
LIVER_TARGET = "liver"  # the "rater" name of the liver mask in a liver-model cache


@dataclass(frozen=True)
class PreparedCase:
    """One case of the cache; arrays are loaded memory-mapped, axes (x, y, z)."""

    id: str
    split: str
    folder: Path
    spacing: tuple[float, float, float]  # mm, prepared grid
    raters: tuple[str, ...]

    def image(self) -> NDArray[np.float32]:
        return np.load(self.folder / "image.npy", mmap_mode="r")

    def liver(self) -> NDArray[np.uint8]:
        return np.load(self.folder / "liver.npy", mmap_mode="r")

    def tumor(self, rater: str) -> NDArray[np.uint8]:
        if rater not in self.raters:
            raise InputError(self.folder, f"case {self.id} has no tumour mask of rater {rater!r}")
        return np.load(self.folder / f"tumor_{rater}.npy", mmap_mode="r")

    def record(self) -> dict:
        return json.loads((self.folder / RECORD).read_text(encoding="utf-8"))

    def grid(self) -> GridMap | None:
        """The map back to the original file's grid (None for cases saved from bare arrays)."""
        grid = self.record().get("grid")
        return None if grid is None else GridMap.from_dict(grid)


@dataclass(frozen=True)
class PreparedDataset:
    root: Path
    cases: tuple[PreparedCase, ...]

    def split(self, name: str) -> tuple[PreparedCase, ...]:
        return tuple(c for c in self.cases if c.split == name)


@dataclass(frozen=True)
class PreprocessSummary:
    done: int
    skipped: int


def load_prepared(cache_dir: str | Path) -> PreparedDataset:
    """Open a cache written by ``preprocess_dataset`` or ``save_prepared_case``.

    Raises:
        InputError: the folder is missing or holds no prepared case.
    """
    root = Path(cache_dir)
    if not root.is_dir():
        raise InputError(root, "prepared-case cache not found (run 'hepaseg preprocess' first)")
    cases = []
    for record_path in sorted(root.glob(f"*/{RECORD}")):
        try:
            rec = json.loads(record_path.read_text(encoding="utf-8"))
            cases.append(PreparedCase(rec["id"], rec["split"], record_path.parent,
                                      tuple(rec["spacing"]), tuple(rec["raters"])))
        except (json.JSONDecodeError, KeyError) as exc:
            raise InputError(record_path, f"corrupt cache record ({exc})") from exc
    if not cases:
        raise InputError(root, "holds no prepared case (run 'hepaseg preprocess' first)")
    return PreparedDataset(root, tuple(cases))


def save_prepared_case(cache_dir: str | Path, case_id: str, split: str, image: NDArray,
                       liver: NDArray, tumors: dict[str, NDArray], spacing: tuple[float, float, float],
                       record: dict | None = None) -> PreparedCase:
    """Write one prepared case atomically (a temporary folder renamed into place).

    Args:
        image: (x, y, z) normalised intensities; stored as float32.
        liver, tumors: (x, y, z) masks; stored as uint8 0/1.
        spacing: voxel size in mm of these arrays.
        record: extra fields for ``record.json`` (grid map, normalisation, fingerprint).
    """
    root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(root / case_id), dir=root))
    try:
        np.save(tmp / "image.npy", np.ascontiguousarray(image, dtype=np.float32))
        np.save(tmp / "liver.npy", (np.asarray(liver) > 0).astype(np.uint8))
        for rater, mask in tumors.items():
            np.save(tmp / f"tumor_{rater}.npy", (np.asarray(mask) > 0).astype(np.uint8))
        rec = {"format": CACHE_FORMAT, "id": case_id, "split": split,
               "spacing": [float(s) for s in spacing], "raters": list(tumors), **(record or {})}
        write_json(tmp / RECORD, rec)
        replace_dir(tmp, root / case_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PreparedCase(case_id, split, root / case_id, tuple(float(s) for s in spacing), tuple(tumors))


def liver_percentiles(image: NDArray, liver: NDArray, low: float, high: float) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of ``image`` inside the liver mask."""
    values = np.asarray(image)[np.asarray(liver) > 0]
    p_low, p_high = np.percentile(values.astype(np.float64), [low, high])
    return float(p_low), float(p_high)


def normalize(image: NDArray, p_low: float, p_high: float) -> NDArray[np.float32]:
    """Map ``p_low`` -> 0 and ``p_high`` -> 1 linearly; values outside are kept (no clipping)."""
    out = np.asarray(image, dtype=np.float32) - np.float32(p_low)
    out *= np.float32(1.0 / (p_high - p_low))
    return out


def body_mask(image: NDArray) -> NDArray[np.bool_]:
    """The body: voxels above the image's Otsu threshold (MRI background is dark), found on a regular
    sample of about a million voxels."""
    from skimage.filters import threshold_otsu

    values = np.asarray(image, dtype=np.float32)
    return values > threshold_otsu(values.ravel()[:: max(1, values.size // 1_000_000)])


NORMALISATIONS = ("liver", "body")
TARGETS = ("tumor", "liver")


def prepare_volume(image: Volume, liver: Volume | None, config: PreprocessConfig) -> tuple[NDArray, NDArray | None,
                                                                                           GridMap, dict]:
    """Pre-process one image with its liver mask (``liver`` may be None where
    ``config.normalisation == "body"``, e.g. before the liver model has run).

    Returns:
        image (x, y, z) float32 normalised on the prepared grid, liver (x, y, z) uint8 (None without
        a liver), the grid map, and the normalisation record.

    Raises:
        InputError: empty liver mask, constant intensities, an unknown normalisation.
    """
    if config.normalisation not in NORMALISATIONS:
        raise InputError(None, f"unknown normalisation {config.normalisation!r} (choose from {', '.join(NORMALISATIONS)})")
    liver_mask = None if liver is None else np.asarray(liver.array) > 0
    if liver_mask is not None and not liver_mask.any():
        raise InputError(liver.source, "liver mask is empty")
    if config.normalisation == "body":
        region, where = body_mask(image.array), "the body"
    elif liver_mask is None:
        raise InputError(image.source, "liver-percentile normalisation needs a liver mask")
    else:
        region, where = liver_mask, "the liver"
    p_low, p_high = liver_percentiles(image.array, region, config.percentile_low, config.percentile_high)
    if not p_high > p_low:
        raise InputError(image.source, f"image intensities inside {where} are constant; cannot normalise")
    grid = plan_grid(image.shape, image.affine, config.inplane_spacing_mm, config.slice_spacing_mm)
    prepared = normalize(to_prepared(image.array, grid), p_low, p_high)
    norm = {"region": config.normalisation, "percentiles": [config.percentile_low, config.percentile_high],
            "values": [p_low, p_high]}
    prepared_liver = None if liver_mask is None else to_prepared(liver_mask, grid, mask=True)
    return prepared, prepared_liver, grid, norm


def _settings(config: PreprocessConfig) -> dict:
    """The configuration as recorded and hashed: ``slice_spacing_mm`` only when set."""
    settings = asdict(config)
    if settings["slice_spacing_mm"] is None:
        del settings["slice_spacing_mm"]
    return settings


def case_fingerprint(case: Case, config: PreprocessConfig) -> str:
    """A hash of the case's input files (path, size, mtime), its DICOM series and the configuration.

    ``slice_spacing_mm`` enters only when set, so the caches written before it existed stay valid.
    """
    h = hashlib.sha256(json.dumps(_settings(config), sort_keys=True).encode())
    h.update(f"format={CACHE_FORMAT};split={case.split};series={case.series}".encode())
    paths = [("image", case.image), ("liver", case.liver), *sorted(case.tumor.items())]
    for name, path in paths:
        files = sorted(path.iterdir()) if path.is_dir() else [path]
        for f in files:
            st = f.stat()
            h.update(f"{name}|{f}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def prepare_case(case: Case, cache_dir: Path, config: PreprocessConfig) -> bool:
    """Pre-process one manifest case into the cache; returns False if it was already up to date."""
    cache_dir = Path(cache_dir)
    try:
        fp = case_fingerprint(case, config)
    except FileNotFoundError as exc:
        raise InputError(exc.filename, "file not found") from exc
    record_path = cache_dir / case.id / RECORD
    if record_path.is_file():
        try:
            if json.loads(record_path.read_text(encoding="utf-8")).get("fingerprint") == fp:
                return False
        except json.JSONDecodeError:
            pass
    if config.target not in TARGETS:
        raise InputError(None, f"unknown preprocess target {config.target!r} (choose from {', '.join(TARGETS)})")
    image = case.read_image()
    liver = on_grid(image, read_volume(case.liver))
    prepared, liver_p, grid, norm = prepare_volume(image, liver, config)
    tumors = {}
    if config.target == "liver":  # the liver model: target the liver, region the whole field
        if LIVER_TARGET in case.tumor:
            raise InputError(case.tumor[LIVER_TARGET], f"case {case.id}: a rater named {LIVER_TARGET!r} "
                                                       "clashes with the liver model's target; rename the rater")
        tumors[LIVER_TARGET] = liver_p
        liver_p = np.ones_like(liver_p)
    for rater, path in case.tumor.items():
        tumor = on_grid(image, read_volume(path))
        tumors[rater] = to_prepared(np.asarray(tumor.array) > 0, grid, mask=True)
    record = {"fingerprint": fp, "grid": grid.to_dict(), "normalization": norm,
              "config": _settings(config), "source": {"image": str(case.image), "liver": str(case.liver),
                                                     "series": case.series}}
    save_prepared_case(cache_dir, case.id, case.split, prepared, liver_p, tumors, grid.prepared_spacing, record)
    return True


def preprocess_dataset(manifest: str | Path, cache_dir: str | Path, config: PreprocessConfig,
                       workers: int | None = None, progress: bool = True) -> PreprocessSummary:
    """Pre-process every case of a manifest into ``cache_dir``, in parallel; unchanged cases are skipped.

    Raises:
        InputError: a bad manifest or case, or another process writing ``cache_dir``.
    """
    dataset = load_manifest(manifest)
    cache = Path(cache_dir)
    workers = max(1, min(workers or os.cpu_count() or 1, len(dataset.cases)))
    done = 0
    with folder_lock(cache), Progress(len(dataset.cases), "preprocess", "case", enabled=progress) as bar:
        if workers == 1:
            for case in dataset.cases:
                done += prepare_case(case, cache, config)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(prepare_case, case, cache, config) for case in dataset.cases]
                for future in futures:
                    done += future.result()
                    bar.update()
    return PreprocessSummary(done, len(dataset.cases) - done)
