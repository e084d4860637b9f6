"""Overhead of successive halving (A1) over plain training, on this machine; prints JSON.

Usage: .venv/bin/python benchmarks/select_overhead.py [--runs 4 --min 10 --max 40 --workers 1 --device cpu]

Makes a small synthetic cohort (``hepaseg synth --small``), pre-processes it with the demo
preset, then
1. trains one run of ``--max`` iterations from scratch: the single-run speed (it/s, with its
   validations and start-up, as a user sees it);
2. runs a study (``--runs`` seeds, budgets ``--min`` .. ``--max``, eta 2) with the local
   executor (``--workers`` runs at a time on ``--device``), and compares its wall time with
   - the sum of its tasks' times / workers (the driver's own cost: state, ranking, table, figure),
   - the schedule's critical path for that many workers / single-run speed (the target: within
     5 %; with one worker, total iterations / single-run speed).
Every budget is a multiple of ``validate_every`` (= ``--min``), as in the paper's 5k / 500.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from hepaseg.config import SelectConfig

from hepaseg.presets import demo_config
from hepaseg.data.preprocess import preprocess_dataset
from hepaseg.selection.executors import LocalExecutor, local_devices
from hepaseg.selection.halving import run_config, run_selection
from hepaseg.selection.schedule import makespan_iterations, successive_halving, total_iterations
from hepaseg.synth import write_cohort
from hepaseg.training.train import train_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--min", type=int, default=10, help="first budget, also validate_every")
    parser.add_argument("--max", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1, help="parallel runs (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    args = parser.parse_args()
    base = demo_config()
    config = base.replace(train=replace(base.train, validate_every=args.min, log_every=args.min),
                          select=SelectConfig(runs=args.runs, min_iterations=args.min, max_iterations=args.max))
    devices = local_devices(args.workers, args.device)
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    schedule = successive_halving(config.select)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = write_cohort(root / "cohort", seed=0, small=True, workers=1)
        preprocess_dataset(manifest, root / "prep", config.preprocess, workers=1, progress=False)

        import torch

        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        train_run(root / "prep", root / "single", run_config(config), seed=0, device=devices[0], progress=False)
        single_s = time.perf_counter() - t0
        its = args.max / single_s

        with LocalExecutor(devices, threads=threads) as executor:
            result = run_selection(root / "prep", root / "study", config, executor, progress=False)
    total = total_iterations(schedule)
    critical = makespan_iterations(schedule, args.workers)
    print(json.dumps({
        "benchmark": "select_overhead",
        "preset": "demo", "runs": args.runs, "budgets": [r.iterations for r in schedule],
        "device": devices[0], "workers": args.workers, "threads_per_run": threads,
        "total_iterations": total, "single_run_iterations": args.max,
        "single_run_s": round(single_s, 2), "single_run_its_per_s": round(its, 3),
        "study_wall_s": round(result.wall_seconds, 2), "sum_of_task_s": round(result.task_seconds, 2),
        "driver_overhead_pct": round(100 * (result.wall_seconds / (result.task_seconds / args.workers) - 1), 2),
        "ideal_wall_s": round(critical / its, 2),
        "wall_vs_ideal_pct": round(100 * (result.wall_seconds * its / critical - 1), 2),
        "winner": result.winner,
        "machine": f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores".strip(),
    }))


if __name__ == "__main__":
    main()
