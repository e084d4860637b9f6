"""``hepaseg export dicom``: the DICOM results of any tumour mask (a rater's contour, a prediction
corrected in 3D Slicer) on a DICOM series, as ``hepaseg predict`` writes them for its own.

The masks may be in any axis order of the image's grid that ``hepaseg check`` accepts
(``io.geometry.on_grid``); the lesions are numbered as ``lesions.csv`` numbers them (written beside
the objects), so the objects and the table name the same lesion alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..evaluation.inputs import read_mask
from ..inference.dicom_outputs import build_objects, make_findings, write_objects
from ..inference.lesion_table import lesions, write_csv
from ..inference.outputs import LESIONS, OVERVIEW_NAME, check_writable
from ..io.atomic import write_bytes
from ..io.dicom_results import OBJECTS
from ..io.geometry import on_grid
from ..io.lock import folder_lock
from ..io.volumes import Volume, read_volume


def export_dicom(image: str | Path, tumour: str | Path, out: str | Path, liver: str | Path | None = None,
                 objects: Sequence[str] = OBJECTS, series: str | None = None, connectivity: int = 26,
                 left_out: Callable[[str], None] | None = None) -> list[Path]:
    """Write the DICOM objects ``objects`` of ``tumour`` (and ``liver``) on the series ``image`` into ``out``,
    with ``lesions.csv`` (and ``overview.png`` where the Secondary Capture is asked for).

    Args:
        image: a DICOM series folder (``series``: its Series Instance UID where it holds several).
        tumour, liver: binary masks (0 / 1) on the image's grid, in any axis order of it; without a
            liver the SEG's liver segment is empty and the SR's liver volume 0.
        left_out: gets one line per object the series cannot give (the others are written).

    Returns:
        The files written.

    Raises:
        InputError: a non-DICOM image, a mask that is not binary or on another grid, an output
            folder that cannot be written; nothing is written then.
    """
    out = Path(out)
    check_writable(out, is_dir=True)
    if not Path(image).is_dir():
        raise InputError(image, "--image must be a DICOM series folder (the objects reference its instances)")
    volume = read_volume(image, series)
    tumour_mask = _mask_on(volume, Path(tumour))
    liver_mask = np.zeros(volume.shape, bool) if liver is None else _mask_on(volume, Path(liver))
    table = lesions(Path(tumour).name, tumour_mask, None, volume.affine, connectivity)
    findings = make_findings(volume, tumour_mask, liver_mask, table, connectivity)
    png = None
    if "sc" in objects:
        from ..inference.overview import overview_png

        png = overview_png(Path(tumour).name, volume, liver_mask, tumour_mask, table)
    built = build_objects(findings, objects, png, left_out)  # everything built before anything is written
    with folder_lock(out):
        write_csv(table, out / LESIONS)
        written = [out / LESIONS]
        if png is not None:
            write_bytes(out / OVERVIEW_NAME, png)
            written.append(out / OVERVIEW_NAME)
        return written + write_objects(built, out)


def _mask_on(image: Volume, path: Path) -> np.ndarray:
    """The binary mask in ``path`` on ``image``'s voxels (reordered from another axis order of its grid)."""
    mask, _ = read_mask(path)
    return np.asarray(on_grid(image, mask).array) > 0

