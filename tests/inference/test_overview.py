"""The overview picture (``inference.overview``) of a scene built in world coordinates: four disc
lesions on known slices, the largest to the patient's right and anterior of the liver's centre,
the second to the left and posterior. Where each lesion must appear is worked out from its RAS
position (right -> image left, anterior -> image top), not from the module's own orientation code;
the PNG's pixels are read back inside each panel's axes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from hepaseg.inference import overview
from hepaseg.inference.lesion_table import lesions
from hepaseg.inference.overview import LIVER_COLOUR, TUMOUR_COLOUR, WIDTH_PX, display_window, figure_png
from hepaseg.io.volumes import Volume

from .predict_cases import make_affine

SHAPE = (48, 44, 9)
LIVER_CENTRE = np.array([24.0, 22.0, 4.0])
# (RAS offset from the liver's centre in mm (x, y), radius mm, file slice k), largest first
LESIONS = (((8.0, 6.0), 4.5, 3), ((-8.0, -6.0), 3.2, 5), ((3.0, -8.0), 2.2, 2), ((-6.0, 7.0), 1.4, 6))


def _scene():
    affine = make_affine(spacing=(1.25, 1.1, 3.0), angle=0.2, flips=(-1, 1, -1))
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), axis=-1).astype(float)
    ras = ijk @ affine[:3, :3].T + affine[:3, 3]
    centre = affine[:3, :3] @ LIVER_CENTRE + affine[:3, 3]
    liver = (((ijk - LIVER_CENTRE) / [20.0, 18.0, 3.6]) ** 2).sum(-1) <= 1
    tumour = np.zeros(SHAPE, bool)
    for (dx, dy), radius, k in LESIONS:
        disc = np.hypot(ras[..., 0] - centre[0] - dx, ras[..., 1] - centre[1] - dy) <= radius
        tumour |= disc & (np.arange(SHAPE[2]) == k)
    assert not (tumour & ~liver).any()
    rng = np.random.default_rng(0)
    image = np.where(liver, 1000.0, 300.0) - 600.0 * tumour + rng.normal(0, 30, SHAPE)
    return Volume(image.astype(np.float32), affine), liver, tumour


def _pixels(png: bytes) -> np.ndarray:
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG" and picture.size[0] == WIDTH_PX
    return np.asarray(picture.convert("RGB")).astype(int)


def _near(rgb: np.ndarray, colour: str, tol: int = 50) -> np.ndarray:
    return np.abs(rgb - np.array(to_rgb(colour)) * 255).max(axis=-1) <= tol


def _panels(fig, rgb):
    """The PNG's pixels inside each image axes (the axes' window extents; origin at the bottom)."""
    height = rgb.shape[0]
    for ax in fig.axes:
        if ax.images:
            box = ax.get_window_extent()
            yield ax, rgb[int(np.ceil(height - box.y1)):int(height - box.y0), int(np.ceil(box.x0)):int(box.x1)]


def test_the_largest_lesions_appear_on_their_slices_in_radiological_orientation():
    image, liver, tumour = _scene()
    rows = lesions("p001", tumour, None, image.affine)
    assert [r.lesion for r in rows] == [1, 2, 3, 4] and rows[0].voxels > rows[1].voxels > rows[2].voxels
    fig = overview.overview_figure("p001", image, liver, tumour, rows)
    png = figure_png(fig)
    assert len(png) <= overview.MAX_BYTES
    rgb = _pixels(png)
    panels = list(_panels(fig, rgb))
    assert len(panels) == 3, "the three largest of four lesions"
    assert "p001: 4 lesions" in fig.get_suptitle() and "the 3 largest shown" in fig.get_suptitle()
    for (ax, pixels), row, (_, _, k) in zip(panels, rows, LESIONS):
        assert ax.get_title().startswith(f"lesion {row.lesion}: {row.volume_ml:.2f} mL")
        assert ax.get_title().endswith(f"slice k = {k}")  # the slice the lesion was drawn on
        red, cyan = np.argwhere(_near(pixels, TUMOUR_COLOUR)), np.argwhere(_near(pixels, LIVER_COLOUR))
        assert len(red) > 20 and len(cyan) > 100
        assert not _near(pixels, LIVER_COLOUR)[_near(pixels, TUMOUR_COLOUR)].any()
        liver_middle = (cyan.min(0) + cyan.max(0)) / 2
        shift = np.median(red, axis=0) - liver_middle  # (down, right) in pixels
        dx, dy = LESIONS[row.lesion - 1][0]
        assert np.sign(shift[1]) == -np.sign(dx), f"lesion {row.lesion}: patient right is on the image's left"
        assert np.sign(shift[0]) == -np.sign(dy), f"lesion {row.lesion}: anterior is at the top"
    # only the largest lesion's slice shows the largest lesion: its panel has the most tumour colour
    counts = [np.count_nonzero(_near(p, TUMOUR_COLOUR)) for _, p in panels]
    assert counts[0] == max(counts)


def test_without_a_lesion_the_liver_centre_is_shown_and_no_tumour_colour():
    image, liver, _ = _scene()
    fig = overview.overview_figure("p002", image, liver, np.zeros(SHAPE, bool), [])
    rgb = _pixels(figure_png(fig))
    ((ax, pixels),) = list(_panels(fig, rgb))
    assert fig.get_suptitle() == "p002: no lesion found"
    assert ax.get_title().startswith("no lesion found") and ax.get_title().endswith("k = 4")
    assert _near(pixels, LIVER_COLOUR).sum() > 100
    assert not _near(rgb, TUMOUR_COLOUR).any()


def test_display_window_spans_the_liver_and_the_darker_lesions():
    image, liver, tumour = _scene()
    lo, hi = display_window(image.array, liver)
    liver_values = image.array[liver & ~tumour]
    assert lo < image.array[tumour].mean() < np.percentile(liver_values, 5) and hi > np.percentile(liver_values, 99)
    assert hi < image.array.max() + 100 and lo > image.array.min() - 1000
    assert display_window(np.full(SHAPE, 7.0), liver) == pytest.approx((7.0, 7.0), abs=1e-5)
