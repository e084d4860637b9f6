"""Seconds per case of ``hepaseg predict`` on a typical case, split by stage; prints JSON.

The case: 512 x 512 x 80 voxels of 0.8 x 0.8 x 3 mm (LPS-stored NIfTI, int16), a liver ellipsoid of
about 200 x 170 x 60 mm with three dark lesions. The model is a model folder (``--model``) or an
untrained network of a preset (``--preset``, weights from a fixed seed: speed does not depend on
them). Cases run through the batch driver exactly as ``hepaseg predict --dataset`` runs them
(reading and pre-processing of the next case in background threads), after ``--warmup`` untimed
cases. ``stages_s`` are per-case means of read / preprocess / network / postprocess / write (the
first two happen in the background); ``wall_s_per_case`` is the end-to-end wall time per case.

Usage:
    .venv/bin/python benchmarks/predict_speed.py --preset demo --device cpu
    .venv/bin/python benchmarks/predict_speed.py --preset paper --device cpu --precision bf16
    .venv/bin/python benchmarks/predict_speed.py --preset paper --device cuda --cases 10 --warmup 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hepaseg.presets import preset
from hepaseg.inference.batch import STAGES, CaseJob, predict_cases
from hepaseg.inference.predictor import Predictor
from hepaseg.io.volumes import write_volume

SHAPE = (512, 512, 80)
SPACING = (0.8, 0.8, 3.0)


def typical_case(folder: Path) -> tuple[Path, Path]:
    """Write the benchmark case; returns (image, liver) paths."""
    rng = np.random.default_rng(0)
    i, j, k = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    mm = [(i - 260) * SPACING[0], (j - 250) * SPACING[1], (k - 40) * SPACING[2]]
    liver = (mm[0] / 100) ** 2 + (mm[1] / 85) ** 2 + (mm[2] / 30) ** 2 <= 1
    image = np.where(liver, 1000.0, 350.0)
    for centre, radius in (((-30, 10, 0), 15), ((40, -20, 9), 8), ((10, 40, -12), 5)):
        image[sum(((m - c) / radius) ** 2 for m, c in zip(mm, centre)) <= 1] = 450.0
    image += rng.normal(0, 40, SHAPE)
    affine = np.diag([-SPACING[0], -SPACING[1], SPACING[2], 1.0])
    return (write_volume(image.astype(np.int16), affine, folder / "image.nii.gz"),
            write_volume(liver.astype(np.uint8), affine, folder / "liver.nii.gz"))


def _predictor(args) -> Predictor:
    overrides = {"tta": True} if args.tta else {}
    if args.model:
        return Predictor.load(args.model, args.device, overrides, args.precision)
    from hepaseg.model.device import resolve_device
    from hepaseg.model.unet import UNet

    config = preset(args.preset)
    config = config.replace(infer=dataclasses.replace(config.infer, **overrides))
    torch.manual_seed(0)
    device = resolve_device(args.device)
    return Predictor(UNet(config.model).to(device), config, device, args.precision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="a model folder")
    source.add_argument("--preset", default="paper", help="untrained network of this preset (default paper)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--cases", type=int, default=None, help="timed cases (default 1 on CPU, 10 on CUDA)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed cases first (default 0 CPU, 2 CUDA)")
    parser.add_argument("--workers", type=int, default=None, help="background readers (default 1 CPU, 4 CUDA)")
    parser.add_argument("--precision", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16")
    parser.add_argument("--tta", action="store_true", help="with mirror test-time augmentation")
    args = parser.parse_args()

    predictor = _predictor(args)
    cuda = predictor.device.type == "cuda"
    cases = args.cases or (10 if cuda else 1)
    warmup = args.warmup if args.warmup is not None else (2 if cuda else 0)
    workers = args.workers or (4 if cuda else 1)
    with tempfile.TemporaryDirectory() as tmp:
        image, liver = typical_case(Path(tmp))
        if warmup:
            jobs = [CaseJob(f"warm{n}", image, liver) for n in range(warmup)]
            predict_cases(predictor, jobs, Path(tmp) / "warm", workers=workers, progress=False)
        jobs = [CaseJob(f"case{n}", image, liver) for n in range(cases)]
        t0 = time.perf_counter()
        summary = predict_cases(predictor, jobs, Path(tmp) / "out", workers=workers, progress=False)
        wall = time.perf_counter() - t0
    if summary.failed:
        raise SystemExit(f"benchmark case failed: {summary.failed[0][1]}")
    print(json.dumps({
        "benchmark": "predict_speed",
        "model": str(args.model) if args.model else f"untrained {args.preset} preset (seed 0)",
        "device": torch.cuda.get_device_name(predictor.device) if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "precision": "bf16" if predictor.bf16 else "fp32",
        "shape": list(SHAPE), "spacing_mm": list(SPACING), "tta": predictor.infer.tta,
        "cases": cases, "warmup": warmup, "workers": workers,
        "stages_s": {stage: round(summary.seconds[stage] / cases, 3) for stage in STAGES},
        "sum_of_stages_s": round(sum(summary.seconds.values()) / cases, 3),
        "wall_s_per_case": round(wall / cases, 3),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }))


if __name__ == "__main__":
    main()
