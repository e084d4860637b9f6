"""Masks as another tool might store them on the same grid, and a DICOM folder holding two series
(not a test module).

``write_reordered`` writes an (i, j, k) array with its first two axes swapped and its slices in
reverse order, the affine worked out by hand so that every voxel keeps its world position (a
left-handed affine, as a NIfTI conversion of a series stored head-to-feet has).
``write_dicom_case`` writes a case whose DICOM folder holds an HBP series and a localiser."""

from __future__ import annotations

import shutil

import numpy as np

from hepaseg.io.volumes import read_volume, write_volume

LIVER_BOX = (slice(4, 20), slice(3, 16), slice(1, 5))
TUMOUR_BOX = (slice(8, 12), slice(6, 10), slice(2, 4))


def write_reordered(array, affine, path):
    """Write ``stored[q, p, r] = array[p, q, n_k - 1 - r]`` with ``affine @ M``, M: (q, p, r) -> (p, q, n_k - 1 - r)."""
    n_k = array.shape[2]
    stored = np.asarray(array).transpose(1, 0, 2)[:, :, ::-1]
    m = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, -1, n_k - 1], [0, 0, 0, 1]], float)
    return write_volume(np.ascontiguousarray(stored), np.asarray(affine, float) @ m, path)


def write_dicom_case(root, write_dicom_series):
    """``root/case/``: ``dicom/`` with an HBP series (24 x 20 x 6, bright liver, darker tumour) and a
    3-slice coronal localiser; ``liver.nii.gz`` in another axis order (``write_reordered``),
    ``liver_canonical.nii.gz`` and ``tumor_R1.nrrd`` as the series reads. Returns (manifest entry
    with ``"series"``, the HBP series' UID)."""
    import pydicom

    rng = np.random.default_rng(5)
    shape = (24, 20, 6)
    liver = np.zeros(shape, np.uint8)
    liver[LIVER_BOX] = 1
    tumor = np.zeros(shape, np.uint8)
    tumor[TUMOUR_BOX] = 1
    image = np.where(liver > 0, 900, 300) - 500 * tumor.astype(int) + rng.integers(-30, 30, shape)
    write_dicom_series(root / "hbp", image.astype(np.int16), (1.2, 1.1, 3.0), (-40.0, -30.0, 10.0),
                       (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    write_dicom_series(root / "loc", np.zeros((8, 8, 3), np.int16), (2.0, 2.0, 5.0), (0.0, 0.0, 0.0),
                       (1.0, 0.0, 0.0), (0.0, 0.0, -1.0))
    (root / "case" / "dicom").mkdir(parents=True)
    for name in ("hbp", "loc"):
        for f in (root / name).iterdir():
            shutil.copy(f, root / "case" / "dicom" / f"{name}_{f.name}")
    uid = str(pydicom.dcmread(next((root / "hbp").iterdir())).SeriesInstanceUID)
    affine = read_volume(root / "hbp").affine
    write_reordered(liver, affine, root / "case" / "liver.nii.gz")
    write_volume(liver, affine, root / "case" / "liver_canonical.nii.gz")
    write_volume(tumor, affine, root / "case" / "tumor_R1.nrrd")
    return {"id": "case", "split": "train", "image": "case/dicom", "liver": "case/liver.nii.gz",
            "tumor": {"R1": "case/tumor_R1.nrrd"}, "series": uid}, uid
