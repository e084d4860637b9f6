"""Volume I/O on real files: NIfTI affines round-trip, NRRD, and a pydicom-written DICOM series."""

from __future__ import annotations

import numpy as np
import pytest

from hepaseg.errors import InputError
from hepaseg.io.volumes import read_volume, write_mask, write_volume


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _affine(rot: np.ndarray, spacing, origin) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = rot * np.asarray(spacing)[None, :]
    a[:3, 3] = origin
    return a


AFFINES = {
    "ras": _affine(np.eye(3), (0.8, 0.9, 3.0), (-100.0, -120.0, 40.0)),
    "lps": _affine(np.diag([-1.0, -1.0, 1.0]), (1.5, 1.5, 5.0), (120.0, 140.0, -30.0)),
    "flipped_z": _affine(np.diag([1.0, -1.0, -1.0]), (0.74, 0.74, 2.0), (10.0, 20.0, 30.0)),
    "oblique": _affine(_rotation(0.2, -0.1, 0.35), (1.1, 1.1, 4.0), (-50.0, 12.5, 7.25)),
}


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_nifti_round_trip_is_voxel_exact(tmp_path, name):
    rng = np.random.default_rng(1)
    array = rng.integers(-1000, 3000, size=(7, 6, 5), dtype=np.int16)
    path = write_volume(array, AFFINES[name], tmp_path / "img.nii.gz")
    vol = read_volume(path)
    assert vol.array.dtype == np.int16
    np.testing.assert_array_equal(vol.array, array)
    np.testing.assert_allclose(vol.affine, AFFINES[name], atol=1e-4)
    np.testing.assert_allclose(vol.spacing, np.linalg.norm(AFFINES[name][:3, :3], axis=0), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_simpleitk_and_nibabel_agree_on_written_geometry(tmp_path, name):
    """A second reader (SimpleITK, LPS) sees the same world positions as nibabel (RAS)."""
    import SimpleITK as sitk

    array = np.zeros((7, 6, 5), np.uint8)
    array[2, 3, 4] = 1
    path = write_volume(array, AFFINES[name], tmp_path / "m.nii.gz")
    img = sitk.ReadImage(str(path))
    world_lps = np.array(img.TransformIndexToPhysicalPoint((2, 3, 4)))
    world_ras = (AFFINES[name] @ np.array([2, 3, 4, 1.0]))[:3]
    np.testing.assert_allclose(world_lps * [-1, -1, 1], world_ras, atol=1e-3)
    assert sitk.GetArrayFromImage(img)[4, 3, 2] == 1


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".MHA", ".NRRD", ".NII.GZ"])
def test_itk_formats_round_trip(tmp_path, suffix):
    """Upper-case suffixes too (scanner exports): one file, no stray header or data file beside it."""
    array = np.arange(7 * 6 * 5, dtype=np.int16).reshape(7, 6, 5)
    path = write_volume(array, AFFINES["oblique"], tmp_path / f"img{suffix}")
    vol = read_volume(path)
    np.testing.assert_array_equal(vol.array, array)
    np.testing.assert_allclose(vol.affine, AFFINES["oblique"], atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == [f"img{suffix}"]


def test_two_file_formats_are_not_written(tmp_path):
    with pytest.raises(InputError, match="unknown output format"):
        write_volume(np.zeros((2, 2, 2), np.uint8), np.eye(4), tmp_path / "img.mhd")
    assert not list(tmp_path.iterdir())


def test_write_mask_lands_on_source_grid(tmp_path):
    source = write_volume(np.zeros((7, 6, 5), np.int16), AFFINES["lps"], tmp_path / "img.nii.gz")
    like = read_volume(source)
    mask = np.zeros((7, 6, 5), bool)
    mask[1:3, 2:5, 0] = True
    for name in ("mask.nii.gz", "mask.nrrd"):
        back = read_volume(write_mask(mask, like, tmp_path / name))
        assert back.array.dtype == np.uint8
        np.testing.assert_array_equal(back.array, mask.astype(np.uint8))
        np.testing.assert_allclose(back.affine, like.affine, atol=1e-4)
    with pytest.raises(ValueError, match="shape"):
        write_mask(mask[:, :, :2], like, tmp_path / "bad.nii.gz")


@pytest.mark.parametrize("angle", [0.0, 0.3])
def test_dicom_series_written_by_pydicom_reads_back(tmp_path, angle, write_dicom_series):
    rng = np.random.default_rng(3)
    volume = rng.integers(0, 2000, size=(6, 5, 4), dtype=np.int16)
    row_cos = (np.cos(angle), np.sin(angle), 0.0)
    col_cos = (-np.sin(angle), np.cos(angle), 0.0)
    expected_affine = write_dicom_series(tmp_path / "series", volume, (0.7, 0.9, 3.0),
                                         (-80.0, -60.0, 25.0), row_cos, col_cos)
    vol = read_volume(tmp_path / "series")
    np.testing.assert_array_equal(vol.array, volume)
    np.testing.assert_allclose(vol.affine, expected_affine, atol=1e-4)


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_volume(tmp_path / "missing.nii.gz")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="unknown format"):
        read_volume(tmp_path / "notes.txt")
    (tmp_path / "broken.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(InputError, match="cannot read") as err:
        read_volume(tmp_path / "broken.nii.gz")
    assert "broken.nii.gz" in str(err.value)
    write_volume(np.zeros((4, 4, 3, 2), np.int16), np.eye(4), tmp_path / "four.nii.gz")
    with pytest.raises(InputError, match="4D"):
        read_volume(tmp_path / "four.nii.gz")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="no DICOM series"):
        read_volume(tmp_path / "empty_dir")
