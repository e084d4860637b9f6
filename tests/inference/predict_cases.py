"""Tiny synthetic cases for the prediction tests (not a test module): one dark tumour in a bright
liver on an oblique, flipped grid, a tiny model configuration, and ``dark_is_tumour``, a stand-in
for a trained network with the same valid-convolution margins: tumour where the normalised image is
below -1 (far darker than the liver)."""

from __future__ import annotations

import json

import numpy as np
import torch

from hepaseg.config import Config, InferConfig, ModelConfig, PreprocessConfig
from hepaseg.io.volumes import write_volume
from hepaseg.model.folder import write_model_info, write_weights
from hepaseg.model.shapes import output_size
from hepaseg.model.unet import UNet, center_crop

CONFIG = Config(preset="test", preprocess=PreprocessConfig(inplane_spacing_mm=1.0),
                model=ModelConfig(widths=(4, 8), z_convs=(0, 1), pools=((2, 2, 1),), dropout=0.0),
                infer=InferConfig(tile_output_size=(24, 24, 8)))
SHAPE = (40, 36, 8)
TUMOUR = (slice(15, 21), slice(12, 18), slice(3, 5))  # the painted 6 x 6 x 2 tumour


def make_affine(spacing=(1.25, 1.1, 3.0), angle=0.2, flips=(-1, 1, -1), origin=(30.0, -40.0, 12.0)) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    a = np.eye(4)
    a[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag(np.multiply(flips, spacing))
    a[:3, 3] = origin
    return a


def write_case(folder, affine=None, liver_box=(slice(4, 36), slice(4, 32), slice(1, 7)), seed=0):
    """Write image.nii.gz (bright liver, one dark 6 x 6 x 2 tumour) and liver.nii.gz; return the paths.

    The tumour is 1.3 % of the liver, so the liver's 2nd percentile (-> 0) is liver, not tumour.
    """
    affine = make_affine() if affine is None else affine
    rng = np.random.default_rng(seed)
    liver = np.zeros(SHAPE, np.uint8)
    liver[liver_box] = 1
    image = np.where(liver > 0, 1000, 300) + rng.integers(-40, 40, SHAPE)
    image[TUMOUR] = 200
    folder.mkdir(parents=True, exist_ok=True)
    return (write_volume(image.astype(np.int16), affine, folder / "image.nii.gz"),
            write_volume(liver, affine, folder / "liver.nii.gz"))


def write_manifest(root, n=3):
    """``root/dataset.json`` naming ``n`` cases ``c0``.. (``write_case``, seeds 0..) in split test and
    a copy of ``c0`` as ``t0`` in split train; returns its path."""
    entries = []
    for i in range(n):
        write_case(root / f"c{i}", seed=i)
        entries.append({"id": f"c{i}", "split": "test", "image": f"c{i}/image.nii.gz", "liver": f"c{i}/liver.nii.gz"})
    entries.append({**entries[0], "id": "t0", "split": "train"})
    path = root / "dataset.json"
    path.write_text(json.dumps({"name": "t", "raters": [], "cases": entries}))
    return path


def dark_is_tumour(x: torch.Tensor) -> torch.Tensor:
    return -20.0 * (center_crop(x, output_size(CONFIG.model, tuple(x.shape[2:]))) + 1.0)


def mask_dice(a, b) -> float:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def model_folder(folder, version=None):
    """A model folder of ``CONFIG``'s real (untrained) UNet whose last convolution is weight 0 / bias +5:
    probability sigmoid(5) everywhere, so the predicted mask is the liver. ``version``: model.json's."""
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
