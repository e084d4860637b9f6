"""The liver model at prediction time: a liver mask for an image that has none, and its plausibility.

The liver model is a model folder like the tumour model's (``config.preprocess.target == "liver"``),
kept as ``<model>/liver/``. ``predict_liver`` runs it on the whole field of view of its coarse grid:
body-percentile normalisation (no liver needed), tiled network, threshold, largest component, holes
filled. The way back to the original grid interpolates the probability near the kept component
linearly and thresholds it there (smoother than a coarse mask), then keeps the largest component
and fills its holes again on the original grid.

``extend_liver_by_tumours`` then lets the tumour model's own output correct the predicted liver: a
tumour at the liver's edge (dark, so the liver model tends to leave it out) is kept whole and added to
the liver (``InferConfig.auto_liver_margin_mm``).

``liver_problem`` says why a liver mask is implausible (too small for a liver the field of view does
not cut, or filling or framing most of the field of view); a case with such a liver gets no tumour mask.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ..config import Config
from ..data.preprocess import prepare_volume
from ..io.geometry import to_original_in_box, voxel_volume_ml
from ..io.volumes import Affine, Volume
from .postprocess import fill_holes, largest_component, postprocess
from .tiling import liver_box

MIN_LIVER_ML = 300.0  # an adult liver is 1-2 L; below this the model missed most of it
MIN_CUT_LIVER_ML = 30.0  # ... unless the field of view cuts it: a few slices of its tip or dome
MAX_FIELD_FRACTION = 0.5  # a "liver" filling more of the field of view than this is not one
MAX_EDGES_TOUCHED = 2  # ... nor one touching 3 or 4 of the field's in-plane edges


class VolumePredictor(Protocol):
    config: Config

    def probability(self, image: NDArray, region: NDArray) -> NDArray[np.float32]: ...


def predict_liver(model: VolumePredictor, image: Volume) -> NDArray[np.bool_]:
    """The liver mask of ``image`` by the liver model ``model`` (a ``Predictor`` of a liver model).

    Returns:
        (i, j, k) bool mask on ``image``'s grid; all False when the model finds no liver.
    """
    config = model.config
    prepared, _, grid, _ = prepare_volume(image, None, config.preprocess)
    field = np.ones(prepared.shape, dtype=np.uint8)
    prob = model.probability(prepared, field)
    coarse = postprocess(prob, field, config.infer, config.preprocess.inplane_spacing_mm) > 0
    if not coarse.any():
        return np.zeros(image.shape, dtype=bool)
    from scipy import ndimage

    near = ndimage.binary_dilation(coarse, iterations=1)
    box = liver_box(near)
    mask = to_original_in_box(np.where(near, prob, np.float32(0)), grid, box) > config.infer.threshold
    found = liver_box(mask)
    if found is None:
        return np.zeros(image.shape, dtype=bool)
    region = tuple(slice(max(0, int(lo) - 1), int(hi) + 1) for lo, hi in zip(*found))  # + a background rim
    part = mask[region]
    if config.infer.largest_component:
        part = largest_component(part)
    if config.infer.fill_holes:
        part = fill_holes(part)
    out = np.zeros(image.shape, dtype=bool)
    out[region] = part > 0
    return out


def extend_liver_by_tumours(probability: NDArray, liver: NDArray, region: NDArray, level: float = 0.5,
                            connectivity: int = 26) -> NDArray[np.uint8]:
    """The liver plus every tumour component that touches it.

    A component is a ``connectivity``-connected part of ``probability > level`` inside ``region``
    (the liver dilated: where the tumour model predicted); it is added whole when one of its voxels
    lies in ``liver`` or next to it (26-neighbourhood: the two models' partial-volume boundaries can
    leave a one-voxel gap between a lesion and the predicted liver), and left out otherwise.

    Args:
        probability: (x, y, z) tumour probability on the prepared grid.
        liver, region: (x, y, z) masks on the same grid; ``region`` should contain ``liver``.

    Returns:
        (x, y, z) uint8 mask: liver | kept components.
    """
    import cc3d
    from scipy import ndimage

    out = (np.asarray(liver) > 0).astype(np.uint8)
    found = liver_box(region)
    if found is None:
        return out
    box = tuple(slice(max(0, int(lo) - 1), int(hi) + 1) for lo, hi in zip(*found))  # nothing outside can join
    inside = out[box] > 0
    candidate = np.ascontiguousarray((np.asarray(probability)[box] > level) & (np.asarray(region)[box] > 0))
    labels = cc3d.connected_components(candidate, connectivity=connectivity)
    near = ndimage.binary_dilation(inside, structure=np.ones((3, 3, 3), bool))
    touching = np.unique(labels[near & (labels > 0)])
    out[box] |= np.isin(labels, touching[touching > 0])
    return out


def liver_problem(mask: NDArray, affine: Affine) -> str | None:
    """Why a (i, j, k) liver mask is implausible, or None: no liver; under ``MIN_LIVER_ML`` (under
    ``MIN_CUT_LIVER_ML`` for a liver the field of view cuts: one touching the first or last slice along
    the patient's z axis, whose volume says little); over ``MAX_FIELD_FRACTION`` of the field of view;
    or touching more than ``MAX_EDGES_TOUCHED`` of the four in-plane edges of the field."""
    from nibabel.orientations import io_orientation

    mask = np.asarray(mask) > 0
    if not mask.any():
        return "no liver found"
    axial = int(np.flatnonzero(io_orientation(np.asarray(affine, dtype=np.float64))[:, 0] == 2)[0])
    cut = bool(mask.take(0, axis=axial).any() or mask.take(-1, axis=axial).any())
    least = MIN_CUT_LIVER_ML if cut else MIN_LIVER_ML
    volume = float(mask.sum()) * voxel_volume_ml(affine)
    if volume < least:
        where = " (cut by the field of view)" if cut else ""
        return f"implausible liver{where}: {volume:.0f} mL (< {least:.0f} mL)"
    if mask.mean() > MAX_FIELD_FRACTION:
        return f"implausible liver: it fills {mask.mean() * 100:.0f} % of the field of view"
    in_plane = [axis for axis in range(3) if axis != axial]
    edges = sum(bool(mask.take(index, axis=axis).any()) for axis in in_plane for index in (0, -1))
    if edges > MAX_EDGES_TOUCHED:
        return f"implausible liver: it touches {edges} of the 4 in-plane edges of the field of view"
    return None
