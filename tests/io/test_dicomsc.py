"""Secondary Capture of the overview picture (``io.dicomsc``): read back with pydicom, its pixels are
the PNG's as PIL decodes it (an RGB and a palette PNG), it belongs to the source study as a new
series, and Debian's validator ``dciodvfy`` finds no error in it."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from PIL import Image

from hepaseg.errors import InputError
from hepaseg.inference.dicom_outputs import build_object, make_findings
from hepaseg.io.dicom_results import SERIES_NUMBERS, CannotBuild, instance_uid, series_uid, write_dicom_object
from hepaseg.io.dicomsc import build_secondary_capture
from hepaseg.io.volumes import read_volume

SHAPE = (10, 8, 3)


def _findings(tmp_path, write_dicom_series):
    """The findings of a small series (a liver, one lesion) and its first file's header."""
    liver = np.zeros(SHAPE, bool)
    liver[2:8, 2:6, :] = True
    tumour = np.zeros(SHAPE, bool)
    tumour[4:6, 3:5, 1] = True
    folder = tmp_path / "series"
    write_dicom_series(folder, np.where(liver, 900, 300).astype(np.int16), (1.0, 1.0, 3.0), (0.0, 0.0, 0.0),
                       (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    return make_findings(read_volume(folder), tumour, liver), pydicom.dcmread(folder / "s000.dcm")


def _png(mode: str) -> bytes:
    """A 37 x 23 picture of random colours (``mode`` "RGB", or "P": quantised to a palette), as PNG."""
    pixels = np.random.default_rng(4).integers(0, 256, (23, 37, 3), dtype=np.uint8)
    picture = Image.fromarray(pixels)
    if mode == "P":
        picture = picture.quantize(colors=16)
    buffer = io.BytesIO()
    picture.save(buffer, format="png")
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "P"])
def test_the_pixels_are_the_pictures_in_the_source_study(tmp_path, write_dicom_series, mode):
    findings, source = _findings(tmp_path, write_dicom_series)
    png = _png(mode)
    sc = pydicom.dcmread(write_dicom_object(build_object("sc", findings, png), tmp_path / "sc.dcm"))
    with Image.open(io.BytesIO(png)) as picture:
        expected = np.asarray(picture.convert("RGB"))
    assert sc.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert (sc.PhotometricInterpretation, sc.SamplesPerPixel, sc.Rows, sc.Columns) == ("RGB", 3, 23, 37)
    np.testing.assert_array_equal(sc.pixel_array, expected)
    assert (sc.StudyInstanceUID, sc.PatientID, sc.PatientName) == (source.StudyInstanceUID, "PHANTOM", "Phantom^Liver")
    assert sc.SeriesInstanceUID == series_uid(str(source.SeriesInstanceUID), "sc")
    assert sc.SOPInstanceUID == instance_uid(str(source.SeriesInstanceUID), "sc")
    assert sc.SeriesNumber == SERIES_NUMBERS["sc"] and "research use" in sc.SeriesDescription
    assert sc.Manufacturer == "hepaseg" and list(sc.PatientOrientation) == ["L", "P"]


def test_no_picture_and_bytes_that_are_no_picture_are_refused(tmp_path, write_dicom_series):
    findings, _ = _findings(tmp_path, write_dicom_series)
    with pytest.raises(CannotBuild, match="no overview picture given"):
        build_object("sc", findings, None)
    with pytest.raises(InputError, match="overview picture"):
        build_secondary_capture(findings, b"not a png")


def test_dciodvfy_finds_no_error_in_the_secondary_capture(tmp_path, write_dicom_series):
    """Debian's dicom3tools validator checks the SC against the standard's IOD; warnings are allowed
    (printed), errors are not."""
    dciodvfy = shutil.which("dciodvfy")
    if dciodvfy is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) not installed: the SC is not checked by an "
                    "independent validator here; as root `make test` installs it, or `apt-get install dicom3tools`")
    findings, _ = _findings(tmp_path, write_dicom_series)
    path = write_dicom_object(build_secondary_capture(findings, _png("RGB")), tmp_path / "sc.dcm")
    done = subprocess.run([dciodvfy, str(path)], check=False, capture_output=True, text=True, timeout=60)
    lines = (done.stdout + done.stderr).splitlines()
    print("dciodvfy sc.dcm:", *lines, sep="\n  ")
    assert "SCImage" in lines, lines  # it recognised the IOD it checked
    assert [line for line in lines if line.startswith("Error")] == [], "\n".join(lines)
