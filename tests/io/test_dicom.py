"""DICOM folders (``io.dicom`` through ``read_volume``), on series written by pydicom in the test:
both slice orders, several series and the choice of one, a missing, tilted or shifted slice, mixed
matrix sizes, and an enhanced (multi-frame) MR object. Expected geometry is worked out by hand from
the DICOM attributes written (the ``write_dicom_series`` fixture, ``_enhanced_affine`` here)."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest

from hepaseg.errors import InputError
from hepaseg.io.volumes import LPS_TO_RAS, read_volume

SPACING = (0.7, 0.9, 3.0)
ORIGIN_LPS = (-80.0, -60.0, 25.0)
AXIAL = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
CORONAL = ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0))  # slice normal +y (posterior)


def _series(folder, write_dicom_series, shape=(6, 5, 4), seed=0, orientation=AXIAL, description=""):
    """Write one series; returns (volume (i, j, k), expected RAS affine, sorted files)."""
    volume = np.random.default_rng(seed).integers(0, 2000, size=shape, dtype=np.int16)
    affine = write_dicom_series(folder, volume, SPACING, ORIGIN_LPS, *orientation)
    files = sorted(folder.iterdir())
    if description:
        for f in files:
            _edit(f, SeriesDescription=description)
    return volume, affine, files


def _edit(path, **attributes):
    ds = pydicom.dcmread(path)
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.save_as(path)


@pytest.mark.parametrize("orientation", [AXIAL, CORONAL])
def test_slices_stored_in_either_order_read_the_same(tmp_path, write_dicom_series, orientation):
    volume, affine, files = _series(tmp_path / "a", write_dicom_series, orientation=orientation)
    reverse = tmp_path / "b"  # the same slices stored head-to-feet: first file and instance = last slice
    reverse.mkdir()
    for n, f in enumerate(reversed(files)):
        shutil.copy(f, reverse / f"r{n:03d}.dcm")
        _edit(reverse / f"r{n:03d}.dcm", InstanceNumber=n + 1)
    for folder in (tmp_path / "a", reverse):
        vol = read_volume(folder)
        np.testing.assert_array_equal(vol.array, volume)
        np.testing.assert_allclose(vol.affine, affine, atol=1e-4)
        assert vol.series == str(pydicom.dcmread(files[0]).SeriesInstanceUID)


def _two_series(tmp_path, write_dicom_series):
    """A folder with a 4-slice HBP series and a 3-slice localiser; returns (folder, hbp, localiser, uids)."""
    hbp = _series(tmp_path / "hbp", write_dicom_series, description="HBP 20 min")
    loc = _series(tmp_path / "loc", write_dicom_series, shape=(4, 4, 3), seed=1, orientation=CORONAL,
                  description="localiser")
    both = tmp_path / "both"
    both.mkdir()
    for name, (_, _, files) in (("hbp", hbp), ("loc", loc)):
        for f in files:
            shutil.copy(f, both / f"{name}_{f.name}")
    uids = [str(pydicom.dcmread(files[0]).SeriesInstanceUID) for _, _, files in (hbp, loc)]
    return both, hbp, loc, uids


def test_several_series_are_listed_and_one_is_chosen_by_uid(tmp_path, write_dicom_series):
    both, hbp, loc, (hbp_uid, loc_uid) = _two_series(tmp_path, write_dicom_series)
    with pytest.raises(InputError) as info:
        read_volume(both)
    message = info.value.message
    assert info.value.path == str(both) and "\n" not in message
    assert message.startswith("folder holds 2 DICOM series: ")
    assert f"{hbp_uid} (HBP 20 min, MR, 4 files)" in message and f"{loc_uid} (localiser, MR, 3 files)" in message
    assert "--series" in message
    for uid, (volume, affine, _) in ((hbp_uid, hbp), (loc_uid, loc)):
        vol = read_volume(both, uid)
        np.testing.assert_array_equal(vol.array, volume)
        np.testing.assert_allclose(vol.affine, affine, atol=1e-4)
        assert vol.series == uid
        assert len(vol.dicom_source) == volume.shape[2]  # the chosen series' headers only
        assert {str(ds.SeriesInstanceUID) for ds in vol.dicom_source} == {uid}
    with pytest.raises(InputError, match=r"both: no DICOM series 1\.2\.3 in the folder \(it holds: "):
        read_volume(both, "1.2.3")
    with pytest.raises(InputError, match="is a file, not a DICOM folder"):
        read_volume(hbp[2][0], hbp_uid)


def test_a_missing_slice_is_refused(tmp_path, write_dicom_series):
    _, _, files = _series(tmp_path / "s", write_dicom_series, shape=(6, 5, 5))
    files[2].unlink()
    with pytest.raises(InputError, match=r"uneven slice spacing \(a gap of 6 mm where the others are 3 mm\)") as info:
        read_volume(tmp_path / "s")
    assert info.value.path == str(tmp_path / "s")


def test_a_tilted_slice_is_refused(tmp_path, write_dicom_series):
    _, _, files = _series(tmp_path / "s", write_dicom_series)
    c, s = np.cos(0.05), np.sin(0.05)  # slice 1 tilted by about 3 degrees about the x axis
    _edit(files[1], ImageOrientationPatient=[1.0, 0.0, 0.0, 0.0, c, s])
    with pytest.raises(InputError, match="slice orientations differ"):
        read_volume(tmp_path / "s")


def test_a_slice_shifted_off_the_normal_is_refused(tmp_path, write_dicom_series):
    _, _, files = _series(tmp_path / "s", write_dicom_series)
    position = [float(v) for v in pydicom.dcmread(files[2]).ImagePositionPatient]
    _edit(files[2], ImagePositionPatient=[position[0] + 1.5, position[1], position[2]])  # a gantry-tilt shear
    with pytest.raises(InputError, match="not along the slice normal"):
        read_volume(tmp_path / "s")


def test_mixed_matrix_sizes_are_refused(tmp_path, write_dicom_series):
    _, _, files = _series(tmp_path / "s", write_dicom_series)
    _edit(files[3], Rows=4, Columns=4, PixelData=np.zeros((4, 4), "<i2").tobytes())
    with pytest.raises(InputError, match=r"mixes matrix sizes \(rows x columns\): 5x6 \(3 files\), 4x4 \(1 files\)"):
        read_volume(tmp_path / "s")


# --- enhanced (multi-frame) MR ------------------------------------------------------------------

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
ROW, COL = (1.0, 0.0, 0.0), (0.0, 0.8, -0.6)  # an oblique plane; normal = ROW x COL = (0, 0.6, 0.8)


def _write_enhanced(path, volume, steps):
    """One Enhanced MR Image file: frame f of ``volume[:, :, f]`` at ORIGIN_LPS + steps[f] * normal."""
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ENHANCED_MR, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = ENHANCED_MR, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.NumberOfFrames = "MR", "PHANTOM", volume.shape[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    measures, plane, shared = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = [SPACING[1], SPACING[0]], SPACING[2]
    plane.ImageOrientationPatient = [*ROW, *COL]
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = Sequence([measures]), Sequence([plane])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    normal = np.cross(ROW, COL)
    frames = []
    for step in steps:
        frame, position = Dataset(), Dataset()
        position.ImagePositionPatient = [float(v) for v in np.asarray(ORIGIN_LPS) + step * normal]
        frame.PlanePositionSequence = Sequence([position])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.ascontiguousarray(np.transpose(volume, (2, 1, 0))).astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def _enhanced_affine(first_step, step):
    """RAS affine by hand: columns row * dx, column * dy, normal * step (frame to frame), origin frame 0."""
    normal = np.cross(ROW, COL)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = np.multiply(ROW, SPACING[0]), np.multiply(COL, SPACING[1]), normal * step
    lps[:3, 3] = np.asarray(ORIGIN_LPS) + first_step * normal
    return LPS_TO_RAS @ lps


@pytest.mark.parametrize("steps", [(0.0, 3.0, 6.0, 9.0), (9.0, 6.0, 3.0, 0.0)])
def test_an_enhanced_multi_frame_object_reads_with_its_geometry(tmp_path, steps):
    volume = np.random.default_rng(2).integers(0, 2000, size=(6, 5, 4), dtype=np.int16)
    (tmp_path / "mf").mkdir()
    _write_enhanced(tmp_path / "mf" / "enhanced.dcm", volume, steps)
    vol = read_volume(tmp_path / "mf")
    np.testing.assert_array_equal(vol.array, volume)  # frames in stored order
    np.testing.assert_allclose(vol.affine, _enhanced_affine(steps[0], steps[1] - steps[0]), atol=1e-4)
    written = pydicom.dcmread(tmp_path / "mf" / "enhanced.dcm", stop_before_pixels=True)
    assert [str(ds.SOPInstanceUID) for ds in vol.dicom_source] == [str(written.SOPInstanceUID)]  # its one dataset


def test_an_enhanced_object_with_a_missing_frame_is_refused(tmp_path):
    (tmp_path / "mf").mkdir()
    _write_enhanced(tmp_path / "mf" / "enhanced.dcm", np.zeros((6, 5, 3), np.int16), (0.0, 3.0, 9.0))
    with pytest.raises(InputError, match="uneven slice spacing"):
        read_volume(tmp_path / "mf")
