"""``make demo``: a small synthetic cohort and the whole study with the demo preset, on the CPU.

Usage: ``python -m hepaseg.pipeline.demo [--out demo] [--seed 0]``. Re-running continues where it stopped
(the cohort is kept, the study resumes); delete the folder to start afresh.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..config import demo_config
from ..errors import InputError
from ..report.run import headline
from ..synth import CohortSpec, write_cohort
from .study import run_study


def demo_spec() -> CohortSpec:
    """A cohort small enough to train on 2 CPU cores in minutes, at clinical-like resolution.

    6 validation cases keep the model choice from hinging on one lesion; 19 test cases, as in the
    paper, keep the reported means and the Wilcoxon tests from hinging on one case.
    """
    return CohortSpec(name="hepaseg-demo", n_train=24, n_val=6, n_test=19, n_unlabeled=2,
                      inplane_mm=(1.5, 1.76), slice_mm=(3.0, 5.0), slices=(40, 60), matrix_max=256)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hepaseg.pipeline.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo"), help="demo folder (default ./demo)")
    parser.add_argument("--seed", type=int, default=0, help="cohort seed (default 0)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    manifest = args.out / "cohort" / "dataset.json"
    try:
        if not manifest.is_file():
            print(f"writing the synthetic demo cohort to {manifest.parent}")
            write_cohort(manifest.parent, seed=args.seed, spec=demo_spec())
        result = run_study(manifest, args.out / "study", demo_config(), resume=True, device="cpu")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(headline(result.evaluation))
    print()
    print(f"report: {result.report.resolve()}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
