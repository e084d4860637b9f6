"""``hepaseg predict`` end to end on tiny synthetic cases with a tiny model.

Two stand-ins for a trained network keep the expected results derivable:
- a saved model folder (real ``UNet`` of a small ``ModelConfig``, untrained, its last convolution
  set to weight 0 / bias +5): probability sigmoid(5) everywhere in the liver's box, so the mask
  is the liver; used through the CLI.
- ``dark_is_tumour``, a callable with the same valid-convolution margins: tumour where the
  normalised image is below -1 (far darker than the liver); used through ``Predictor``.
"""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from hepaseg.cli import main
from hepaseg.config import Config, InferConfig, ModelConfig, PreprocessConfig
from hepaseg.errors import InputError
from hepaseg.inference.batch import prefetch
from hepaseg.inference.lesion_table import read_csv
from hepaseg.inference.predictor import Predictor, load_case, with_mirror_tta
from hepaseg.inference.tiling import fit_tile, predict_volume
from hepaseg.io.volumes import read_volume, write_volume
from hepaseg.model.folder import write_model_info, write_weights
from hepaseg.model.shapes import output_size
from hepaseg.model.unet import UNet, center_crop

CONFIG = Config(preset="test", preprocess=PreprocessConfig(inplane_spacing_mm=1.0),
                model=ModelConfig(widths=(4, 8), z_convs=(0, 1), pools=((2, 2, 1),), dropout=0.0),
                infer=InferConfig(tile_output_size=(24, 24, 8)))
SHAPE = (40, 36, 8)


def _affine(spacing=(1.25, 1.1, 3.0), angle=0.2, flips=(-1, 1, -1), origin=(30.0, -40.0, 12.0)) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    a = np.eye(4)
    a[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag(np.multiply(flips, spacing))
    a[:3, 3] = origin
    return a


def _case(folder, affine=None, liver_box=(slice(4, 36), slice(4, 32), slice(1, 7)), seed=0):
    """Write image.nii.gz (bright liver, one dark 6 x 6 x 2 tumour) and liver.nii.gz; return the paths.

    The tumour is 1.3 % of the liver, so the liver's 2nd percentile (-> 0) is liver, not tumour.
    """
    affine = _affine() if affine is None else affine
    rng = np.random.default_rng(seed)
    liver = np.zeros(SHAPE, np.uint8)
    liver[liver_box] = 1
    image = np.where(liver > 0, 1000, 300) + rng.integers(-40, 40, SHAPE)
    image[15:21, 12:18, 3:5] = 200
    folder.mkdir(parents=True, exist_ok=True)
    return (write_volume(image.astype(np.int16), affine, folder / "image.nii.gz"),
            write_volume(liver, affine, folder / "liver.nii.gz"))


def _model_folder(folder, version=None):
    torch.manual_seed(0)
    net = UNet(CONFIG.model)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.fill_(5.0)
    write_model_info(folder, CONFIG, {"seed": 0})
    write_weights(folder, net.state_dict())
    if version is not None:
        info = json.loads((folder / "model.json").read_text())
        (folder / "model.json").write_text(json.dumps({**info, "version": version}))
    return folder


def dark_is_tumour(x: torch.Tensor) -> torch.Tensor:
    return -20.0 * (center_crop(x, output_size(CONFIG.model, tuple(x.shape[2:]))) + 1.0)


def _dice(a, b) -> float:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


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


# --- units -------------------------------------------------------------------------------------


def test_fit_tile_covers_the_box_with_valid_tiles():
    paper = Config().model
    assert fit_tile(paper, (200, 170, 20), (244, 244, 96)) == (212, 180, 20)  # one tile, not 244 x 244 x 96
    assert fit_tile(paper, (300, 250, 40), (244, 244, 96)) == (164, 132, 40)  # two tiles in-plane
    small = fit_tile(paper, (200, 170, 20), (244, 244, 96), max_input_voxels=5e6)
    from hepaseg.model.shapes import input_size

    assert np.prod(input_size(paper, small)) <= 5e6


@pytest.mark.parametrize("box", [((5, 4, 1), (20, 15, 5)), ((0, 0, 0), (26, 30, 6))])
def test_mapping_back_near_the_box_equals_the_full_mapping(box):
    from hepaseg.inference.predictor import to_original_in_box
    from hepaseg.io.geometry import plan_grid, to_original

    grid = plan_grid((24, 30, 6), _affine(spacing=(1.3, 0.8, 3.0)))
    lo, hi = (np.minimum(b, grid.prepared_shape) for b in box)
    prob = np.zeros(grid.prepared_shape, np.float32)
    prob[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = np.random.default_rng(0).random(tuple(hi - lo))
    fast = to_original_in_box(prob, grid, (lo, hi))
    np.testing.assert_allclose(fast, to_original(prob, grid), atol=1e-6)
    mask = (prob > 0.5).astype(np.uint8)
    np.testing.assert_array_equal(to_original_in_box(mask, grid, (lo, hi)) >= 0.5, to_original(mask, grid, mask=True))


def test_tta_of_a_flip_equivariant_predictor_equals_the_plain_prediction():
    # A valid 5 x 5 x 3 box filter is mirror-symmetric, and tiles do not change a per-voxel result.
    def box_filter(x):
        return torch.nn.functional.avg_pool3d(x, (5, 5, 3), stride=1) * 4 - 2

    def predict(image, liver):
        return predict_volume(box_filter, image, liver, (5, 4, 3), (2, 2, 1))

    rng = np.random.default_rng(0)
    image = rng.normal(size=(13, 11, 7)).astype(np.float32)
    liver = np.zeros(image.shape, np.uint8)
    liver[2:12, 1:9, 1:6] = 1
    plain = predict(image, liver)
    np.testing.assert_allclose(with_mirror_tta(predict)(image, liver), plain, atol=1e-6)

    calls = []
    with_mirror_tta(lambda i, l: calls.append(i.strides) or np.zeros(i.shape, np.float32))(image, liver)
    assert len(calls) == 8 and len(set(calls)) == 8  # the 8 mirrorings, each a different view


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


def test_predictor_finds_the_dark_tumour_and_tables_it(tmp_path):
    image_path, liver_path = _case(tmp_path / "c")
    case = load_case(image_path, liver_path, CONFIG.preprocess)
    result = Predictor(dark_is_tumour, CONFIG).predict(case, "c")
    painted = np.zeros(SHAPE, np.uint8)
    painted[15:21, 12:18, 3:5] = 1
    assert result.mask.shape == SHAPE and _dice(result.mask, painted) > 0.85
    (lesion,) = result.lesions
    affine = read_volume(image_path).affine
    idx = np.argwhere(result.mask > 0)
    assert lesion.voxels == len(idx)
    assert lesion.volume_ml == pytest.approx(len(idx) * abs(np.linalg.det(affine[:3, :3])) / 1000)
    np.testing.assert_allclose([lesion.centroid_ras_x_mm, lesion.centroid_ras_y_mm, lesion.centroid_ras_z_mm],
                               affine[:3, :3] @ idx.mean(axis=0) + affine[:3, 3], atol=1e-4)
    assert lesion.mean_probability == pytest.approx(result.probability[result.mask > 0].mean(), rel=1e-5)
    assert lesion.mean_probability > 0.9
    # The painted square is 6 x 6 voxels of 1.25 x 1.1 mm: about hypot(7.5, 6.6) mm edge to edge.
    assert abs(lesion.diameter_mm - np.hypot(7.5, 6.6)) < 2.5

    tta = Predictor(dark_is_tumour, CONFIG.replace(infer=InferConfig(tile_output_size=(24, 24, 8), tta=True)))
    np.testing.assert_array_equal(tta.predict(case, "c").mask, result.mask)


def test_bf16_on_the_cpu_stays_close_to_float32(tmp_path):
    image, liver = _case(tmp_path / "c")
    case = load_case(image, liver, CONFIG.preprocess)
    torch.manual_seed(0)
    net = UNet(CONFIG.model)
    fp32 = Predictor(net, CONFIG, "cpu").probability(case.prepared, case.prepared_liver)
    bf16 = Predictor(net, CONFIG, "cpu", precision="bf16").probability(case.prepared, case.prepared_liver)
    assert fp32.any() and np.abs(bf16 - fp32).max() < 0.02
    with pytest.raises(InputError, match="unknown precision"):
        Predictor(net, CONFIG, "cpu", precision="fp8")


# --- the command -------------------------------------------------------------------------------


def test_predict_one_case_writes_mask_probability_and_lesions(tmp_path, capsys):
    image, liver = _case(tmp_path / "in")
    model = _model_folder(tmp_path / "model")
    before = {p: p.stat().st_mtime_ns for p in (image, liver)}
    out = tmp_path / "out" / "tumor.nii.gz"
    rc = main(["predict", str(model), "-i", str(image), "-l", str(liver), "-o", str(out), "--device", "cpu",
               "--save-probabilities", "--lesions", str(tmp_path / "out" / "lesions.csv")])
    assert rc == 0, capsys.readouterr().err
    _assert_on_source_grid(out, image)
    mask = np.asarray(nib.load(str(out)).dataobj)
    liver_mask = read_volume(liver).array > 0
    assert _dice(mask, liver_mask) > 0.97 and not (mask & ~liver_mask).any()
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
                 "--tta"]) == 0  # constant probability: the same mask with 8 flips
    back = read_volume(nrrd)
    np.testing.assert_array_equal(back.array, mask)
    np.testing.assert_allclose(back.affine, nib.load(str(image)).affine, atol=1e-4)


def _manifest(root, n=3):
    entries = []
    for i in range(n):
        _case(root / f"c{i}", seed=i)
        entries.append({"id": f"c{i}", "split": "test", "image": f"c{i}/image.nii.gz", "liver": f"c{i}/liver.nii.gz"})
    entries.append({**entries[0], "id": "t0", "split": "train"})
    path = root / "dataset.json"
    path.write_text(json.dumps({"name": "t", "raters": [], "cases": entries}))
    return path


def test_batch_reports_a_bad_case_goes_on_and_skips_what_is_done(tmp_path, capsys):
    manifest = _manifest(tmp_path / "data")
    write_volume(np.ones((10, 10, 8), np.uint8), _affine(), tmp_path / "data" / "c1" / "liver.nii.gz")  # wrong grid
    model = _model_folder(tmp_path / "model")
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
    _case(tmp_path / "data" / "c1", seed=1)  # repaired
    assert main(args) == 0
    assert "1 predicted, 2 already done, 0 failed" in capsys.readouterr().out
    assert (out / "c0.nii.gz").stat().st_mtime_ns == 1, "a done case is skipped"
    assert [r.case for r in read_csv(out / "lesions.csv")] == ["c0", "c1", "c2"]
    assert main(args + ["--overwrite"]) == 0
    assert "3 predicted, 0 already done" in capsys.readouterr().out
    assert (out / "c0.nii.gz").stat().st_mtime_ns != 1
    assert not [p for p in out.rglob(".*")], "no temporary files left"


def test_batch_from_folders_pairs_files_by_name(tmp_path, capsys):
    image, liver = _case(tmp_path / "c")
    for name in ("a", "b"):
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "livers").mkdir(exist_ok=True)
        (tmp_path / "images" / f"{name}.nii.gz").write_bytes(image.read_bytes())
    (tmp_path / "livers" / "a.nii.gz").write_bytes(liver.read_bytes())  # b has no liver mask
    rc = main(["predict", str(_model_folder(tmp_path / "m")), "-i", str(tmp_path / "images"),
               "-l", str(tmp_path / "livers"), "-o", str(tmp_path / "out"), "--format", "nrrd", "--device", "cpu"])
    assert rc == 1
    assert "error: b: " in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.nrrd", "lesions", "lesions.csv"]


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

    affine = _affine(angle=0.3, flips=(1, 1, 1))
    rng = np.random.default_rng(4)
    liver = np.zeros(SHAPE, np.uint8)
    for k in range(1, 7):  # a different liver outline on every slice, so a frame on a wrong slice shows
        liver[4:20 + 2 * k, 6:30 - k, k] = 1
    image = (np.where(liver > 0, 1000, 300) + rng.integers(-40, 40, SHAPE)).astype(np.int16)
    files = _dicom_series(tmp_path / "series", image, affine)
    series_affine = read_volume(tmp_path / "series").affine
    np.testing.assert_allclose(series_affine, affine, atol=1e-4)
    liver_path = write_volume(liver, series_affine, tmp_path / "liver.nrrd")
    model = _model_folder(tmp_path / "model")
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
    seen = set()
    for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        k = uid_to_k[item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        np.testing.assert_allclose(item.PlanePositionSequence[0].ImagePositionPatient,
                                   pydicom.dcmread(files[k]).ImagePositionPatient, atol=1e-3)
        np.testing.assert_array_equal(frame, mask[:, :, k].T)
        seen.add(k)
    assert seen == {k for k in range(SHAPE[2]) if mask[:, :, k].any()}
    reread = hd.seg.segread(seg_path)
    assert reread.number_of_segments == 1 and reread.SegmentSequence[0].SegmentLabel == "liver tumour"


# --- bad input ---------------------------------------------------------------------------------


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path, capsys):
    image, liver = _case(tmp_path / "c")
    model = _model_folder(tmp_path / "model")
    out_dir = tmp_path / "out"
    out = out_dir / "tumor.nii.gz"

    def run(*extra, model=model, image=image, liver=liver, out=out):
        args = ["predict", str(model), "-i", str(image), "-o", str(out), "--device", "cpu", *extra]
        return main(args + (["-l", str(liver)] if liver is not None else []))

    shifted = _affine(origin=(31.0, -40.0, 12.0))
    mismatch = write_volume(read_volume(liver).array, shifted, tmp_path / "shifted_liver.nii.gz")
    assert run(liver=mismatch) == 2
    _one_line_error(capsys, "shifted_liver.nii.gz", "grid differs from the image", "origin")
    empty = write_volume(np.zeros(SHAPE, np.uint8), _affine(), tmp_path / "empty_liver.nii.gz")
    assert run(liver=empty) == 2
    _one_line_error(capsys, "empty_liver.nii.gz: liver mask is empty")
    assert run(liver=None) == 2
    _one_line_error(capsys, "no liver mask given")
    assert run(liver=tmp_path / "missing.nii.gz") == 2
    _one_line_error(capsys, "missing.nii.gz: file not found")
    old = _model_folder(tmp_path / "old_model", version=99)
    assert run(model=old) == 2
    _one_line_error(capsys, "model.json", "version 99 is not supported")
    assert run(model=tmp_path / "no_model") == 2
    _one_line_error(capsys, "not a hepaseg model folder")
    out_dir.mkdir()
    assert run(out=out_dir) == 2
    _one_line_error(capsys, "output path is a directory")
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
    manifest = _manifest(tmp_path / "data", n=1)
    assert main(["predict", str(model), "--dataset", str(manifest), "-o", str(tmp_path / "a_file")]) == 2
    _one_line_error(capsys, "output folder is an existing file")
    assert list(out_dir.iterdir()) == [] and not (tmp_path / "a_file").is_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_folder(tmp_path, capsys):
    image, liver = _case(tmp_path / "c")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    rc = main(["predict", str(_model_folder(tmp_path / "m")), "-i", str(image), "-l", str(liver),
               "-o", str(locked / "t.nii.gz")])
    assert rc == 2
    _one_line_error(capsys, "not writable")
