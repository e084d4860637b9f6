"""Commands that make and prepare data: ``synth``, ``manifest``, ``check``, ``preprocess``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputError
from .common import EXIT_BAD_INPUT, manifest_argument, preset_option, subparser, workers_option


def add_synth(sub) -> None:
    p = subparser(sub, "synth", "Write a synthetic hepatobiliary-phase MRI cohort with simulated raters.",
                   "hepaseg synth data/cohort --seed 0\n  hepaseg synth data/mini --small --seed 1\n"
                   "  hepaseg synth data/randomized --randomized   # the liver model's training cohort")
    p.add_argument("out", type=Path, help="output folder (gets dataset.json and one folder per case)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--small", action="store_true", help="a handful of small cases, made in seconds")
    size.add_argument("--randomized", action="store_true",
                      help="the liver model's randomised cohort: every tissue's signal, the signal chain, voxel "
                           "size (0.7-2 mm, slices 2-9 mm), field of view and shape drawn at random; livers only "
                           "(docs/liver-model.md)")
    workers_option(p)
    p.set_defaults(func=_run_synth)


def _run_synth(args) -> None:
    from ..synth import randomized_spec, write_cohort

    spec = randomized_spec() if args.randomized else None
    manifest = write_cohort(args.out, seed=args.seed, small=args.small, workers=args.workers, spec=spec)
    print(f"wrote {manifest}")


def add_check(sub) -> None:
    p = subparser(sub, "check", "Validate a dataset manifest and every file it names; exit 0 or 2.",
                   "hepaseg check data/cohort/dataset.json")
    manifest_argument(p)
    p.set_defaults(func=_run_check)


def _run_check(args) -> int:
    from ..data.manifest import check_dataset

    report = check_dataset(args.manifest)
    for problem in report.problems:
        print(problem.format(), file=sys.stderr if problem.severity == "error" else sys.stdout)
    print(report.summary())
    return EXIT_BAD_INPUT if report.errors else 0


def add_manifest(sub) -> None:
    p = subparser(sub, "manifest", "Write dataset.json for a folder with one sub-folder per case; splits "
                   "drawn by seed or read from a CSV.",
                   "hepaseg manifest my-cohort --raters R1,R2,R3 --seed 0 --val 0.1 --test 0.2\n"
                   "  hepaseg manifest my-cohort --splits splits.csv -o my-cohort/dataset.json --force")
    p.add_argument("folder", type=Path, help="cohort folder: <case id>/image.nii.gz (.nrrd, .mha, or a folder "
                                             "image/ or dicom/ of one DICOM series), liver.*, tumor_<RATER>.*")
    p.add_argument("-o", "--output", type=Path, metavar="MANIFEST", help="default FOLDER/dataset.json")
    p.add_argument("--raters", metavar="R1,R2,...", help="take only these raters (default: every tumor_<RATER> "
                                                         "name found, tumor_truth included)")
    p.add_argument("--train-rater", default="R1", metavar="NAME",
                   help="cases without this rater's mask are unlabeled (default R1)")
    p.add_argument("--seed", type=int, metavar="N", help="seed of the random split (default 0)")
    p.add_argument("--val", type=float, metavar="F", help="fraction of labelled cases for validation (default 0.1)")
    p.add_argument("--test", type=float, metavar="F", help="fraction of labelled cases for testing (default 0.2), "
                                                           "drawn first from those with every rater")
    p.add_argument("--splits", type=Path, metavar="CSV", help="columns case,split: fixes the splits instead "
                                                              "(unlisted cases without the training rater's mask "
                                                              "are unlabeled)")
    p.add_argument("--force", action="store_true", help="overwrite an existing manifest")
    p.set_defaults(func=_run_manifest)


def _run_manifest(args) -> None:
    from ..data.discover import parse_raters, write_manifest

    split_options = {name: value for name, value in (("seed", args.seed), ("val", args.val), ("test", args.test))
                     if value is not None}  # unset: build_manifest's defaults
    if args.splits is not None and split_options:
        raise InputError(None, "give either --splits or --seed/--val/--test, not both")
    written = write_manifest(args.folder, args.output, force=args.force, raters=parse_raters(args.raters),
                             train_rater=args.train_rater, splits_csv=args.splits, **split_options)
    for line in written.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(written.summary())
    print(f"next: hepaseg check {written.path}")


def add_preprocess(sub) -> None:
    p = subparser(sub, "preprocess", "Resample in-plane to 1 mm, normalise by liver percentiles, cache.",
                   "hepaseg preprocess data/cohort/dataset.json -o data/prep")
    manifest_argument(p)
    p.add_argument("-o", "--out", type=Path, required=True, help="cache folder")
    preset_option(p, config_file=True)
    workers_option(p)
    p.set_defaults(func=_run_preprocess)


def _run_preprocess(args) -> None:
    from ..presets import resolve_config
    from ..data.preprocess import preprocess_dataset

    summary = preprocess_dataset(args.manifest, args.out, resolve_config(args.preset, args.config).preprocess, workers=args.workers)
    print(f"{summary.done} cases prepared, {summary.skipped} unchanged, cache in {args.out}")
