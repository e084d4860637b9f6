"""Export a manifest as an nnU-Net v2 raw dataset (``hepaseg export nnunet``), so that nnU-Net can be
trained on the same cases and evaluated beside hepaseg's own algorithms.

Layout written (nnU-Net v2's "dataset format")::

    DatasetXXX_Name/
        imagesTr/<case>_0000.nii.gz    train and val cases (one channel, "0")
        labelsTr/<case>.nii.gz         uint8: 0 background, 1 liver, 2 tumour (training rater)
        imagesTs/<case>_0000.nii.gz    test cases
        dataset.json                   channel_names, labels, numTraining, file_ending
        splits_final.json              [{"train": [train ids], "val": [val ids]}]: nnU-Net's fold 0
                                       is hepaseg's own train / validation split

Images keep their own geometry: a ``.nii.gz`` source is linked (absolute symlink) or copied
(``copy=True``) unchanged; any other format (``.nii``, NRRD, MHA, a DICOM series) is written as
NIfTI with the geometry hepaseg reads (``io.volumes.read_volume``). Labels are written on the image's
grid (liver and tumour masks must lie on it). Tumour voxels are 2 even outside the liver mask.
nnU-Net reads ``splits_final.json`` from its preprocessed folder, so it is copied there after
``nnUNetv2_plan_and_preprocess`` (the command prints the steps).

The folder is built under a temporary name beside the target and renamed when complete; the source
files are only read.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.atomic import DIR_MODE, temporary_prefix, write_json
from ..io.formats import volume_suffix
from ..io.geometry import on_grid
from ..io.volumes import Volume, read_volume, write_volume
from .manifest import Case, load_manifest

CHANNEL_NAMES = {"0": "MRI"}  # any name but "CT" gives nnU-Net's z-score normalisation
LABELS = {"background": 0, "liver": 1, "tumor": 2}
FILE_ENDING = ".nii.gz"
TUMOUR_LABEL = LABELS["tumor"]  # what ``hepaseg evaluate --label NAME=2`` takes from nnU-Net's output
FOLDER_NAME = re.compile(r"^Dataset(\d{3})_[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class NnunetExport:
    """What ``export_nnunet`` wrote.

    Attributes:
        folder: the dataset folder (``.../DatasetXXX_Name``).
        dataset_id: nnU-Net's dataset id (``-d``).
        train, val, test: case ids, in manifest order (train + val are ``imagesTr``).
        rater: whose tumour masks are the labels.
        linked: whether unchanged NIfTI images are symlinks (False: copies).
    """

    folder: Path
    dataset_id: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    rater: str
    linked: bool


def dataset_folder_name(folder: Path, dataset_id: int) -> None:
    """Require ``folder``'s name to be ``Dataset<id, 3 digits>_<name>`` (nnU-Net finds datasets by it).

    Raises:
        InputError: an id outside 1..999 or a folder name that does not carry it.
    """
    if not 1 <= dataset_id <= 999:
        raise InputError("--id", f"nnU-Net dataset ids are 1 to 999, got {dataset_id}")
    match = FOLDER_NAME.match(folder.name)
    if match is None or int(match.group(1)) != dataset_id:
        raise InputError(folder, f"nnU-Net needs the folder name Dataset{dataset_id:03d}_<name> for --id {dataset_id}")


def export_nnunet(manifest: str | Path, out: str | Path, dataset_id: int, rater: str, copy: bool = False) -> NnunetExport:
    """Write the nnU-Net v2 raw dataset of ``manifest`` into the new folder ``out``.

    Args:
        manifest: ``dataset.json`` with train, val and test cases.
        out: the dataset folder to create, named ``Dataset<id>_<name>`` (inside ``nnUNet_raw``).
        dataset_id: nnU-Net's dataset id, 1 to 999.
        rater: the training rater: their tumour masks become label 2.
        copy: copy unchanged NIfTI images instead of linking them.

    Raises:
        InputError: a bad folder name or id, ``out`` exists, an unknown rater, no train or no val
            case, a train / val case without the rater's mask, or a mask off the image's grid.
    """
    target = Path(out)
    dataset_folder_name(target, dataset_id)
    if target.exists():
        raise InputError(target, "already exists; remove it or choose another folder")
    dataset = load_manifest(manifest)
    if rater not in dataset.raters:
        raise InputError(manifest, f"rater {rater!r} is not in 'raters' ({', '.join(dataset.raters)})")
    train, val, test = (dataset.split(s) for s in ("train", "val", "test"))
    if not train or not val:
        raise InputError(manifest, "nnU-Net's fold 0 needs train and val cases (hepaseg's own split)")
    lacking = [c.id for c in (*train, *val) if rater not in c.tumor]
    if lacking:
        raise InputError(manifest, f"train / val cases without a mask of {rater}: {', '.join(lacking)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(target), dir=target.parent))
    os.chmod(tmp, DIR_MODE)  # mkdtemp makes it 0700
    try:
        for sub in ("imagesTr", "labelsTr", "imagesTs"):
            (tmp / sub).mkdir()
        for case in (*train, *val):
            image = case.read_image()
            _write_image(case, tmp / "imagesTr", copy, image)
            _write_label(case, image, rater, tmp / "labelsTr" / f"{case.id}{FILE_ENDING}")
        for case in test:
            _write_image(case, tmp / "imagesTs", copy)
        write_json(tmp / "dataset.json", {
            "channel_names": CHANNEL_NAMES, "labels": LABELS, "numTraining": len(train) + len(val),
            "file_ending": FILE_ENDING, "name": dataset.name,
            "description": f"exported by hepaseg from {Path(manifest).resolve()}; labels from rater {rater}"})
        write_json(tmp / "splits_final.json", [{"train": [c.id for c in train], "val": [c.id for c in val]}])
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return NnunetExport(target, dataset_id, tuple(c.id for c in train), tuple(c.id for c in val),
                        tuple(c.id for c in test), rater, not copy)


def _write_image(case: Case, folder: Path, copy: bool, image: Volume | None = None) -> None:
    """``<case>_0000.nii.gz``: the source itself (link or copy) if it is ``.nii.gz``, else converted
    (from ``image``, the case's image if already read)."""
    dest = folder / f"{case.id}_0000{FILE_ENDING}"
    source = case.image.resolve()
    if source.is_file() and volume_suffix(source) == FILE_ENDING:
        if copy:
            shutil.copyfile(source, dest)
        else:
            dest.symlink_to(source)
        return
    image = image if image is not None else case.read_image()
    write_volume(np.asarray(image.array), image.affine, dest)


def _write_label(case: Case, image: Volume, rater: str, dest: Path) -> None:
    """Liver 1, tumour 2 (over the liver) on the grid of the case's ``image``."""
    liver, tumour = (on_grid(image, read_volume(p)) for p in (case.liver, case.tumor[rater]))
    label = np.where(np.asarray(liver.array) > 0, LABELS["liver"], LABELS["background"]).astype(np.uint8)
    label[np.asarray(tumour.array) > 0] = TUMOUR_LABEL
    write_volume(label, image.affine, dest)
