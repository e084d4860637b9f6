"""Volume file formats: the suffixes hepaseg reads and writes, and the output formats of ``predict``.

Suffixes are compared lower-cased, so ``CASE.NII.GZ`` and ``case.nii.gz`` are the same format.
"""

from __future__ import annotations

from pathlib import Path

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# SimpleITK picks its reader by the suffix as written (".MHA" fails), so hepaseg names it itself
ITK_IO = {".nrrd": "NrrdImageIO", ".nhdr": "NrrdImageIO", ".mha": "MetaImageIO", ".mhd": "MetaImageIO"}
ITK_SUFFIXES = tuple(ITK_IO)
READ_SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES  # besides a folder holding one DICOM series
WRITE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")  # single-file formats (atomic writes)
MASK_FORMATS = {"nifti": ".nii.gz", "nrrd": ".nrrd", "dicom-seg": ".dcm"}  # ``predict --format`` -> suffix


def volume_suffix(path: str | Path) -> str:
    """The lower-cased format suffix of a file name: ``.nii.gz`` whole, else the last suffix."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def volume_stem(name: str) -> str | None:
    """The file name without a readable volume suffix, or None if it has none."""
    low = name.lower()
    for suffix in READ_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None
