"""Secondary Capture of the overview picture, so that the key slices show in any DICOM viewer.

The overview PNG (``inference.overview``: one radiological axial panel per lesion, patient right on
the image's left, anterior at the top) decoded to 8-bit RGB, pixel for pixel, uncompressed
(Explicit VR Little Endian). A new series of the source study, patient and study attributes copied
from the source (highdicom's ``SCImage.from_ref_dataset``), Patient Orientation L \\ P (the
panels' rows run to the patient's left, their columns to posterior), Conversion Type DI (digital
interface), Image Type DERIVED \\ SECONDARY \\ OTHER, Body Part Examined LIVER (an unpaired organ: no
Laterality).
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .dicom_results import (
    MANUFACTURER,
    MODEL_NAME,
    SERIES_NUMBERS,
    Findings,
    instance_uid,
    series_description,
    series_uid,
    software_version,
    source_slices,
)

PATIENT_ORIENTATION = ("L", "P")  # radiological axial panels


def build_secondary_capture(findings: Findings, png: bytes, version: str = ""):
    """A Secondary Capture dataset of the overview picture ``png`` in the source study (not written).

    Args:
        findings: what the picture shows; its source headers give the study and the patient.
        png: the overview picture, PNG bytes (RGB, RGBA, palette or grey: stored as RGB).
        version: recorded as SoftwareVersions (default: hepaseg's).

    Returns:
        a ``highdicom.sc.SCImage``; ``write_dicom_object`` saves it.

    Raises:
        InputError: ``png`` is not a picture; what ``dicom_results.source_slices`` raises.
    """
    import highdicom as hd
    from pydicom.uid import ExplicitVRLittleEndian

    first = source_slices(findings, "sc")[0]
    source = findings.source_series_uid
    sc = hd.sc.SCImage.from_ref_dataset(
        first, png_rgb(png), photometric_interpretation="RGB", bits_allocated=8, coordinate_system="PATIENT",
        series_instance_uid=series_uid(source, "sc"), series_number=SERIES_NUMBERS["sc"],
        sop_instance_uid=instance_uid(source, "sc"), instance_number=1, manufacturer=MANUFACTURER,
        patient_orientation=PATIENT_ORIENTATION, transfer_syntax_uid=ExplicitVRLittleEndian,
        series_description=series_description("sc"), manufacturer_model_name=MODEL_NAME,
        software_versions=version or software_version(), device_serial_number="none")
    sc.BodyPartExamined = "LIVER"  # unpaired: no Laterality (General Series, type 2C)
    return sc


def png_rgb(png: bytes) -> NDArray[np.uint8]:
    """(rows, columns, 3) uint8 RGB pixels of a PNG; InputError for bytes that are not a picture."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as picture:
            return np.asarray(picture.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError("overview picture", f"cannot be read as a picture ({exc})") from exc
