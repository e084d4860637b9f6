"""``hepaseg liver``: the liver mask of one image file or DICOM series, by a liver model.

The model is a liver model folder (``hepaseg train-liver``) or, by default, the one shipped in the
package (``model.folder.shipped_liver_dir``). The mask is written atomically on the image's grid
(NIfTI, NRRD or MHA by the output's suffix) only when it is plausible (``liver.liver_problem``);
otherwise nothing is written and the reason is the error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.geometry import voxel_volume_ml
from ..io.volumes import read_volume, write_mask
from .liver import liver_problem, predict_liver
from .predictor import Predictor


@dataclass(frozen=True)
class LiverResult:
    """What ``write_liver`` did: the mask file, the liver's volume (mL) and the seconds it took."""

    path: Path
    volume_ml: float
    seconds: float


def write_liver(image_path: str | Path, out: str | Path, model: str | Path | None = None, device: str = "auto",
                series: str | None = None) -> LiverResult:
    """Segment the liver of ``image_path`` with ``model`` (None: the shipped one) into ``out``.

    Raises:
        InputError: unreadable image, no model, an output path of unknown format, or an implausible
            liver (then no file is written).
    """
    started = time.perf_counter()
    predictor = Predictor.load_liver(model, device)
    image = read_volume(image_path, series)
    mask = predict_liver(predictor, image)
    problem = liver_problem(mask, image.affine)
    if problem is not None:
        raise InputError(image_path, f"liver model: {problem}; no mask written")
    path = write_mask(mask.astype(np.uint8), image, out)
    return LiverResult(Path(path), float(mask.sum()) * voxel_volume_ml(image.affine), time.perf_counter() - started)
