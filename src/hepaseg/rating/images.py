"""What the viewer draws, prepared once by ``rate init``: per case an image stack, per contour a mask.

Conventions:
- Volumes are turned to the closest canonical (RAS+) axes, cropped to the liver's box plus
  ``MARGIN_VOXELS`` in-plane and ``MARGIN_SLICES`` slices, and stored as a stack of axial slices
  ``(slice, row, column)``, C order: rows anterior first, columns patient's right first (the
  radiological view, as in ``report.overlays``); slice 0 is the most inferior.
- The image is ``uint16`` little-endian: from the crop's 0.5th percentile to the 99.5th percentile
  inside the liver mapped to 0 ... ``IMAGE_MAX`` (clipped), so the viewer's window/level works on
  one fixed range and the default window shows the liver and its surroundings.
- A contour is its binary mask on the same crop, bit-packed (``numpy.packbits``, most significant
  bit first). Every contour of a case has exactly the same byte length, whatever the algorithm.
- ``lesion_slices``: for the ``MAX_LESIONS`` largest connected lesions of a contour (26-connected,
  largest first), the slice where that lesion has the most voxels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nibabel.orientations import apply_orientation
from numpy.typing import NDArray
from scipy import ndimage

from ..io.geometry import canonical_orientation, on_grid
from ..io.volumes import Volume, read_volume

MARGIN_VOXELS = 12
MARGIN_SLICES = 2
IMAGE_MAX = 4095
MAX_LESIONS = 5


@dataclass(frozen=True)
class Frame:
    """How one case's volumes are turned into stacks: orientation and crop."""

    ornt: NDArray
    box: tuple[slice, slice, slice]  # on the canonical (x, y, z) array
    pixel_mm: tuple[float, float, float]  # (slice, row, column) spacing

    def stack(self, array: NDArray) -> NDArray:
        """A volume on the case's grid -> (slice, row, column) stack of the crop."""
        canonical = apply_orientation(np.asarray(array), self.ornt)[self.box]
        return np.ascontiguousarray(canonical.transpose(2, 1, 0)[:, ::-1, ::-1])


def frame_of(image: Volume, liver: Volume) -> Frame:
    """The orientation and crop of a case, from its image and liver mask."""
    liver = on_grid(image, liver)
    ornt, spacing = canonical_orientation(image)
    mask = apply_orientation(np.asarray(liver.array) != 0, ornt)
    if mask.any():
        lo, hi = np.argwhere(mask).min(0), np.argwhere(mask).max(0) + 1
    else:
        lo, hi = np.zeros(3, int), np.array(mask.shape)
    margin = np.array([MARGIN_VOXELS, MARGIN_VOXELS, MARGIN_SLICES])
    lo, hi = np.maximum(lo - margin, 0), np.minimum(hi + margin, mask.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    return Frame(ornt, box, (float(spacing[2]), float(spacing[1]), float(spacing[0])))  # type: ignore[arg-type]


def image_stack(image: Volume, liver: Volume, frame: Frame) -> NDArray[np.uint16]:
    """The case's image as the viewer's uint16 stack (see the module docstring)."""
    pixels = frame.stack(np.asarray(image.array, dtype=np.float32))
    inside = frame.stack(np.asarray(liver.array) != 0)
    lo = np.percentile(pixels, 0.5)
    hi = np.percentile(pixels[inside] if inside.any() else pixels, 99.5)
    scaled = (pixels - lo) / max(float(hi - lo), 1e-6) * IMAGE_MAX
    return np.clip(np.rint(scaled), 0, IMAGE_MAX).astype("<u2")


def mask_stack(mask: Volume, image: Volume, frame: Frame) -> NDArray[np.bool_]:
    """A contour (on the image's grid, in any axis order: ``io.geometry.on_grid``) as a boolean stack."""
    return frame.stack(np.asarray(on_grid(image, mask).array) != 0)


def pack_mask(stack: NDArray[np.bool_]) -> bytes:
    return np.packbits(stack.ravel(), bitorder="big").tobytes()


def unpack_mask(data: bytes, shape: tuple[int, int, int]) -> NDArray[np.bool_]:
    """The inverse of ``pack_mask``."""
    bits = np.unpackbits(np.frombuffer(data, np.uint8), count=int(np.prod(shape)), bitorder="big")
    return bits.reshape(shape).astype(bool)


def lesion_slices(stack: NDArray[np.bool_]) -> tuple[int, ...]:
    """Slices of the largest lesions, largest first (see the module docstring)."""
    labels, n = ndimage.label(stack, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return ()
    sizes = np.bincount(labels.ravel())[1:]
    largest = np.argsort(-sizes, kind="stable")[:MAX_LESIONS] + 1
    per_slice = [np.count_nonzero(labels == label, axis=(1, 2)) for label in largest]
    return tuple(int(np.argmax(counts)) for counts in per_slice)


def read_case(image_path: Path, liver_path: Path, series: str | None = None) -> tuple[Volume, Volume, Frame]:
    """Read a case's image (``series``: the DICOM series to read) and its liver mask (reordered onto
    the image's voxels where it is in another axis order) and work out its frame."""
    image = read_volume(image_path, series)
    liver = on_grid(image, read_volume(liver_path))
    return image, liver, frame_of(image, liver)
