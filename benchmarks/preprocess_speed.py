"""Pre-process one 512 x 512 x 100 volume (0.8 x 0.8 x 3 mm) and print the timings as JSON.

Usage: .venv/bin/python benchmarks/preprocess_speed.py [--repeat 3]
Stages: in-memory pre-processing (percentiles, reorientation, 1 mm in-plane resampling of image,
liver and one tumour mask) and, separately, reading the NIfTI files from disk.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from hepaseg.config import PreprocessConfig
from hepaseg.data.preprocess import prepare_volume
from hepaseg.io.geometry import to_prepared
from hepaseg.io.volumes import read_volume, write_volume


def _phantom(shape=(512, 512, 100)):
    rng = np.random.default_rng(0)
    idx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    liver = (((idx[0] - 250) / 150.0) ** 2 + ((idx[1] - 240) / 120.0) ** 2 + ((idx[2] - 50) / 35.0) ** 2) <= 1
    tumor = (((idx[0] - 280) / 20.0) ** 2 + ((idx[1] - 230) / 20.0) ** 2 + ((idx[2] - 50) / 5.0) ** 2) <= 1
    image = (300 + 700 * liver - 400 * tumor + rng.normal(0, 30, shape)).astype(np.int16)
    return image, liver.astype(np.uint8), tumor.astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    affine = np.diag([-0.8, -0.8, 3.0, 1.0])
    image, liver, tumor = _phantom()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [write_volume(a, affine, Path(tmp) / f"{n}.nii.gz")
                 for n, a in (("image", image), ("liver", liver), ("tumor", tumor))]
        t0 = time.perf_counter()
        vols = [read_volume(p) for p in paths]
        read_s = time.perf_counter() - t0
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        _, _, grid, _ = prepare_volume(vols[0], vols[1], PreprocessConfig())
        to_prepared(vols[2].array, grid, mask=True)
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "benchmark": "preprocess_speed",
        "shape": list(image.shape), "spacing_mm": [0.8, 0.8, 3.0],
        "prepared_shape": list(grid.prepared_shape),
        "preprocess_s_best": round(min(times), 3), "preprocess_s_median": round(float(np.median(times)), 3),
        "read_three_nifti_s": round(read_s, 3),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }))


if __name__ == "__main__":
    main()
