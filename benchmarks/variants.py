"""The ablation's architecture variants (aunet, 2d, 3d) of the paper and demo presets; prints JSON.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/variants.py --measure demo,demo-2d,demo-3d,paper-2d

Per preset: parameters (``model.unet.count_parameters``), receptive field of one output voxel in
voxels (``model.shapes.receptive_field``) and in mm on the prepared grid (z: the 3d variant's
resampled spacing; the others keep the scan's slices, given for ``--slice-mm`` slices), patch input
and output sizes, the estimated step memory (``training.feasibility.step_memory_bytes``, float32 and
bf16); for the presets named in ``--measure`` the measured seconds per step and peak memory
(``training.footprint.measure_step``, one thread by default, float32).
"""

from __future__ import annotations

import argparse
import json
import platform

from hepaseg.presets import preset
from hepaseg.model.shapes import input_size, receptive_field
from hepaseg.model.unet import UNet, count_parameters
from hepaseg.training.feasibility import step_memory_bytes
from hepaseg.training.footprint import measure_step

NAMES = ("paper", "paper-2d", "paper-3d", "demo", "demo-2d", "demo-3d")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", default="", help="comma-separated presets to measure on the CPU")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--slice-mm", type=float, default=4.0, help="the scan's slices for aunet and 2d")
    args = parser.parse_args()
    measure = [m for m in args.measure.split(",") if m]
    rows = []
    for name in NAMES:
        cfg = preset(name)
        rf = receptive_field(cfg.model)
        spacing = (cfg.preprocess.inplane_spacing_mm,) * 2 + (cfg.preprocess.slice_spacing_mm or args.slice_mm,)
        row = {"preset": name, "parameters": count_parameters(UNet(cfg.model)), "widths": cfg.model.widths,
               "receptive_field_voxels": rf, "receptive_field_mm": [round(r * s, 1) for r, s in zip(rf, spacing)],
               "grid_mm": spacing, "patch_output": cfg.patch.output_size,
               "patch_input": input_size(cfg.model, cfg.patch.output_size), "batch": cfg.train.batch_size,
               "tile_output": cfg.infer.tile_output_size,
               "estimated_step_gib_fp32": round(step_memory_bytes(cfg, False) / 2**30, 2),
               "estimated_step_gib_bf16": round(step_memory_bytes(cfg, True) / 2**30, 2)}
        if name in measure:
            fp = measure_step(cfg, "cpu", args.threads)
            row.update(seconds_per_step=round(fp.seconds_per_step, 3), peak_memory_mb=round(fp.peak_memory_mb, 1),
                       method=fp.method, threads=fp.threads)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"machine": platform.processor() or platform.machine(), "rows": len(rows)}))


if __name__ == "__main__":
    main()
