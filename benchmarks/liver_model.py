"""The liver model: its quality on the demo cohort and its time per case; prints JSON.

``quality``: writes the demo cohort (``pipeline.demo.demo_spec``, seed 0) into ``--work`` unless it is
there, trains the ``demo-liver`` (or ``--preset``) model on it with ``training.liver.train_liver``
(resumable: a second call re-uses the run) and scores ``inference.liver.predict_liver`` on the
test cases against the given livers: Dice, mean surface distance (ASSD) and seconds per case.

``speed``: the liver stage of one typical case (``predict_speed.typical_case``: 512 x 512 x 80
voxels of 0.8 x 0.8 x 3 mm) with an untrained network of ``--preset`` (weights from a fixed seed:
speed does not depend on them), after ``--warmup`` untimed runs: seconds per case (median).

Usage:
    .venv/bin/python benchmarks/liver_model.py quality --work /tmp/liver-bench --threads 2
    .venv/bin/python benchmarks/liver_model.py speed --preset paper-liver --device cpu
    PYTHONPATH=src python benchmarks/liver_model.py speed --preset paper-liver --device cuda --cases 10
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hepaseg.config import with_assignments

from hepaseg.presets import preset
from hepaseg.inference.liver import liver_problem, predict_liver
from hepaseg.inference.predictor import Predictor


def quality(args) -> dict:
    from hepaseg.data.manifest import load_manifest
    from hepaseg.evaluation.metrics import dice
    from hepaseg.evaluation.surface import assd_hd95
    from hepaseg.io.volumes import read_volume
    from hepaseg.model.folder import load_model
    from hepaseg.pipeline.demo import demo_spec
    from hepaseg.synth import write_cohort
    from hepaseg.training.liver import train_liver

    work = Path(args.work)
    manifest = work / "cohort" / "dataset.json"
    if not manifest.is_file():
        write_cohort(manifest.parent, seed=0, spec=demo_spec(), progress=False)
    config = with_assignments(preset(args.preset), args.sets)
    folder = work / (args.name or config.preset)
    started = time.perf_counter()
    run = train_liver(manifest, folder, config, seed=0, device=args.device, resume=True, progress=False)
    train_s = time.perf_counter() - started
    net, config = load_model(folder / "model", args.device)
    model = Predictor(net, config, args.device)
    rows = []
    for case in load_manifest(manifest).split("test"):
        image = read_volume(case.image)
        given = np.asarray(read_volume(case.liver).array) > 0
        t0 = time.perf_counter()
        mask = predict_liver(model, image)
        seconds = time.perf_counter() - t0
        assd, _ = assd_hd95(mask, given, image.spacing)
        rows.append({"case": case.id, "dice": round(dice(mask, given), 4), "assd_mm": round(assd, 2),
                     "seconds": round(seconds, 3), "problem": liver_problem(mask, image.affine)})
    dices = [r["dice"] for r in rows]
    return {"preset": config.preset, "iterations": run.iterations_done, "train_s_this_call": round(train_s, 1),
            "its_per_s_this_call": round(run.iterations_done / max(run.seconds, 1e-9), 2) if run.seconds else None,
            "validation_history": run.history, "test_cases": len(rows),
            "dice_mean": round(float(np.mean(dices)), 4), "dice_sd": round(float(np.std(dices, ddof=1)), 4),
            "dice_min": min(dices), "assd_mm_mean": round(float(np.nanmean([r["assd_mm"] for r in rows])), 2),
            "seconds_per_case": round(float(np.mean([r["seconds"] for r in rows])), 3), "cases": rows}


def speed(args) -> dict:
    from predict_speed import typical_case

    from hepaseg.io.volumes import read_volume
    from hepaseg.model.device import resolve_device
    from hepaseg.model.unet import UNet

    device = resolve_device(args.device)
    config = preset(args.preset)
    torch.manual_seed(0)
    model = Predictor(UNet(config.model).to(device), config, device, args.precision)
    with tempfile.TemporaryDirectory() as tmp:
        image = read_volume(typical_case(Path(tmp))[0])
        times = []
        for i in range(args.warmup + args.cases):
            t0 = time.perf_counter()
            predict_liver(model, image)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
    return {"preset": config.preset, "device": str(device), "shape": list(image.shape), "cases": args.cases,
            "seconds_per_case_median": round(statistics.median(times), 3), "seconds": [round(t, 3) for t in times]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("quality", "speed"))
    parser.add_argument("--preset", default=None, help="liver preset (default: demo-liver / paper-liver)")
    parser.add_argument("--work", default="liver-bench", help="quality: the cohort and run folder")
    parser.add_argument("--name", default=None, help="quality: the run's folder in --work (default: the preset)")
    parser.add_argument("--set", action="append", default=[], dest="sets",
                        help="quality: change the preset, stage.field=JSON (e.g. train.iterations=1000)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--precision", default="auto", help="speed: auto, fp32 or bf16")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--cases", type=int, default=3, help="speed: timed cases")
    parser.add_argument("--warmup", type=int, default=1, help="speed: untimed cases first")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.preset = args.preset or ("demo-liver" if args.mode == "quality" else "paper-liver")
    result = quality(args) if args.mode == "quality" else speed(args)
    result["machine"] = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                         "torch": torch.__version__,
                         "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
