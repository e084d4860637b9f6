"""Synthetic patients and a hand-set model for the node tests (not a test module).

- ``write_patient``: one patient's study as DICOM files: an axial hepatobiliary-phase series (a body,
  a bright ellipsoid liver of about 340 mL, one dark spherical tumour of radius 9 mm at its centre)
  and, optionally, a three-slice localiser of the same study.
- ``threshold_net``: a real ``UNet`` whose weights are set by hand so that its logit is
  ``slope * (input - level)`` at every output voxel (one channel carries the centre tap of every
  convolution of the top level; the deeper levels are zero). ``model_folder`` writes a tumour model
  (tumour where the liver-normalised image is below -1) with an embedded liver model (liver where
  the body-normalised image is above 0.6), so the segmentation of a series is known in advance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hepaseg.config import Config, InferConfig, ModelConfig, PreprocessConfig
from hepaseg.model.folder import embed_liver_model, write_model_info, write_weights
from hepaseg.model.unet import UNet

SHAPE = (64, 64, 12)  # (columns i, rows j, slices k)
SPACING = (3.0, 3.0, 6.0)  # mm (i, j, k)
TINY = ModelConfig(widths=(4, 8), z_convs=(0, 1), pools=((2, 2, 1),), dropout=0.0)
TUMOUR_CONFIG = Config(preset="test", preprocess=PreprocessConfig(inplane_spacing_mm=1.5), model=TINY,
                       infer=InferConfig(tile_output_size=(24, 24, 8), auto_liver_margin_mm=0.0))
LIVER_CONFIG = Config(preset="test-liver",
                      preprocess=PreprocessConfig(inplane_spacing_mm=2.5, normalisation="body", target="liver"),
                      model=TINY, infer=InferConfig(tile_output_size=(16, 16, 8), restrict_to_liver=False,
                                                    border_opening=False, largest_component=True, fill_holes=True))
OFFSET = 50.0  # carried through the ReLUs: normalised images stay far above -50
TUMOUR_RADIUS_MM = 9.0
LIVER_RADII_MM = (55.0, 45.0, 33.0)


def threshold_net(cfg: ModelConfig, slope: float, level: float) -> UNet:
    """A UNet of ``cfg`` whose output logit is ``slope * (x - level)`` at each voxel (see the module docstring)."""
    net = UNet(cfg).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.weight.fill_(1.0)
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)  # BN is the identity
        path = [m for m in net.down[0] if isinstance(m, torch.nn.Conv3d)] + \
               [m for m in net.up_blocks[0] if isinstance(m, torch.nn.Conv3d)]
        for conv in path:
            conv.weight[(0, 0, *(k // 2 for k in conv.weight.shape[2:]))] = 1.0
        path[0].bias[0] = OFFSET
        net.head.weight[0, 0] = slope
        net.head.bias[0] = -slope * (OFFSET + level)
    return net


def model_folder(folder: Path, tumour: Config = TUMOUR_CONFIG, liver: Config = LIVER_CONFIG) -> Path:
    """A tumour model folder (dark: tumour) with its liver model (bright: liver) embedded; returns it."""
    liver_dir = folder.parent / f"{folder.name}-liver"
    for where, config, net in ((folder, tumour, threshold_net(tumour.model, -20.0, -1.0)),
                               (liver_dir, liver, threshold_net(liver.model, 20.0, 0.6))):
        write_model_info(where, config, {"seed": 0})
        write_weights(where, net.state_dict())
    embed_liver_model(liver_dir, folder)
    return folder


def phantom(shape=SHAPE, spacing=SPACING, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image int16, liver bool, tumour bool), (i, j, k): the HBP series' voxels."""
    rng = np.random.default_rng(seed)
    mm = np.meshgrid(*((np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing)), indexing="ij")
    half = [n * s / 2 for n, s in zip(shape, spacing)]
    body = (mm[0] / (0.9 * half[0])) ** 2 + (mm[1] / (0.75 * half[1])) ** 2 <= 1
    centre = (-0.2 * half[0], 0.0, 0.0)
    liver = sum(((m - c) / r) ** 2 for m, c, r in zip(mm, centre, LIVER_RADII_MM)) <= 1
    tumour = sum((m - c) ** 2 for m, c in zip(mm, centre)) <= TUMOUR_RADIUS_MM ** 2
    image = np.where(body, 600.0, 20.0) + np.where(liver, 300.0, 0.0) - np.where(tumour, 500.0, 0.0)
    image += rng.normal(0, 10, shape)
    return image.astype(np.int16), liver, tumour


def write_patient(folder: Path, patient: str, hbp: bool = True, localiser: bool = True, seed: int = 0,
                  description: str = "t1_vibe_fs_tra_hbp_20min", shape=SHAPE, spacing=SPACING) -> dict[str, Path]:
    """Write a patient's study into ``folder/<patient>/`` (one sub-folder per series); {kind: folder}."""
    from pydicom.uid import generate_uid

    study, frame = generate_uid(), generate_uid()
    out: dict[str, Path] = {}
    if hbp:
        image, _, _ = phantom(shape, spacing, seed)
        out["hbp"] = _write_series(folder / patient / "hbp", patient, study, frame, image, spacing, description,
                                   ["ORIGINAL", "PRIMARY", "M", "NORM"], series_number=7)
    if localiser:
        image = np.full((shape[0], shape[1], 3), 300, np.int16)
        out["localiser"] = _write_series(folder / patient / "localiser", patient, study, frame, image,
                                         (spacing[0], spacing[1], 20.0), "localizer",
                                         ["ORIGINAL", "PRIMARY", "LOCALIZER"], series_number=1)
    return out


def _write_series(folder: Path, patient: str, study: str, frame: str, image: np.ndarray, spacing, description: str,
                  image_type: list[str], series_number: int) -> Path:
    """One axial MR series of ``image`` (i, j, k) int16, rows along +y and columns along +x (LPS), with
    the tags of a Siemens scanner's series."""
    from ..conftest import _write_dicom_series

    tags = dict(StudyInstanceUID=study, FrameOfReferenceUID=frame, PatientID=patient, PatientName=f"{patient}^Test",
                StudyTime="101010", AccessionNumber="A1", StudyID="1", ReferringPhysicianName="",
                PatientBirthDate="", PatientSex="O", Manufacturer="SIEMENS", SeriesDescription=description,
                ImageType=image_type, ScanningSequence="GR", SequenceVariant="SP", ScanOptions="",
                MRAcquisitionType="3D", RepetitionTime=4.0, EchoTime=2.0, EchoTrainLength=1,
                SeriesNumber=series_number)
    _write_dicom_series(folder, image, spacing, (-95.0, -95.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), tags)
    return folder
