"""Seconds to build and write the DICOM results of one case (SEG, SR, RTSTRUCT, SC); prints JSON.

The case: a 512 x 512 x 80 MR series of 0.8 x 0.8 x 3 mm (headers made in memory, as
``read_volume`` keeps them: no pixel data), a liver ellipsoid of about 200 x 170 x 60 mm and
``--lesions`` spherical lesions of 5-25 mm diameter inside it, numbered as ``lesions.csv`` numbers
them. Timed: the findings (lesion labelling and table), then each object built and written
(``inference.dicom_outputs``), best of ``--repeats``. Target (issue 27): all four under 5 s on the
2-core box.

Usage:
    .venv/bin/python benchmarks/dicom_objects.py
    .venv/bin/python benchmarks/dicom_objects.py --lesions 20 --repeats 3 --objects seg,sr
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from hepaseg.inference.lesion_table import lesions
from hepaseg.inference.dicom_outputs import build_object, make_findings, parse_objects, write_objects
from hepaseg.inference.overview import overview_png
from hepaseg.io.dicom_results import OBJECTS
from hepaseg.io.volumes import LPS_TO_RAS, Volume

SHAPE = (512, 512, 80)
SPACING = (0.8, 0.8, 3.0)


def headers(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> tuple:
    """Axial MR headers (no pixels) of one series, slice k at z = 3 k mm; rows along +y (LPS), columns along +x."""
    from pydicom.dataset import Dataset
    from pydicom.uid import MRImageStorage, generate_uid

    study, series, frame = (generate_uid(entropy_srcs=["benchmark", name]) for name in ("study", "series", "frame"))
    out = []
    for k in range(shape[2]):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid(entropy_srcs=["benchmark", str(k)])
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.PatientID, ds.PatientName, ds.StudyDate = "MR", "BENCH", "Bench^Liver", "20260101"
        ds.InstanceNumber, ds.SeriesNumber = k + 1, 1
        ds.ImagePositionPatient = [0.0, 0.0, k * spacing[2]]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = shape[1], shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        out.append(ds)
    return tuple(out)


def typical_case(n_lesions: int, seed: int = 0) -> tuple[Volume, np.ndarray, np.ndarray]:
    """(image volume with DICOM headers, tumour mask, liver mask)."""
    lps = np.diag([SPACING[0], SPACING[1], SPACING[2], 1.0])
    affine = LPS_TO_RAS @ lps
    mm = np.stack(np.meshgrid(*(np.arange(n) * s for n, s in zip(SHAPE, SPACING)), indexing="ij"), axis=-1)
    centre = np.array([SHAPE[0] * SPACING[0] / 2, SHAPE[1] * SPACING[1] / 2, SHAPE[2] * SPACING[2] / 2])
    liver = (((mm - centre) / [100.0, 85.0, 30.0]) ** 2).sum(-1) <= 1
    rng = np.random.default_rng(seed)
    tumour = np.zeros(SHAPE, bool)
    inside = np.argwhere(liver)
    placed: list[tuple[np.ndarray, float]] = []
    while len(placed) < n_lesions:  # apart by 3 mm at least, so that they stay n lesions
        at, radius = mm[tuple(inside[rng.integers(len(inside))])], rng.uniform(5, 25) / 2
        if all(np.linalg.norm(at - c) > radius + r + 3.0 for c, r in placed):
            placed.append((at, radius))
            tumour |= ((mm - at) ** 2).sum(-1) <= radius**2
    tumour &= liver
    image = Volume(np.zeros(SHAPE, np.int16), affine, Path("benchmark"), dicom_source=headers(SHAPE, SPACING))
    return image, tumour, liver


def _cpu() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesions", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--objects", default=",".join(OBJECTS))
    args = parser.parse_args()
    objects = parse_objects(args.objects)
    image, tumour, liver = typical_case(args.lesions)
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            table = lesions("benchmark", tumour, None, image.affine)
            findings = make_findings(image, tumour, liver, table)
            times = {"findings": time.perf_counter() - t0}
            png = overview_png("benchmark", image, liver, tumour, table) if "sc" in objects else None
            times["overview_png"] = time.perf_counter() - t0 - times["findings"]
            built: dict[str, object] = {}
            for kind in objects:  # as build_objects does it: the SR references the SEG built before it
                t1 = time.perf_counter()
                built[kind] = build_object(kind, findings, png, built.get("seg"))
                write_objects({kind: built[kind]}, Path(tmp))
                times[kind] = time.perf_counter() - t1
            times["total"] = time.perf_counter() - t0
            best = {k: min(v, best.get(k, v)) for k, v in times.items()}
        sizes = {p.name: p.stat().st_size for p in Path(tmp).iterdir()}
    print(json.dumps({"shape": SHAPE, "spacing_mm": SPACING, "lesions": len(findings.table), "objects": objects,
                      "seconds_best_of": args.repeats, "seconds": {k: round(v, 3) for k, v in best.items()},
                      "bytes": sizes, "cpu": _cpu()}, indent=2))


if __name__ == "__main__":
    main()
