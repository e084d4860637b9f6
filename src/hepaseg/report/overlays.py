"""Example slices for Fig. 3: which cases, which slice, and the 2D arrays to draw.

Cases: the top, the median and the bottom of the per-case mean Dice (over raters) of one
algorithm. Slice: the axial slice where the masks (all raters and algorithms) disagree most, i.e.
with the most voxels inside some but not all masks; without any disagreement, the slice with the most
tumour; without tumour, the middle slice. Arrays are reoriented to the closest canonical RAS+
grid (permutation / flips only) and shown in radiological convention: patient right on the
left, anterior at the top (``io.axial.AxialView``). The view is cropped to the liver and the
masks on that slice (margin ``MARGIN`` voxels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..data.manifest import Case
from ..evaluation.results import Results
from ..io.axial import AxialView, plane_box
from ..io.geometry import on_grid
from ..io.volumes import read_volume

MARGIN = 12


@dataclass(frozen=True, eq=False)
class OverlayPanel:
    """One example slice, display-ready (rows: posterior-to-anterior reversed, columns: right to left).

    Attributes:
        case: case id.
        title: e.g. ``top: mean Dice 0.912``.
        slice_index: the slice's index along the file's voxel axis ``slice_axis``.
        slice_axis: 0, 1 or 2 (i, j, k) of the file.
        image: (rows, cols) intensities.
        masks: rater or algorithm name -> (rows, cols) bool.
        aspect: pixel height / width (mm / mm), for ``imshow``.
    """

    case: str
    title: str
    slice_index: int
    slice_axis: int
    image: NDArray[np.float32]
    masks: dict[str, NDArray[np.bool_]]
    aspect: float


def select_cases(results: Results, algorithm: str) -> list[tuple[str, str]]:
    """``(case id, title)`` for the top, median and bottom mean Dice of ``algorithm`` (distinct cases)."""
    mean_dice = results.values("scores", "mean_dice", algorithm)
    order = [i for i in np.argsort(-mean_dice, kind="stable") if not np.isnan(mean_dice[i])]
    if not order:
        return []
    picks = [("top", order[0]), ("median", order[(len(order) - 1) // 2]), ("bottom", order[-1])]
    chosen, seen = [], set()
    for name, index in picks:
        if index not in seen:
            seen.add(index)
            chosen.append((results.info.cases[index], f"{name}: mean Dice {mean_dice[index]:.3f}"))
    return chosen


def disagreement_slice(masks: Sequence[NDArray[np.bool_]]) -> int:
    """The index along axis 2 with the most voxels inside some but not all masks."""
    count = np.zeros(masks[0].shape, dtype=np.uint8)
    for mask in masks:
        count += mask
    disagree = np.count_nonzero((count > 0) & (count < len(masks)), axis=(0, 1))
    if disagree.any():
        return int(np.argmax(disagree))
    tumour = np.count_nonzero(count > 0, axis=(0, 1))
    return int(np.argmax(tumour)) if tumour.any() else masks[0].shape[2] // 2


def load_panel(case: Case, predictions: Mapping[str, Path], raters: Sequence[str], title: str) -> OverlayPanel:
    """Read one case's image, liver, rater and predicted masks and cut out its example slice."""
    image = case.read_image()
    view = AxialView.of(image)

    def canonical(path: Path) -> NDArray:
        return view.canonical(on_grid(image, read_volume(path)).array)

    names = [*raters, *predictions]
    paths = [case.tumor[r] for r in raters] + list(predictions.values())
    masks = [canonical(p) != 0 for p in paths]
    k = disagreement_slice(masks)
    liver = canonical(case.liver)[:, :, k] != 0
    plane = [m[:, :, k] for m in masks]
    box = plane_box(np.logical_or.reduce([liver, *plane]), MARGIN)
    pixels = view.canonical(np.asarray(image.array, dtype=np.float32))[:, :, k]
    axis, index = view.file_slice(k)
    return OverlayPanel(case=case.id, title=title, slice_index=index, slice_axis=axis,
                        image=view.display(pixels, box), masks={n: view.display(m, box) for n, m in zip(names, plane)},
                        aspect=view.aspect)
