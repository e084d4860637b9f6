"""Read volumes and write masks: NIfTI, NRRD / MHA, and DICOM series.

Convention for every array in hepaseg: voxel index order ``(i, j, k)`` of the file as nibabel
reports it (for SimpleITK images the transpose of ``GetArrayFromImage``), and a 4 x 4 ``affine``
mapping voxel indices to RAS+ world coordinates in millimetres (nibabel's convention).
A volume always travels with its affine, so a mask written with it lands exactly on the source image;
one read from a DICOM folder also keeps its slices' headers in the order of axis k
(``Volume.dicom_source``), which the DICOM writers (``io.dicomseg``) take from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .atomic import atomic_path
from .dicom import Series, choose_series, stack_files
from .formats import ITK_IO, ITK_SUFFIXES, NIFTI_SUFFIXES, WRITE_SUFFIXES, volume_suffix

if TYPE_CHECKING:
    from pydicom import Dataset

Affine = NDArray[np.float64]  # (4, 4) voxel index (i, j, k) -> RAS+ mm
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image with its geometry.

    Attributes:
        array: voxel values, shape (i, j, k) in the file's voxel order.
        affine: (4, 4) voxel index -> RAS+ world coordinates in mm.
        source: the file (or DICOM series folder) it was read from, if any.
        series: the Series Instance UID of a volume read from a DICOM folder, else None.
        dicom_source: for a volume read from a DICOM folder, the pydicom headers (no pixel data) of
            its slices in the order of axis k (``dicom_source[k]`` is slice k; an enhanced
            multi-frame object: its one dataset, frames in k order), as ``io.dicom.stack_files``
            read and sorted them; else None. Shared, not copied: treat as read-only.
    """

    array: NDArray
    affine: Affine
    source: str | None = None
    series: str | None = None
    dicom_source: tuple[Dataset, ...] | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> NDArray[np.float64]:
        """Voxel size in mm along (i, j, k)."""
        return voxel_spacing(self.affine)


def voxel_spacing(affine: Affine) -> NDArray[np.float64]:
    """Voxel size in mm along (i, j, k): the norms of the affine's first three columns."""
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def read_volume(path: str | Path, series: str | None = None) -> Volume:
    """Read a 3D volume from a NIfTI / NRRD / MHA file or a DICOM series in a folder.

    Args:
        path: the file, or a folder of DICOM files.
        series: the Series Instance UID to read from a folder holding several (``io.dicom.choose_series``).

    Raises:
        InputError: missing or unreadable file, unknown format, not a 3D volume, a DICOM folder with
            no series, several and none chosen, or slices that do not form one regular stack
            (``io.dicom.stack_files``); ``series`` given for a file.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    if series is not None and not p.is_dir():
        raise InputError(p, "a series UID is given, but the image is a file, not a DICOM folder")
    headers = None
    try:
        if p.is_dir():
            chosen = choose_series(p, series)
            series = chosen.uid
            array, affine, headers = _read_dicom_series(p, chosen)
        elif volume_suffix(p) in NIFTI_SUFFIXES:
            array, affine = _read_nifti(p)
        elif volume_suffix(p) in ITK_SUFFIXES:
            array, affine = _read_itk(p)
        else:
            raise InputError(p, "unknown format (expected .nii, .nii.gz, .nrrd, .mha, .mhd or a DICOM folder)")
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad input
        raise InputError(p, f"cannot read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    return Volume(_as_3d(array, p), affine, str(p), series, headers)


def _as_3d(array: NDArray, path: Path) -> NDArray:
    if array.ndim > 3 and all(n == 1 for n in array.shape[3:]):
        array = array.reshape(array.shape[:3])
    if array.ndim != 3:
        kind = f"{array.ndim}D"
        raise InputError(path, f"is {kind} (shape {tuple(array.shape)}); a 3D volume is expected")
    return array


def _read_nifti(path: Path) -> tuple[NDArray, Affine]:
    import nibabel as nib

    img = nib.load(str(path))
    return np.asanyarray(img.dataobj), np.asarray(img.affine, dtype=np.float64)


def _read_itk(path: Path) -> tuple[NDArray, Affine]:
    import SimpleITK as sitk

    return _from_sitk(sitk.ReadImage(str(path), imageIO=ITK_IO[volume_suffix(path)]))


def _read_dicom_series(folder: Path, series: Series) -> tuple[NDArray, Affine, tuple[Dataset, ...]]:
    """The series' slices, checked and sorted along the slice normal (``io.dicom.stack_files``),
    with their headers in that order; an enhanced (multi-frame) object is one file, read whole."""
    import SimpleITK as sitk

    stacked = stack_files(folder, series)
    files = [str(path) for path, _ in stacked]
    headers = tuple(ds for _, ds in stacked)
    if len(files) == 1:
        return (*_from_sitk(sitk.ReadImage(files[0])), headers)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    return (*_from_sitk(reader.Execute()), headers)


def _from_sitk(img) -> tuple[NDArray, Affine]:
    import SimpleITK as sitk

    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"has {img.GetNumberOfComponentsPerPixel()} components per voxel")
    array = sitk.GetArrayFromImage(img)
    array = np.transpose(array, tuple(range(array.ndim))[::-1])
    dim = img.GetDimension()
    spacing = np.array(img.GetSpacing(), dtype=np.float64)[:3]
    direction = np.array(img.GetDirection(), dtype=np.float64).reshape(dim, dim)[:3, :3]
    origin = np.array(img.GetOrigin(), dtype=np.float64)[:3]
    if dim < 3:
        return array, np.eye(4)
    lps = np.eye(4)
    lps[:3, :3] = direction * spacing[None, :]
    lps[:3, 3] = origin
    return array, LPS_TO_RAS @ lps


def to_sitk(array: NDArray, affine: Affine):
    """A SimpleITK image of ``array`` (i, j, k) with the geometry of ``affine`` (RAS+)."""
    import SimpleITK as sitk

    lps = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)
    spacing = voxel_spacing(lps)
    img = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0))))
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetOrigin(tuple(float(o) for o in lps[:3, 3]))
    img.SetDirection(tuple(float(d) for d in (lps[:3, :3] / spacing[None, :]).ravel()))
    return img


def write_volume(array: NDArray, affine: Affine, path: str | Path) -> Path:
    """Write ``array`` (i, j, k) with ``affine`` atomically; the format follows the suffix."""
    p = Path(path)
    suffix = volume_suffix(p)
    if p.is_dir():
        raise InputError(p, "output path is a directory; give a file name ending in .nii.gz or .nrrd")
    if suffix not in WRITE_SUFFIXES:
        raise InputError(p, "unknown output format (use .nii.gz, .nii, .nrrd or .mha)")
    with atomic_path(p) as tmp:
        if suffix in NIFTI_SUFFIXES:
            import nibabel as nib

            img = nib.Nifti1Image(array, np.asarray(affine, dtype=np.float64))
            img.set_qform(affine, code=1)
            img.set_sform(affine, code=1)
            nib.save(img, str(tmp))
        elif suffix in ITK_SUFFIXES:
            import SimpleITK as sitk

            sitk.WriteImage(to_sitk(array, affine), str(tmp), useCompression=True, imageIO=ITK_IO[suffix])
    return p


def write_mask(mask: NDArray, like: Volume, path: str | Path) -> Path:
    """Write a binary mask (uint8 0/1) on the grid of ``like``, atomically.

    Raises:
        ValueError: the mask's shape differs from ``like``'s.
    """
    if tuple(mask.shape) != like.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} differs from image shape {like.shape}")
    return write_volume((np.asarray(mask) > 0).astype(np.uint8), like.affine, path)
