"""Shared fixtures of the whole suite.

- torch on one thread (autouse, for every test and every fixture, wherever torch is installed);
- ``phantom_cache``: tiny synthetic prepared-case caches for the training and selection tests;
- ``write_dicom_series``: a pydicom-written axial DICOM series;
- ``tiny_evaluation``: a tiny dataset with two algorithms' predictions, evaluated and reported once;
- ``rating_cohort``, ``rating_study``, ``rating``: a small synthetic cohort, a hand-made study folder
  on it (``make_study``), and new rating folders (``hepaseg rate init``) from it.

A phantom case is a bright ellipsoid "liver" (1.0) in a darker body (0.2) with a few dark spheres
"tumours" (0.3) inside it, plus Gaussian noise; arrays are (x, y, z) on a 2 x 2 x 3 mm grid.

Nothing heavy is imported at module level: torch, pydicom and hepaseg's own modules are imported
inside the fixtures that need them.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

PHANTOM_SPACING = (2.0, 2.0, 3.0)


# --- torch on one thread -----------------------------------------------------------------------


@contextlib.contextmanager
def _torch_on_one_thread() -> Iterator[None]:
    """Tests run torch on one thread: on a shared 2-core machine, two OpenMP threads wait for each
    other far longer than they compute on these tiny tensors. A no-op where torch is not installed."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread_for_fixtures() -> Iterator[None]:
    """One thread already while module- and session-scoped fixtures build and train networks."""
    with _torch_on_one_thread():
        yield


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One thread in every test, even where the code under test changed the count in an earlier one."""
    with _torch_on_one_thread():
        yield


# --- prepared phantom caches -------------------------------------------------------------------


def phantom(rng: np.random.Generator, shape: tuple[int, int, int] = (48, 44, 14), tumours: int = 3,
            noise: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image float32, liver uint8, tumour uint8), each (x, y, z)."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    centre = np.array(shape) / 2 + rng.uniform(-2, 2, 3)
    radii = np.array(shape) * rng.uniform(0.3, 0.38, 3)
    liver = (((grid - centre) / radii) ** 2).sum(-1) <= 1
    tumour = np.zeros(shape, bool)
    inside = np.argwhere(liver)
    for _ in range(tumours):
        c = inside[rng.integers(len(inside))]
        r = rng.uniform(2.0, 4.0)
        scale = np.array([1.0, 1.0, PHANTOM_SPACING[0] / PHANTOM_SPACING[2]])
        tumour |= ((((grid - c) * scale) ** 2).sum(-1) <= r * r) & liver
    image = np.where(liver, 1.0, 0.2)
    image = np.where(tumour, 0.3, image) + rng.normal(0, noise, shape)
    return image.astype(np.float32), liver.astype(np.uint8), tumour.astype(np.uint8)


def make_cache(root: Path, seed: int = 0, n_train: int = 2, n_val: int = 1,
               shape: tuple[int, int, int] = (48, 44, 14)) -> Path:
    """Write ``n_train`` + ``n_val`` phantom cases (rater R1) into ``root``; return it."""
    from hepaseg.data.preprocess import save_prepared_case

    rng = np.random.default_rng(seed)
    for i in range(n_train + n_val):
        image, liver, tumour = phantom(rng, shape)
        split = "train" if i < n_train else "val"
        save_prepared_case(root, f"case{i:02d}", split, image, liver, {"R1": tumour}, PHANTOM_SPACING)
    return root


@pytest.fixture(scope="session")
def phantom_cache():
    """``make_cache(root, seed=0, n_train=2, n_val=1, shape=(48, 44, 14))``: write phantom cases
    (rater R1, spacing ``PHANTOM_SPACING``) into the prepared-case cache ``root``; returns ``root``."""
    return make_cache


@pytest.fixture(scope="session")
def phantom_spacing() -> tuple[float, float, float]:
    """The phantom caches' voxel spacing in mm, (x, y, z)."""
    return PHANTOM_SPACING


# --- a DICOM series ----------------------------------------------------------------------------


def _write_dicom_series(folder: Path, volume_ijk: np.ndarray, spacing, origin_lps, row_cos, col_cos,
                        tags: dict | None = None) -> np.ndarray:
    """Write (i, j, k) int16 as one axial DICOM series with pydicom (``tags``: attributes set on every
    slice after the defaults, e.g. the patient, study or description); returns the expected RAS affine."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    from hepaseg.io.volumes import LPS_TO_RAS

    folder.mkdir(parents=True)
    normal = np.cross(row_cos, col_cos)
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    for k in range(volume_ijk.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"s{k:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality, ds.PatientID, ds.PatientName = "MR", "PHANTOM", "Phantom^Liver"
        ds.StudyDate = ds.SeriesDate = datetime.date(2026, 1, 2).strftime("%Y%m%d")
        ds.InstanceNumber, ds.SeriesNumber = k + 1, 1
        position = np.asarray(origin_lps) + k * spacing[2] * normal
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in (*row_cos, *col_cos)]
        ds.PixelSpacing = [spacing[1], spacing[0]]  # [between rows (j), between columns (i)]
        ds.SliceThickness = spacing[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = volume_ijk.shape[1], volume_ijk.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(volume_ijk[:, :, k].T).astype("<i2").tobytes()
        for keyword, value in (tags or {}).items():
            setattr(ds, keyword, value)
        ds.save_as(folder / f"s{k:03d}.dcm", enforce_file_format=True)
    lps = np.eye(4)
    lps[:3, 0] = np.asarray(row_cos) * spacing[0]
    lps[:3, 1] = np.asarray(col_cos) * spacing[1]
    lps[:3, 2] = normal * spacing[2]
    lps[:3, 3] = origin_lps
    return LPS_TO_RAS @ lps


@pytest.fixture(scope="session")
def write_dicom_series():
    """``write_dicom_series(folder, volume_ijk, spacing, origin_lps, row_cos, col_cos, tags=None)``: write
    an (i, j, k) int16 volume as one axial DICOM series into the new ``folder``; returns the RAS affine
    the series should read back with, worked out from the DICOM geometry by hand."""
    return _write_dicom_series


# --- a tiny evaluation -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_evaluation(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset root, evaluation folder): the tiny dataset of ``tests.tiny_evaluation``, evaluated once
    by the CLI (two worker processes) and reported into ``<evaluation>/report.html``."""
    from hepaseg.cli import main

    from .tiny_evaluation import make_dataset

    root = tmp_path_factory.mktemp("evaluation")
    manifest = make_dataset(root)
    out = root / "eval"
    code = main(["evaluate", str(manifest), "--pred", f"A1={root / 'preds' / 'a1'}",
                 "--pred", f"A2={root / 'preds' / 'a2'}", "-o", str(out), "--split", "test", "--workers", "2"])
    assert code == 0
    assert main(["report", str(out), "-o", str(out / "report.html")]) == 0
    return root, out


# --- the expert rating ---------------------------------------------------------------------------


def make_study(manifest: Path, folder: Path, algorithms: Sequence[str] = ("A1", "A2")) -> Path:
    """A study folder made by hand rather than by ``hepaseg study`` (which trains for a minute): its
    ``preds/<algorithm>/`` hold, per test and unlabeled case of ``manifest``, the hidden true tumour
    mask (the first algorithm) and that mask eroded by one voxel (the second), so every contour is
    known; ``eval/evaluation.json`` names the manifest. Returns ``folder``."""
    from scipy import ndimage

    from hepaseg.data.manifest import load_manifest
    from hepaseg.io.volumes import read_volume, write_volume

    dataset = load_manifest(manifest)
    for case in dataset.cases:
        if case.split not in ("test", "unlabeled"):
            continue
        truth = read_volume(case.image.parent / "tumor_truth.nii.gz")
        masks = (truth.array != 0, ndimage.binary_erosion(truth.array != 0))
        for algorithm, mask in zip(algorithms, masks):
            write_volume(mask.astype(np.uint8), truth.affine, folder / "preds" / algorithm / f"{case.id}.nii.gz")
    (folder / "eval").mkdir(parents=True)
    (folder / "eval" / "evaluation.json").write_text(json.dumps({"manifest": str(manifest)}))
    return folder


@pytest.fixture(scope="session")
def rating_cohort(tmp_path_factory) -> Path:
    """The small synthetic cohort (seed 3): 2 test cases and 1 unlabeled case to rate."""
    from hepaseg.synth import write_cohort

    return write_cohort(tmp_path_factory.mktemp("cohort"), seed=3, small=True, workers=1, progress=False)


@pytest.fixture(scope="session")
def rating_study(rating_cohort, tmp_path_factory) -> Path:
    """``make_study`` on ``rating_cohort`` with algorithms A1 (the truth) and A2 (the truth eroded)."""
    return make_study(rating_cohort, tmp_path_factory.mktemp("study") / "study")


@pytest.fixture
def rating(rating_study, tmp_path):
    """``rating(raters=("R3",), **init_rating options)``: a new rating folder from ``rating_study``;
    returns ``InitResult``."""
    from hepaseg.rating import init_rating

    def make(raters: Sequence[str] = ("R3",), **options):
        return init_rating(rating_study, tmp_path / f"rating-{len(list(tmp_path.iterdir()))}", raters, **options)

    return make
