"""``hepaseg predict`` end to end (``inference.batch``) on tiny synthetic cases with a tiny model:
one case, a dataset manifest, folder pairs, DICOM in and DICOM-SEG out, bad input.

The stand-in for a trained network is a saved model folder (real ``UNet`` of a small
``ModelConfig``, untrained, its last convolution set to weight 0 / bias +5): probability sigmoid(5)
everywhere in the liver's box, so the mask is the liver; used through the CLI.
"""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from hepaseg.cli import main
from hepaseg.data.components import number_by_size
from hepaseg.inference.batch import prefetch
from hepaseg.inference.lesion_table import read_csv
from hepaseg.io.volumes import read_volume, write_volume

from ..axis_order import write_dicom_case
from .predict_cases import SHAPE, make_affine, mask_dice, model_folder, write_case, write_manifest


def _assert_on_source_grid(mask_path, image_path):
    """nibabel and SimpleITK (a second reader, LPS) agree that the mask lies on the image's grid."""
    src, out = nib.load(str(image_path)), nib.load(str(mask_path))
    assert out.shape == src.shape and out.get_data_dtype() == np.uint8
    np.testing.assert_allclose(out.affine, src.affine, atol=1e-4)
    s_src, s_out = sitk.ReadImage(str(image_path)), sitk.ReadImage(str(mask_path))
    assert s_out.GetSize() == s_src.GetSize() == src.shape
    for index in [(0, 0, 0), (5, 7, 3), tuple(n - 1 for n in src.shape)]:
        np.testing.assert_allclose(s_out.TransformIndexToPhysicalPoint(index),
                                   s_src.TransformIndexToPhysicalPoint(index), atol=1e-3)
        ras = (src.affine @ [*index, 1.0])[:3]
        np.testing.assert_allclose(np.multiply(s_out.TransformIndexToPhysicalPoint(index), [-1, -1, 1]), ras, atol=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(s_out).transpose(2, 1, 0), np.asarray(out.dataobj))


def test_prefetch_keeps_order_and_hands_errors_to_the_consumer():
    def load(n):
        if n == 2:
            raise ValueError("bad case")
        return n * 10

    seen = []
    for item, future in prefetch(range(5), load, workers=2):
        try:
            seen.append(future.result())
        except ValueError as exc:
            seen.append(str(exc))
    assert seen == [0, 10, "bad case", 30, 40]


# --- the command -------------------------------------------------------------------------------


def test_predict_one_case_writes_mask_probability_and_lesions(tmp_path, capsys):
    image, liver = write_case(tmp_path / "in")
    model = model_folder(tmp_path / "model")
    before = {p: p.stat().st_mtime_ns for p in (image, liver)}
    out = tmp_path / "out" / "tumor.nii.gz"
    rc = main(["predict", str(model), "-i", str(image), "-l", str(liver), "-o", str(out), "--device", "cpu",
               "--save-probabilities", "--lesions", str(tmp_path / "out" / "lesions.csv")])
    assert rc == 0, capsys.readouterr().err
    _assert_on_source_grid(out, image)
    mask = np.asarray(nib.load(str(out)).dataobj)
    liver_mask = read_volume(liver).array > 0
    assert mask_dice(mask, liver_mask) > 0.97 and not (mask & ~liver_mask).any()
    prob = nib.load(str(tmp_path / "out" / "tumor_probability.nii.gz"))
    assert prob.get_data_dtype() == np.float32 and prob.shape == SHAPE
    np.testing.assert_allclose(prob.affine, nib.load(str(image)).affine, atol=1e-4)
    (lesion,) = read_csv(tmp_path / "out" / "lesions.csv")
    assert lesion.voxels == mask.sum()
    assert lesion.mean_probability == pytest.approx(np.asarray(prob.dataobj)[mask > 0].mean(), rel=1e-4)
    assert before == {p: p.stat().st_mtime_ns for p in (image, liver)}, "inputs are never touched"
    assert sorted(p.name for p in out.parent.iterdir()) == ["lesions.csv", "tumor.nii.gz", "tumor_probability.nii.gz"]

    nrrd = tmp_path / "out" / "tumor.nrrd"
    assert main(["predict", str(model), "-i", str(image), "-l", str(liver), "-o", str(nrrd), "--device", "cpu",
                 "--tta"]) == 0  # constant probability: the same mask with 4 flips
    back = read_volume(nrrd)
    np.testing.assert_array_equal(back.array, mask)
    np.testing.assert_allclose(back.affine, nib.load(str(image)).affine, atol=1e-4)


def test_batch_reports_a_bad_case_goes_on_and_skips_what_is_done(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "data")
    write_volume(np.ones((10, 10, 8), np.uint8), make_affine(), tmp_path / "data" / "c1" / "liver.nii.gz")  # wrong grid
    model = model_folder(tmp_path / "model")
    out = tmp_path / "preds"
    args = ["predict", str(model), "--dataset", str(manifest), "--split", "test", "-o", str(out), "--device", "cpu"]
    assert main(args) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: c1: ") and "grid differs" in errors[0]
    assert "Traceback" not in captured.err and "2 predicted, 0 already done, 1 failed" in captured.out
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["c0.nii.gz", "c2.nii.gz"]
    for case in ("c0", "c2"):
        _assert_on_source_grid(out / f"{case}.nii.gz", tmp_path / "data" / case / "image.nii.gz")
    rows = read_csv(out / "lesions.csv")
    assert [r.case for r in rows] == ["c0", "c2"]
    for row in rows:
        mask = read_volume(out / f"{row.case}.nii.gz")
        assert row.voxels == mask.array.sum()
        assert row.volume_ml == pytest.approx(row.voxels * abs(np.linalg.det(mask.affine[:3, :3])) / 1000, rel=1e-5)

    os.utime(out / "c0.nii.gz", ns=(1, 1))
    write_case(tmp_path / "data" / "c1", seed=1)  # repaired
    assert main(args) == 0
    assert "1 predicted, 2 already done, 0 failed" in capsys.readouterr().out
    assert (out / "c0.nii.gz").stat().st_mtime_ns == 1, "a done case is skipped"
    assert [r.case for r in read_csv(out / "lesions.csv")] == ["c0", "c1", "c2"]
    assert main(args + ["--overwrite"]) == 0
    assert "3 predicted, 0 already done" in capsys.readouterr().out
    assert (out / "c0.nii.gz").stat().st_mtime_ns != 1
    assert not [p for p in out.rglob(".*")], "no temporary files left"


def test_batch_from_folders_pairs_files_by_name(tmp_path, capsys):
    image, liver = write_case(tmp_path / "c")
    for name in ("a", "b"):
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "livers").mkdir(exist_ok=True)
        (tmp_path / "images" / f"{name}.nii.gz").write_bytes(image.read_bytes())
    (tmp_path / "livers" / "a.nii.gz").write_bytes(liver.read_bytes())  # b has no liver mask
    rc = main(["predict", str(model_folder(tmp_path / "m")), "-i", str(tmp_path / "images"),
               "-l", str(tmp_path / "livers"), "-o", str(tmp_path / "out"), "--format", "nrrd", "--device", "cpu"])
    assert rc == 1
    assert "error: b: " in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.nrrd", "lesions", "lesions.csv", "liver",
                                                                    "overview"]
    assert [p.name for p in (tmp_path / "out" / "liver").iterdir()] == ["a.nrrd"]
    assert [p.name for p in (tmp_path / "out" / "overview").iterdir()] == ["a.png"]


def _dicom_series(folder, volume, affine):
    """Write (i, j, k) int16 as a DICOM series along ``affine`` (RAS); returns the files by k."""
    import datetime

    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    uids = [generate_uid() for _ in range(3)]
    files = []
    for k in range(volume.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = MRImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{k}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = uids
        ds.Modality, ds.PatientID, ds.PatientName = "MR", "PHANTOM", "Phantom^Liver"
        ds.StudyDate = datetime.date(2026, 1, 2).strftime("%Y%m%d")
        ds.InstanceNumber, ds.SeriesNumber = volume.shape[2] - k, 1  # numbered backwards on purpose
        ds.ImagePositionPatient = [float(v) for v in lps[:3, :3] @ [0, 0, k] + lps[:3, 3]]
        ds.ImageOrientationPatient = [float(v) for v in (*(lps[:3, 0] / spacing[0]), *(lps[:3, 1] / spacing[1]))]
        ds.PixelSpacing, ds.SliceThickness = [float(spacing[1]), float(spacing[0])], float(spacing[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(volume[:, :, k].T).astype("<i2").tobytes()
        ds.save_as(folder / f"{k}.dcm", enforce_file_format=True)
        files.append(folder / f"{k}.dcm")
    return files


def test_dicom_input_gives_a_dicom_seg_on_the_right_slices(tmp_path, capsys):
    import highdicom as hd
    import pydicom

    affine = make_affine(angle=0.3, flips=(1, 1, 1))
    rng = np.random.default_rng(4)
    liver = np.zeros(SHAPE, np.uint8)
    for k in range(1, 7):  # a different liver outline on every slice, so a frame on a wrong slice shows
        liver[4:20 + 2 * k, 6:30 - k, k] = 1
    image = (np.where(liver > 0, 1000, 300) + rng.integers(-40, 40, SHAPE)).astype(np.int16)
    files = _dicom_series(tmp_path / "series", image, affine)
    series_affine = read_volume(tmp_path / "series").affine
    np.testing.assert_allclose(series_affine, affine, atol=1e-4)
    liver_path = write_volume(liver, series_affine, tmp_path / "liver.nrrd")
    model = model_folder(tmp_path / "model")
    common = ["predict", str(model), "-i", str(tmp_path / "series"), "-l", str(liver_path), "--device", "cpu"]
    assert main(common + ["-o", str(tmp_path / "out"), "--format", "dicom-seg"]) == 0
    assert main(common + ["-o", str(tmp_path / "mask.nii.gz")]) == 0, capsys.readouterr().err
    mask = read_volume(tmp_path / "mask.nii.gz").array
    assert mask.any() and all(mask[..., k].sum() != mask[..., k + 1].sum() for k in range(1, 6))

    seg_path = tmp_path / "out" / "tumor.dcm"
    seg = pydicom.dcmread(seg_path)
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == pydicom.dcmread(files[0]).StudyInstanceUID
    uid_to_k = {pydicom.dcmread(f).SOPInstanceUID: k for k, f in enumerate(files)}
    frames = seg.pixel_array.reshape(-1, SHAPE[1], SHAPE[0])
    lesions, voxels = number_by_size(mask)  # segment n + 1 is lesion n, numbered as lesions.csv
    segments = {1: liver > 0, **{n + 1: lesions == n for n in range(1, len(voxels) + 1)}}
    seen: dict[int, set[int]] = {s: set() for s in segments}
    for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        k = uid_to_k[item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        np.testing.assert_allclose(item.PlanePositionSequence[0].ImagePositionPatient,
                                   pydicom.dcmread(files[k]).ImagePositionPatient, atol=1e-3)
        segment = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        np.testing.assert_array_equal(frame, segments[segment][:, :, k].T)
        seen[segment].add(k)
    assert len(voxels) >= 1 and seen == {s: {k for k in range(SHAPE[2]) if m[:, :, k].any()} for s, m in segments.items()}
    reread = hd.seg.segread(seg_path)
    assert [s.SegmentLabel for s in reread.SegmentSequence] == ["Liver"] + [f"Lesion {n}" for n in range(1, len(voxels) + 1)]


# --- bad input ---------------------------------------------------------------------------------


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path, capsys):
    image, liver = write_case(tmp_path / "c")
    model = model_folder(tmp_path / "model")
    out_dir = tmp_path / "out"
    out = out_dir / "tumor.nii.gz"

    def run(*extra, model=model, image=image, liver=liver, out=out):
        args = ["predict", str(model), "-i", str(image), "-o", str(out), "--device", "cpu", *extra]
        return main(args + (["-l", str(liver)] if liver is not None else []))

    shifted = make_affine(origin=(31.0, -40.0, 12.0))
    mismatch = write_volume(read_volume(liver).array, shifted, tmp_path / "shifted_liver.nii.gz")
    assert run(liver=mismatch) == 2
    _one_line_error(capsys, "shifted_liver.nii.gz", "grid differs from the image", "origin")
    empty = write_volume(np.zeros(SHAPE, np.uint8), make_affine(), tmp_path / "empty_liver.nii.gz")
    assert run(liver=empty) == 2
    _one_line_error(capsys, "empty_liver.nii.gz: liver mask is empty")
    assert run(liver=None) == 2
    _one_line_error(capsys, "no liver mask given")
    assert run(liver=tmp_path / "missing.nii.gz") == 2
    _one_line_error(capsys, "missing.nii.gz: file not found")
    old = model_folder(tmp_path / "old_model", version=99)
    assert run(model=old) == 2
    _one_line_error(capsys, "model.json", "version 99 is not supported")
    assert run(model=tmp_path / "no_model") == 2
    _one_line_error(capsys, "not a hepaseg model folder")
    out_dir.mkdir()
    assert run(out=tmp_path / "tumor.txt") == 2
    _one_line_error(capsys, "tumor.txt: output path has an unknown suffix; give a folder")
    (tmp_path / "a_dir.nii.gz").mkdir()
    assert run(out=tmp_path / "a_dir.nii.gz") == 2
    _one_line_error(capsys, "output path is a directory")
    assert run("--lesions", str(tmp_path / "l.csv"), out=out_dir) == 2
    _one_line_error(capsys, "--lesions is for a mask file -o; a folder -o gets lesions.csv")
    (tmp_path / "a_file").write_text("x")
    assert run(out=tmp_path / "a_file" / "tumor.nii.gz") == 2
    _one_line_error(capsys, "cannot create the output folder", "is a file")
    assert run("--format", "dicom-seg", out=out_dir) == 2
    _one_line_error(capsys, "needs a DICOM series folder")
    assert run("--format", "nrrd") == 2
    _one_line_error(capsys, "--format nrrd needs a file name ending in .nrrd")
    assert run("--format", "dicom-seg") == 2
    _one_line_error(capsys, "--format dicom-seg writes a .dcm file")
    assert main(["predict", str(model), "--dataset", str(tmp_path / "x.json"), "-o", str(out_dir)]) == 2
    _one_line_error(capsys, "manifest not found")
    manifest = write_manifest(tmp_path / "data", n=1)
    assert main(["predict", str(model), "--dataset", str(manifest), "-o", str(tmp_path / "a_file")]) == 2
    _one_line_error(capsys, "output folder is an existing file")
    assert list(out_dir.iterdir()) == [] and not (tmp_path / "a_file").is_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_folder(tmp_path, capsys):
    image, liver = write_case(tmp_path / "c")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    rc = main(["predict", str(model_folder(tmp_path / "m")), "-i", str(image), "-l", str(liver),
               "-o", str(locked / "t.nii.gz")])
    assert rc == 2
    _one_line_error(capsys, "not writable")


# --- DICOM folders with several series, a liver mask in another axis order -----------------------


def test_series_and_a_liver_mask_in_another_axis_order_give_the_canonical_prediction(
        tmp_path, capsys, write_dicom_series):
    import pydicom

    entry, uid = write_dicom_case(tmp_path, write_dicom_series)
    model = model_folder(tmp_path / "model")
    dicom, case = tmp_path / "case" / "dicom", tmp_path / "case"
    common = ["predict", str(model), "-i", str(dicom), "--device", "cpu"]
    outputs = {}
    for name in ("liver.nii.gz", "liver_canonical.nii.gz"):
        out = tmp_path / "out" / f"from_{name}"
        assert main(common + ["--series", uid, "-l", str(case / name), "-o", str(out)]) == 0, capsys.readouterr().err
        outputs[name] = read_volume(out)
    reordered, canonical = outputs.values()
    np.testing.assert_array_equal(reordered.array, canonical.array)
    np.testing.assert_allclose(reordered.affine, read_volume(tmp_path / "hbp").affine, atol=1e-4)
    liver = read_volume(case / "liver_canonical.nii.gz").array > 0
    assert mask_dice(canonical.array, liver) > 0.9 and not (canonical.array & ~liver).any()

    manifest = tmp_path / "dataset.json"
    manifest.write_text(json.dumps({"name": "t", "raters": ["R1"], "cases": [entry]}))
    assert main(["predict", str(model), "--dataset", str(manifest), "-o", str(tmp_path / "batch"),
                 "--device", "cpu"]) == 0, capsys.readouterr().err
    np.testing.assert_array_equal(read_volume(tmp_path / "batch" / "case.nii.gz").array, canonical.array)
    assert main(common + ["--series", uid, "-l", str(case / "liver.nii.gz"), "-o", str(tmp_path / "seg"),
                          "--format", "dicom-seg"]) == 0, capsys.readouterr().err
    seg = pydicom.dcmread(tmp_path / "seg" / "tumor.dcm")
    assert {str(item.SeriesInstanceUID) for item in seg.ReferencedSeriesSequence} == {uid}  # not the localiser
    liver_slices = int(np.count_nonzero(read_volume(case / "liver_canonical.nii.gz").array.any(axis=(0, 1))))
    tumour_slices = int(np.count_nonzero(canonical.array.any(axis=(0, 1))))
    assert len(seg.PerFrameFunctionalGroupsSequence) == liver_slices + tumour_slices

    capsys.readouterr()
    assert main(common + ["-l", str(case / "liver.nii.gz"), "-o", str(tmp_path / "none.nii.gz")]) == 2
    _one_line_error(capsys, f"error: {dicom}: folder holds 2 DICOM series: {uid} (", "--series UID")
    assert main(["predict", str(model), "--dataset", str(manifest), "--series", uid, "-o",
                 str(tmp_path / "b2"), "--device", "cpu"]) == 2
    _one_line_error(capsys, "--series is for one case")
    assert not (tmp_path / "none.nii.gz").exists() and not (tmp_path / "b2").exists()
