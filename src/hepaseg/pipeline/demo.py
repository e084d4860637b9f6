"""``make demo``: a small synthetic cohort and the whole study with the demo preset, on the CPU, then
the blinded expert rating (Fig. 4) by a SIMULATED rater, which the report shows as such.

Usage: ``python -m hepaseg.pipeline.demo [--out demo] [--seed 0] [--workers N]``. Re-running continues where it stopped
(the cohort is kept, the study resumes); delete the folder to start afresh.

``--ablation`` (``make ablation``) runs the architecture ablation on the same cohort instead, into
``<out>/ablation``: the demo preset's aU-Net, 2D and isotropic 3D variants, ``--seeds`` seeds each,
``--iterations`` iterations per run (``ABLATION_ITERATIONS``, which bounds its time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..presets import demo_config
from ..errors import InputError
from ..rating import export_ratings, init_rating, simulate_ratings
from ..rating.prepare import open_store
from ..rating.store import DB_FILE
from ..report.run import headline
from ..synth import CohortSpec, write_cohort
from .study import ALGORITHMS, run_study

DEMO_RATER = "R3-simulated"
ABLATION_VARIANTS = ("aunet", "2d", "3d")
ABLATION_SEEDS = 3
ABLATION_ITERATIONS = 1000  # per run; the demo's A2 trains 3000


def demo_spec() -> CohortSpec:
    """A cohort small enough to train on 2 CPU cores in minutes, at clinical-like resolution.

    18 validation cases (6, and 12 drawn after all others, so the other cases stay those of earlier
    demos) halve the validation score's noise against 6 (bootstrap SE of the Jaccard about 0.06 vs 0.10,
    docs/training.md); 19 test cases, as in the paper, keep the reported means and the Wilcoxon tests
    from hinging on one case.
    """
    return CohortSpec(name="hepaseg-demo", n_train=24, n_val=6, n_test=19, n_unlabeled=2, n_val_late=12,
                      inplane_mm=(1.5, 1.76), slice_mm=(3.0, 5.0), slices=(40, 60), matrix_max=256)


def demo_rating(study: Path, seed: int = 0) -> dict:
    """The expert rating of a finished study's contours by the SIMULATED rater ``DEMO_RATER``:
    ``rate init`` into ``<study>/rating`` (once), ``rate simulate`` (unless complete), ``rate export``
    into ``<study>/rating/results``; returns the export's summary. Takes seconds."""
    folder = study / "rating"
    if not (folder / DB_FILE).is_file():
        init_rating(study, folder, [DEMO_RATER], algorithms=ALGORITHMS, seed=seed)  # Fig. 4: A1 and A2
    if not all(item.complete for item in open_store(folder).items()):
        simulate_ratings(folder, seed=seed)
    return export_ratings(folder, folder / "results").summary


def rating_lines(summary: dict) -> list[str]:
    """The rating's headline: per algorithm mean, median and share rated 4-5, labelled simulated."""
    who = "SIMULATED rater " if summary["simulated"] else "rater "
    lines = [f"expert rating (Fig. 4) by {who}{', '.join(summary['raters'])}, {summary['rated']} contours:"]
    for algorithm, d in summary["per_algorithm"].items():
        lines.append(f"  {algorithm}: mean {d['mean']:.2f}, median {d['median']:g}, "
                     f"rated 4-5: {d['share_4_5'] * 100:.0f} %")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hepaseg.pipeline.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo"), help="demo folder (default ./demo)")
    parser.add_argument("--seed", type=int, default=0, help="cohort seed (default 0)")
    parser.add_argument("--workers", type=int, default=None,
                        help="parallel processes for pre-processing and evaluation, and the worker processes "
                             "the liver model, A2 and A1 train in side by side (default 2, each with cores / 2 torch "
                             "threads; 1: one after another)")
    parser.add_argument("--ablation", action="store_true", help="run the architecture ablation instead (make ablation)")
    parser.add_argument("--seeds", type=int, default=ABLATION_SEEDS, help=f"ablation: seeds per variant "
                                                                          f"(default {ABLATION_SEEDS})")
    parser.add_argument("--iterations", type=int, default=ABLATION_ITERATIONS,
                        help=f"ablation: iterations per run (default {ABLATION_ITERATIONS})")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    manifest = args.out / "cohort" / "dataset.json"
    try:
        if not manifest.is_file():
            print(f"writing the synthetic demo cohort to {manifest.parent}")
            write_cohort(manifest.parent, seed=args.seed, spec=demo_spec())
        if args.ablation:
            return _ablation(manifest, args, started)
        result = run_study(manifest, args.out / "study", demo_config(), resume=True, device="cpu",
                           workers=args.workers)
        print("[rating] the blinded expert rating by a SIMULATED rater")
        summary = demo_rating(result.folder, seed=args.seed)
        result = run_study(manifest, args.out / "study", demo_config(), resume=True, device="cpu",
                           workers=args.workers)  # report
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(headline(result.evaluation))
    print("\n".join(rating_lines(summary)))
    print()
    print(f"report: {result.report.resolve()}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return 0


def _ablation(manifest: Path, args, started: float) -> int:
    """The demo cohort's architecture ablation (``--ablation``); prints its headline and report."""
    from dataclasses import replace

    from ..report.ablation import headline as ablation_headline
    from .ablation import run_ablation

    base = demo_config()
    base = base.replace(train=replace(base.train, iterations=args.iterations))
    result = run_ablation(manifest, args.out / "ablation", base, ABLATION_VARIANTS, seeds=args.seeds, resume=True,
                          device="cpu", workers=args.workers)
    print()
    print(ablation_headline(result.evaluation, result.folder))
    print(f"report: {result.report.resolve()}")
    print(f"ablation finished in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
