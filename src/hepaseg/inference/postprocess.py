"""Post-processing of a predicted tumour probability (METHOD.md section 7): pure array functions.

All arrays live on the prepared grid, axes (x, y, z) with z the slice axis; every morphological
step works slice by slice in-plane (structuring elements of shape (n, n, 1)), never across slices.
The array functions take kernel sides in voxels; ``postprocess`` takes them in mm from
``InferConfig`` and converts them with the prepared grid's in-plane spacing (``kernel_voxels``, the
one conversion). Masks are returned as uint8 0/1. Each step can be switched off
through ``InferConfig`` (``restrict_to_liver``, ``border_opening``). The liver model's two steps,
``largest_component`` and ``fill_holes``, are 3D and off for the tumour model.

Voxels outside the array count as background for erosions: a liver touching the array edge has
a border there too.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..config import InferConfig

Probability = NDArray[np.float32]  # (x, y, z), values in [0, 1]
Mask = NDArray[np.uint8]  # (x, y, z), values 0 / 1


def _inplane(size: int) -> NDArray[np.bool_]:
    """An in-plane square structuring element of ``size`` x ``size`` x 1 voxels."""
    if size < 1:
        raise ValueError(f"kernel size must be >= 1, got {size}")
    return np.ones((size, size, 1), dtype=bool)


def kernel_voxels(size_mm: float, spacing_mm: float) -> int:
    """The side, in voxels of a grid of ``spacing_mm``, of an in-plane square ``size_mm`` wide: the nearest
    whole number (halves up), at least 1."""
    if size_mm <= 0 or spacing_mm <= 0:
        raise ValueError(f"kernel size and spacing must be > 0 mm, got {size_mm} and {spacing_mm}")
    return max(1, int(np.floor(size_mm / spacing_mm + 0.5)))


def restrict_to_liver(probability: NDArray, liver: NDArray) -> Probability:
    """Zero the probability outside the liver mask; returns a new float32 array."""
    return np.where(np.asarray(liver) > 0, np.asarray(probability, dtype=np.float32), np.float32(0))


def threshold(probability: NDArray, level: float = 0.5) -> Mask:
    """Tumour where ``probability > level`` (as training's validation thresholds; 0.5 itself is not tumour)."""
    return (np.asarray(probability) > level).astype(np.uint8)


def liver_border(liver: NDArray, erosion_size: int = 7) -> NDArray[np.bool_]:
    """The liver's border band, slice by slice: liver minus liver eroded by an ``erosion_size``² square.

    With the default 7 x 7 kernel on the 1 mm grid the band is 3 voxels (3 mm) wide.
    """
    from scipy import ndimage

    liver = np.asarray(liver) > 0
    eroded = ndimage.binary_erosion(liver, structure=_inplane(erosion_size), border_value=0)
    return liver & ~eroded


def border_opening(mask: NDArray, liver: NDArray, erosion_size: int = 7, opening_size: int = 3) -> Mask:
    """Replace the tumour mask by its in-plane opening inside the liver border band only.

    The opening (erosion then dilation with an ``opening_size``² square, per slice) is computed
    on the whole mask, so a tumour reaching into the band keeps the parts that are thick enough;
    thin structures (narrower than ``opening_size`` voxels) inside the band vanish. Outside the
    band the mask is returned unchanged.
    """
    from scipy import ndimage

    mask = np.asarray(mask) > 0
    border = liver_border(liver, erosion_size)
    opened = ndimage.binary_opening(mask, structure=_inplane(opening_size), border_value=0)
    return np.where(border, opened, mask).astype(np.uint8)


def largest_component(mask: NDArray) -> Mask:
    """The largest 26-connected component of ``mask`` (all zeros if it is empty); ties: the first label."""
    import cc3d

    labels = cc3d.connected_components(np.ascontiguousarray(np.asarray(mask) > 0), connectivity=26)
    sizes = np.bincount(labels.ravel())
    if len(sizes) < 2:
        return np.zeros(np.shape(mask), dtype=np.uint8)
    return (labels == 1 + int(np.argmax(sizes[1:]))).astype(np.uint8)


def fill_holes(mask: NDArray) -> Mask:
    """``mask`` with every background region not connected to the array's border filled (3D)."""
    from scipy import ndimage

    return ndimage.binary_fill_holes(np.asarray(mask) > 0).astype(np.uint8)


def postprocess(probability: NDArray, liver: NDArray, config: InferConfig, inplane_spacing_mm: float) -> Mask:
    """The full chain on the prepared grid: liver restriction, threshold, border opening, then
    (liver model) largest component and hole filling.

    Args:
        probability: (x, y, z) tumour probability from the network.
        liver: (x, y, z) liver mask, same grid.
        config: which steps run and their sizes (kernels in mm).
        inplane_spacing_mm: the prepared grid's in-plane voxel size (``PreprocessConfig.inplane_spacing_mm``).

    Returns:
        (x, y, z) uint8 tumour mask.
    """
    if probability.shape != liver.shape:
        raise ValueError(f"probability {probability.shape} and liver {liver.shape} differ in shape")
    if config.restrict_to_liver:
        probability = restrict_to_liver(probability, liver)
    mask = threshold(probability, config.threshold)
    if config.border_opening:
        mask = border_opening(mask, liver, kernel_voxels(config.border_erosion_mm, inplane_spacing_mm),
                              kernel_voxels(config.opening_mm, inplane_spacing_mm))
    if config.largest_component:
        mask = largest_component(mask)
    if config.fill_holes:
        mask = fill_holes(mask)
    return mask
