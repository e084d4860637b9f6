"""Where ``hepaseg predict`` writes a case's results, and the writing (``write_case``).

A case's files (``Outputs``): the tumour mask (NIfTI / NRRD, or a DICOM-SEG holding the liver and
one segment per lesion), the liver mask the prediction used (so it can be corrected, e.g. in 3D
Slicer, and given back with ``-l``), the probability map, the lesion table, the overview picture
(``inference.overview``) and, for a DICOM input, the DICOM results (``inference.dicom_outputs``:
SEG, SR, RTSTRUCT, SC). Every file is written atomically (``io.atomic``), the DICOM objects built
before anything is written (the step that can still fail; an object the source series cannot give
is skipped and named) and the mask written last, so a case is done exactly when all its files exist.

- Batch (folders, manifest), in ``out/``: ``<id>.nii.gz`` (``.nrrd``, ``.dcm``),
  ``liver/<id>.nii.gz`` (``.nrrd``; ``.nii.gz`` beside a DICOM-SEG), ``lesions/<id>.csv``,
  ``overview/<id>.png``, with probabilities ``<id>_probability.nii.gz``.
- One case, ``-o`` a folder (an existing folder, or a name without suffix): the full set
  ``tumor.nii.gz`` (``--format nrrd``: ``.nrrd``), ``liver.nii.gz``, ``lesions.csv``,
  ``overview.png``, and when the input is a DICOM series folder the DICOM objects of ``--objects``
  (``segmentation.dcm``, ``report.dcm``, ``rtstruct.dcm``, ``overview.dcm``), with probabilities
  ``tumor_probability.nii.gz``.
- One case, ``-o`` a file: that mask only (``.nii.gz`` / ``.nii``, ``.nrrd`` / ``.mha``, ``.dcm``;
  ``--format dicom-seg`` with a folder: ``<folder>/tumor.dcm``), plus ``<name>_probability.nii.gz``
  and the ``--lesions`` file where asked for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..io.dicom_results import OBJECT_FILES, OBJECTS
from ..io.formats import ITK_SUFFIXES, MASK_FORMATS, NIFTI_SUFFIXES
from ..io.atomic import write_bytes
from ..io.volumes import write_mask, write_volume
from .lesion_table import write_csv
from .predictor import CaseResult, LoadedCase

DICOM_SEG_NAME = "tumor.dcm"  # --format dicom-seg -o FOLDER
PROBABILITY_SUFFIX = "_probability.nii.gz"
LESIONS = "lesions.csv"
# the one-case folder form: file names without the mask suffix, and the others
TUMOUR_NAME, LIVER_NAME, OVERVIEW_NAME = "tumor", "liver", "overview.png"
LIVER_DIR = "liver"  # batch: the sub-folder of the liver masks used


@dataclass(frozen=True)
class Outputs:
    """Where one case's results go (None: not written; see the module docstring).

    Attributes:
        mask: the tumour mask, written last; for ``fmt`` ``dicom-seg`` the DICOM-SEG.
        fmt: the mask's format (``io.formats.MASK_FORMATS``).
        dicom_dir: the folder of the DICOM objects ``objects`` (kinds of ``io.dicom_results.OBJECTS``).
    """

    mask: Path
    fmt: str
    probability: Path | None = None
    lesions: Path | None = None
    liver: Path | None = None
    overview: Path | None = None
    dicom_dir: Path | None = None
    objects: tuple[str, ...] = ()

    @property
    def dicom_objects(self) -> dict[str, Path]:
        """The DICOM objects besides the mask, by kind, and their files."""
        return {} if self.dicom_dir is None else {kind: self.dicom_dir / OBJECT_FILES[kind] for kind in self.objects}

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file this case writes, the mask first."""
        paths = (self.mask, self.probability, self.lesions, self.liver, self.overview)
        return tuple(p for p in paths if p is not None) + tuple(self.dicom_objects.values())

    @property
    def dicom_seg(self) -> bool:
        """Whether a DICOM object is written (it needs a DICOM series as input)."""
        return self.fmt == "dicom-seg" or bool(self.dicom_objects)

    def all_exist(self) -> bool:
        return all(p.is_file() for p in self.files)


def check_writable(path: Path, is_dir: bool) -> None:
    """InputError unless ``path`` can be written (a file: not a folder; its folders creatable)."""
    if not is_dir and path.is_dir():
        raise InputError(path, "output path is a directory; give a file name (e.g. tumor.nii.gz)")
    if is_dir and path.exists() and not path.is_dir():
        raise InputError(path, "output folder is an existing file")
    parent = path if is_dir else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(path, f"cannot create the output folder: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(path, f"output folder {parent} is not writable")


def check_format(fmt: str) -> str:
    if fmt not in MASK_FORMATS:
        raise InputError(None, f"unknown output format {fmt!r} (choose from {', '.join(MASK_FORMATS)})")
    return fmt


def _format_by_suffix(path: Path) -> str | None:
    name = path.name.lower()
    return ("nifti" if name.endswith(NIFTI_SUFFIXES) else "nrrd" if name.endswith(ITK_SUFFIXES)
            else "dicom-seg" if name.endswith(".dcm") else None)


def single_outputs(out: Path, fmt: str | None, image: Path, save_probabilities: bool,
                   lesions_csv: Path | None, objects: tuple[str, ...] = OBJECTS) -> Outputs:
    """The output paths of the one-case form (see the module docstring); ``objects``: the DICOM objects
    of the folder form for a DICOM input. InputError for a path and format that do not go together."""
    by_suffix = _format_by_suffix(out)
    if fmt is not None:
        check_format(fmt)
    if by_suffix is None and fmt != "dicom-seg":  # the folder form
        if not out.is_dir() and out.suffix:
            raise InputError(out, "output path has an unknown suffix; give a folder (for every output) or a "
                                  "file name ending in .nii.gz, .nrrd or .dcm")
        if lesions_csv is not None:
            raise InputError(lesions_csv, f"--lesions is for a mask file -o; a folder -o gets {LESIONS}")
        suffix = MASK_FORMATS[fmt or "nifti"]
        return Outputs(out / f"{TUMOUR_NAME}{suffix}", fmt or "nifti",
                       out / f"{TUMOUR_NAME}{PROBABILITY_SUFFIX}" if save_probabilities else None,
                       out / LESIONS, out / f"{LIVER_NAME}{suffix}", out / OVERVIEW_NAME,
                       out if Path(image).is_dir() else None, objects if Path(image).is_dir() else ())
    if fmt is None:
        fmt = by_suffix
    elif fmt != "dicom-seg" and by_suffix != fmt:
        raise InputError(out, f"--format {fmt} needs a file name ending in {MASK_FORMATS[fmt]} (or a folder)")
    elif fmt == "dicom-seg" and by_suffix in ("nifti", "nrrd"):
        raise InputError(out, "--format dicom-seg writes a .dcm file, or tumor.dcm into a folder")
    if fmt == "dicom-seg" and by_suffix is None:
        out = out / DICOM_SEG_NAME
    stem = out.name[: -len(".nii.gz")] if out.name.lower().endswith(".nii.gz") else out.stem
    prob = out.with_name(stem + PROBABILITY_SUFFIX) if save_probabilities else None
    return Outputs(out, fmt, prob, lesions_csv)  # type: ignore[arg-type]


def batch_outputs(out_dir: Path, case_id: str, fmt: str, save_probabilities: bool) -> Outputs:
    """The output paths of one case of a batch."""
    suffix = MASK_FORMATS[fmt]
    liver_suffix = MASK_FORMATS["nifti"] if fmt == "dicom-seg" else suffix
    return Outputs(out_dir / f"{case_id}{suffix}", fmt,
                   out_dir / f"{case_id}{PROBABILITY_SUFFIX}" if save_probabilities else None,
                   out_dir / "lesions" / f"{case_id}.csv", out_dir / LIVER_DIR / f"{case_id}{liver_suffix}",
                   out_dir / "overview" / f"{case_id}.png")


def require_dicom(image: Path, outputs: Outputs) -> None:
    """InputError where a DICOM-SEG is to be written but the input is not a DICOM series folder."""
    if outputs.dicom_seg and not Path(image).is_dir():
        raise InputError(image, "--format dicom-seg needs a DICOM series folder as input (-i)")


def write_case(case_id: str, result: CaseResult, case: LoadedCase, outputs: Outputs, connectivity: int = 26,
               skipped: Callable[[str], None] | None = None) -> float:
    """Write one case's files (the mask last; see the module docstring); returns the seconds it took.

    Args:
        connectivity: the lesion table's (``InferConfig.lesion_connectivity``), for the DICOM objects' lesions.
        skipped: gets one line per DICOM object that the source series cannot give (the others are written).
    """
    t0 = time.perf_counter()
    mask_seg, objects, png = None, {}, None
    if outputs.dicom_seg:  # built before anything is written: the step that can still fail
        from .dicom_outputs import build_objects, make_findings

        findings = make_findings(case.image, result.mask, result.liver, result.lesions, connectivity)
        if outputs.fmt == "dicom-seg":
            from ..io.dicomseg import build_dicom_seg

            mask_seg = build_dicom_seg(findings)
        if "sc" in outputs.objects:
            from .overview import overview_png

            png = overview_png(case_id, case.image, result.liver, result.mask, result.lesions)
        objects = build_objects(findings, outputs.objects, png, skipped)
    if outputs.probability is not None:
        write_volume(result.probability, case.image.affine, outputs.probability)
    if outputs.lesions is not None:
        write_csv(result.lesions, outputs.lesions)
    if outputs.liver is not None:
        write_mask(result.liver, case.image, outputs.liver)
    if outputs.overview is not None and png is not None:  # drawn once for the file and the SC
        write_bytes(outputs.overview, png)
    elif outputs.overview is not None:
        from .overview import write_overview

        write_overview(outputs.overview, case_id, case.image, result.liver, result.mask, result.lesions)
    if objects:
        from .dicom_outputs import write_objects

        write_objects(objects, outputs.dicom_dir)
    if mask_seg is not None:
        from ..io.dicom_results import write_dicom_object

        write_dicom_object(mask_seg, outputs.mask)
    else:
        write_mask(result.mask, case.image, outputs.mask)
    return time.perf_counter() - t0
