"""A DICOM series' headers are read once (``read_volume`` keeps them as ``Volume.dicom_source``) and
the DICOM-SEG is built from them: on a series stored shuffled on disk, the headers come in the order
of the slices along the normal, worked out here from the files' own ImagePositionPatient, and every
SEG frame references the file at its position; a volume without DICOM source is refused."""

from __future__ import annotations

import copy
import dataclasses
import shutil

import numpy as np
import pydicom
import pytest

from hepaseg.errors import InputError
from hepaseg.inference.dicom_outputs import make_findings
from hepaseg.io.dicom_results import write_dicom_object
from hepaseg.io.dicomseg import build_dicom_seg
from hepaseg.io.volumes import read_volume, write_volume


def _seg(tumour, liver, image):
    """The SEG of a tumour and a liver mask on ``image``'s grid (lesions numbered as lesions.csv)."""
    return build_dicom_seg(make_findings(image, tumour, liver))


SHAPE = (12, 10, 5)
ROW, COL = (1.0, 0.0, 0.0), (0.0, 0.8, -0.6)  # an oblique plane: the normal sort is not by z alone
ON_DISK = (3, 0, 4, 1, 2)  # file n on disk is slice ON_DISK[n] as written


def _shuffled_series(tmp_path, write_dicom_series):
    """A series whose slice k is all k * 100 (plus noise), stored under names and instance numbers
    in the order ``ON_DISK``; returns the folder."""
    rng = np.random.default_rng(5)
    image = (np.arange(SHAPE[2])[None, None, :] * 100 + rng.integers(0, 9, SHAPE)).astype(np.int16)
    written = tmp_path / "written"
    write_dicom_series(written, image, (1.0, 1.2, 2.5), (10.0, 20.0, 30.0), ROW, COL)
    files = sorted(written.iterdir())
    folder = tmp_path / "shuffled"
    folder.mkdir()
    for n, k in enumerate(ON_DISK):
        ds = pydicom.dcmread(files[k])
        ds.InstanceNumber = n + 1
        ds.save_as(folder / f"f{n}.dcm")
    shutil.rmtree(written)
    return folder


def _files_along_normal(folder):
    """The folder's datasets (with pixels) sorted by ImagePositionPatient . (row x column)."""
    datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    offsets = [float(np.dot(ds.ImagePositionPatient, np.cross(ds.ImageOrientationPatient[:3],
                                                              ds.ImageOrientationPatient[3:]))) for ds in datasets]
    return [datasets[i] for i in np.argsort(offsets)]


def _count_reads(monkeypatch):
    calls = []
    real = pydicom.dcmread

    def counting(*args, **kwargs):
        calls.append(args[0] if args else kwargs.get("fp"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting)
    return calls


def test_headers_read_once_in_slice_order_and_each_seg_frame_references_its_slice(tmp_path, write_dicom_series,
                                                                                  monkeypatch):
    folder = _shuffled_series(tmp_path, write_dicom_series)
    expected = _files_along_normal(folder)
    reads = _count_reads(monkeypatch)
    image = read_volume(folder)
    assert len(reads) == len(ON_DISK)  # every file's header once
    assert [str(ds.SOPInstanceUID) for ds in image.dicom_source] == [str(ds.SOPInstanceUID) for ds in expected]
    assert not any("PixelData" in ds for ds in image.dicom_source)
    for k, ds in enumerate(expected):  # header k is the slice the array holds at k
        np.testing.assert_array_equal(image.array[:, :, k], ds.pixel_array.T)

    liver = np.zeros(SHAPE, np.uint8)
    tumour = np.zeros(SHAPE, np.uint8)
    for k in range(1, 5):  # outlines that differ slice by slice, so a frame on a wrong slice shows
        liver[1:4 + 2 * k, 2:9 - k, k] = 1
    tumour[2:4, 3:5, 2] = 1
    seg = _seg(tumour, liver, image)
    assert len(reads) == len(ON_DISK)  # the SEG read no file again
    assert "AccessionNumber" not in image.dicom_source[0]  # type-2 fill-in on a copy, not on the volume's headers

    seg = pydicom.dcmread(write_dicom_object(seg, tmp_path / "seg.dcm"))
    frames = seg.pixel_array.reshape(-1, SHAPE[1], SHAPE[0])
    seen = {1: set(), 2: set()}
    for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        position = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, float)
        k = int(np.argmin([np.linalg.norm(position - np.asarray(ds.ImagePositionPatient, float)) for ds in expected]))
        np.testing.assert_allclose(position, expected[k].ImagePositionPatient, atol=1e-3)
        referenced = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        assert referenced == expected[k].SOPInstanceUID
        segment = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        np.testing.assert_array_equal(frame, (liver if segment == 1 else tumour)[:, :, k].T)
        seen[segment].add(k)
    assert seen == {1: {1, 2, 3, 4}, 2: {2}}


def test_a_volume_without_dicom_source_or_of_a_multi_frame_object_is_refused_in_one_line(tmp_path,
                                                                                       write_dicom_series):
    nifti = write_volume(np.zeros(SHAPE, np.int16), np.eye(4), tmp_path / "image.nii.gz")
    image = read_volume(nifti)
    assert image.dicom_source is None
    with pytest.raises(InputError, match="no DICOM source") as refused:
        _seg(np.zeros(SHAPE), np.ones(SHAPE), image)
    assert str(nifti) in str(refused.value) and "\n" not in str(refused.value)

    dicom = read_volume(_shuffled_series(tmp_path, write_dicom_series))
    enhanced = copy.deepcopy(dicom.dicom_source[0])
    enhanced.NumberOfFrames = SHAPE[2]
    with pytest.raises(InputError, match="multi-frame"):
        _seg(np.zeros(SHAPE), np.ones(SHAPE), dataclasses.replace(dicom, dicom_source=(enhanced,)))
