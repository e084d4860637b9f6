"""Speed of the synthetic cohort generator; prints JSON.

Times ``write_case`` (generate + write all files) on a sample of default-cohort cases in this
process and reports seconds per case and per million voxels; with ``--full OUT`` it also writes
the whole default cohort with ``--workers`` processes and reports its wall time.

    python benchmarks/synth_speed.py                        # sample of 6 cases
    python benchmarks/synth_speed.py --full data/cohort     # the whole default cohort, 2 workers
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from hepaseg.synth import default_spec, write_case, write_cohort


def sample(indices: list[int], seed: int) -> dict:
    spec = default_spec()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in indices:
            start = time.perf_counter()
            entry = write_case(spec, seed, index, tmp)
            seconds = time.perf_counter() - start
            shape = json.loads((Path(tmp) / entry["id"] / "meta.json").read_text())["geometry"]["shape"]
            rows.append({"case": entry["id"], "shape": shape, "seconds": round(seconds, 2),
                         "mvoxels": round(float(np.prod(shape)) / 1e6, 2)})
    total_s = sum(r["seconds"] for r in rows)
    total_mv = sum(r["mvoxels"] for r in rows)
    return {"cases": rows, "seconds_per_case": round(total_s / len(rows), 2),
            "seconds_per_mvoxel": round(total_s / total_mv, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, nargs="*", default=[0, 20, 40, 60, 80, 100],
                        help="case indices to time one by one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", type=Path, default=None, help="also write the whole default cohort here")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = {"cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
              "sample": sample(args.cases, args.seed)}
    if args.full is not None:
        start = time.perf_counter()
        write_cohort(args.full, seed=args.seed, workers=args.workers)
        result["full_cohort"] = {"cases": default_spec().n_cases, "workers": args.workers,
                                 "wall_seconds": round(time.perf_counter() - start, 1),
                                 "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
