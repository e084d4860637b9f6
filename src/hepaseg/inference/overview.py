"""A prediction's overview picture (``overview.png``): the case at a glance, without a viewer.

One panel per lesion, for the ``MAX_LESIONS`` largest (lesions.csv's numbering, largest first): the
axial slice through the lesion's centre (its ``centroid_ras_*``), the lesion's number beside it.
Without a lesion, one panel: the slice through the liver's centre, titled "no lesion found".

- Image in grey, display window from the liver's intensity percentiles ``WINDOW_PERCENTILES``,
  widened by ``WINDOW_WIDEN`` of that range below and above (HBP lesions are darker than the liver).
- Liver contour in ``LIVER_COLOUR``, tumour contour in ``TUMOUR_COLOUR`` (legend at the bottom).
- Radiological orientation (``io.axial.AxialView``): patient right on the image's left (marked
  "R"), anterior at the top; every panel cropped to the liver's in-plane box over all slices plus
  ``MARGIN_MM``.
- Titles: the case id with its lesion count and total volume; per panel the lesion's number,
  volume (mL), longest in-plane diameter (mm) and slice (the file's voxel axis and index, to find
  it in a viewer).
- ``WIDTH_PX`` pixels wide, RGB; a noisy image that would exceed ``MAX_BYTES`` is saved with a
  palette of grey levels and the contour colours.

matplotlib (Agg canvas, no pyplot state) is imported only when a picture is drawn.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..io.atomic import write_bytes
from ..io.axial import AxialView, plane_box
from ..io.volumes import Volume
from .lesion_table import Lesion

MAX_LESIONS = 3
WIDTH_PX = 900
DPI = 100
MARGIN_MM = 10.0
WINDOW_PERCENTILES = (1.0, 99.0)
WINDOW_WIDEN = (0.5, 0.1)
LIVER_COLOUR = "#00c8ff"
TUMOUR_COLOUR = "#ff2020"
MAX_HEIGHT_IN = 9.0
MAX_BYTES = 200_000
_DRAWING = threading.Lock()  # batch writers run in threads; one figure is drawn at a time


@dataclass(frozen=True)
class Panel:
    """One slice of the picture: canonical slice index ``k``, its title, and the lesion it shows
    (None: the liver's centre) with the lesion's canonical in-plane centre (x, y)."""

    k: int
    title: str
    lesion: Lesion | None = None
    centre: tuple[float, float] | None = None


def display_window(image: NDArray, liver: NDArray[np.bool_]) -> tuple[float, float]:
    """(low, high) grey levels: the liver's percentiles, widened (see the module docstring)."""
    values = np.asarray(image, dtype=np.float64)[np.asarray(liver, bool)]
    if values.size == 0:
        values = np.asarray(image, dtype=np.float64).ravel()
    lo, hi = np.percentile(values, WINDOW_PERCENTILES)
    width = max(float(hi - lo), 1e-6)
    return float(lo - WINDOW_WIDEN[0] * width), float(hi + WINDOW_WIDEN[1] * width)


def choose_panels(view: AxialView, affine: NDArray, liver: NDArray[np.bool_], lesions: Sequence[Lesion]) -> list[Panel]:
    """The panels of a case (see the module docstring); ``liver`` on the canonical grid."""
    n_slices = liver.shape[2]
    to_index = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    panels = []
    for lesion in list(lesions)[:MAX_LESIONS]:
        ras = np.array([lesion.centroid_ras_x_mm, lesion.centroid_ras_y_mm, lesion.centroid_ras_z_mm, 1.0])
        x, y, z = view.canonical_index((to_index @ ras)[:3])
        k = int(np.clip(round(z), 0, n_slices - 1))
        axis, index = view.file_slice(k)
        title = (f"lesion {lesion.lesion}: {lesion.volume_ml:.2f} mL, {lesion.diameter_mm:.0f} mm\n"
                 f"slice {'ijk'[axis]} = {index}")
        panels.append(Panel(k, title, lesion, (float(x), float(y))))
    if not panels:
        counts = np.count_nonzero(liver, axis=(0, 1))
        k = int(round(float(np.average(np.arange(n_slices), weights=counts)))) if counts.any() else n_slices // 2
        axis, index = view.file_slice(k)
        panels.append(Panel(k, f"no lesion found\nslice through the liver's centre, {'ijk'[axis]} = {index}"))
    return panels


def overview_figure(case_id: str, image: Volume, liver: NDArray, tumour: NDArray, lesions: Sequence[Lesion]):
    """The overview picture of one case as a matplotlib ``Figure`` (Agg canvas; ``figure_png`` renders it).

    Args:
        image: the case's image (its affine decides the orientation).
        liver, tumour: (i, j, k) masks on the image's grid.
        lesions: the case's rows of lesions.csv (from ``lesion_table.lesions`` on ``tumour``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    view = AxialView.of(image)
    pixels = view.canonical(np.asarray(image.array, dtype=np.float32))
    masks = {LIVER_COLOUR: view.canonical(np.asarray(liver) > 0), TUMOUR_COLOUR: view.canonical(np.asarray(tumour) > 0)}
    margin = int(np.ceil(MARGIN_MM / max(float(view.spacing[0]), float(view.spacing[1]))))
    area = masks[LIVER_COLOUR].any(axis=2) | masks[TUMOUR_COLOUR].any(axis=2)
    box = tuple(slice(*s.indices(n)[:2]) for s, n in zip(plane_box(area, margin), pixels.shape[:2]))
    panels = choose_panels(view, image.affine, masks[LIVER_COLOUR], lesions)
    window = display_window(pixels, masks[LIVER_COLOUR])

    nx, ny = box[0].stop - box[0].start, box[1].stop - box[1].start
    ratio = ny * float(view.spacing[1]) / (nx * float(view.spacing[0]))  # displayed height / width
    width_in = WIDTH_PX / DPI
    # a fixed layout (constrained layout doubles the drawing time): headline and panel titles on top,
    # the legend at the bottom, the panels side by side, each image as large as its axes allow
    top_in, bottom_in, gap_in = 0.75, 0.3, 0.08
    panel_in = width_in / len(panels) - gap_in
    height_in = min(panel_in * ratio + top_in + bottom_in, MAX_HEIGHT_IN)
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, facecolor="black")
    FigureCanvasAgg(fig)
    drawn = set()
    axes = [fig.add_axes(((i * (panel_in + gap_in) + gap_in / 2) / width_in, bottom_in / height_in,
                          panel_in / width_in, 1 - (top_in + bottom_in) / height_in)) for i in range(len(panels))]
    for ax, panel in zip(axes, panels):
        ax.imshow(view.display(pixels[:, :, panel.k], box), cmap="gray", vmin=window[0], vmax=window[1],
                  aspect=view.aspect, interpolation="nearest")
        for colour, mask in masks.items():
            plane = view.display(mask[:, :, panel.k], box)
            if plane.any() and not plane.all():
                ax.contour(plane.astype(np.float32), levels=[0.5], colors=[colour], linewidths=1.5)
                drawn.add(colour)
        if panel.centre is not None and panel.lesion is not None:
            # its number up-left of the lesion; display rows run anterior first, columns patient right first
            row, col = box[1].stop - 1 - panel.centre[1], box[0].stop - 1 - panel.centre[0]
            offset = panel.lesion.diameter_mm / 2 / float(view.spacing[0]) + 2
            ax.text(col - offset, row - offset, str(panel.lesion.lesion), color=TUMOUR_COLOUR, fontsize=10,
                    fontweight="bold", ha="right", va="bottom")
        ax.text(0.01, 0.5, "R", transform=ax.transAxes, color="white", fontsize=9, va="center")
        ax.text(0.99, 0.5, "L", transform=ax.transAxes, color="white", fontsize=9, va="center", ha="right")
        ax.set_title(panel.title, color="white", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(_headline(case_id, lesions, len(panels)), color="white", fontsize=11, y=1 - 0.06 / height_in,
                 va="top")
    handles = [Line2D([], [], color=c, label=name) for c, name in ((LIVER_COLOUR, "liver"), (TUMOUR_COLOUR, "tumour"))
               if c in drawn]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncols=2, fontsize=8, labelcolor="white", frameon=False,
                   borderaxespad=0.1)
    return fig


def _headline(case_id: str, lesions: Sequence[Lesion], shown: int) -> str:
    if not lesions:
        return f"{case_id}: no lesion found"
    total = sum(lesion.volume_ml for lesion in lesions)
    return (f"{case_id}: {len(lesions)} lesion{'s' if len(lesions) > 1 else ''}, {total:.2f} mL in all"
            + (f" (the {shown} largest shown)" if len(lesions) > shown else ""))


def figure_png(fig) -> bytes:
    """A figure's RGB pixels as an optimised PNG; above ``MAX_BYTES`` (a very noisy image) with a
    palette of 254 grey levels and the two contour colours."""
    from matplotlib.colors import to_rgb
    from PIL import Image

    fig.canvas.draw()
    picture = Image.fromarray(np.ascontiguousarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]))
    buffer = io.BytesIO()
    picture.save(buffer, format="png", optimize=True)
    if buffer.tell() > MAX_BYTES:
        greys = np.repeat(np.linspace(0, 255, 254).round().astype(np.uint8)[:, None], 3, axis=1)
        colours = np.array([to_rgb(c) for c in (LIVER_COLOUR, TUMOUR_COLOUR)]) * 255
        palette = Image.new("P", (1, 1))
        palette.putpalette(np.concatenate([greys, colours.round().astype(np.uint8)]).ravel().tolist())
        buffer = io.BytesIO()
        picture.quantize(palette=palette, dither=Image.Dither.NONE).save(buffer, format="png", optimize=True)
    return buffer.getvalue()


def overview_png(case_id: str, image: Volume, liver: NDArray, tumour: NDArray, lesions: Sequence[Lesion]) -> bytes:
    """``overview_figure`` as PNG bytes."""
    with _DRAWING:
        return figure_png(overview_figure(case_id, image, liver, tumour, lesions))


def write_overview(path: str | Path, case_id: str, image: Volume, liver: NDArray, tumour: NDArray,
                   lesions: Sequence[Lesion]) -> Path:
    """``overview_png`` written to ``path`` atomically."""
    write_bytes(path, overview_png(case_id, image, liver, tumour, lesions))
    return Path(path)
