"""The ``hepaseg`` command: parse arguments, call one library function, print.

Each subcommand has an ``_add_<name>`` function that builds its parser (with an example in the
help text) and sets ``func`` to a small runner. Bad input raises ``InputError``; ``main`` turns it
into one line on stderr and exit code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from .errors import InputError

EXIT_BAD_INPUT = 2


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _subparser(sub, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {example}",
        formatter_class=_formatter,
    )


# --- synth -------------------------------------------------------------------------------------


def _add_synth(sub) -> None:
    p = _subparser(sub, "synth", "Write a synthetic hepatobiliary-phase MRI cohort with simulated raters.",
                   "hepaseg synth data/cohort --seed 0\n  hepaseg synth data/mini --small --seed 1")
    p.add_argument("out", type=Path, help="output folder (gets dataset.json and one folder per case)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)")
    p.add_argument("--small", action="store_true", help="a handful of small cases, made in seconds")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.set_defaults(func=_run_synth)


def _run_synth(args) -> int:
    from .synth import write_cohort

    manifest = write_cohort(args.out, seed=args.seed, small=args.small, workers=args.workers)
    print(f"wrote {manifest}")
    return 0


# --- check -------------------------------------------------------------------------------------


def _add_check(sub) -> None:
    p = _subparser(sub, "check", "Validate a dataset manifest and every file it names; exit 0 or 2.",
                   "hepaseg check data/cohort/dataset.json")
    p.add_argument("manifest", type=Path, help="dataset.json")
    p.set_defaults(func=_run_check)


def _run_check(args) -> int:
    from .data.manifest import check_dataset

    report = check_dataset(args.manifest)
    for problem in report.problems:
        print(problem.format(), file=sys.stderr if problem.severity == "error" else sys.stdout)
    print(report.summary())
    return EXIT_BAD_INPUT if report.errors else 0


# --- manifest ----------------------------------------------------------------------------------


def _add_manifest(sub) -> None:
    p = _subparser(sub, "manifest", "Write dataset.json for a folder with one sub-folder per case; splits "
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


def _run_manifest(args) -> int:
    from .data.discover import parse_raters, write_manifest

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
    return 0


# --- preprocess --------------------------------------------------------------------------------


def _add_preprocess(sub) -> None:
    p = _subparser(sub, "preprocess", "Resample in-plane to 1 mm, normalise by liver percentiles, cache.",
                   "hepaseg preprocess data/cohort/dataset.json -o data/prep")
    p.add_argument("manifest", type=Path, help="dataset.json")
    p.add_argument("-o", "--out", type=Path, required=True, help="cache folder")
    p.add_argument("--preset", default="paper", help="configuration preset: paper or demo (default paper)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.set_defaults(func=_run_preprocess)


def _run_preprocess(args) -> int:
    from .config import resolve_config
    from .data.preprocess import preprocess_dataset

    summary = preprocess_dataset(args.manifest, args.out, resolve_config(args.preset).preprocess, workers=args.workers)
    print(f"{summary.done} cases prepared, {summary.skipped} unchanged, cache in {args.out}")
    return 0


# --- evaluate ----------------------------------------------------------------------------------


def _name_dir(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, Path(folder)


def _add_evaluate(sub) -> None:
    p = _subparser(sub, "evaluate",
                   "Evaluate predictions against every rater: Dice, phi, N:M lesion detection, paired "
                   "tests, the paper's tables and figures.",
                   "hepaseg evaluate data/cohort/dataset.json --pred A1=preds/a1 --pred A2=preds/a2 "
                   "-o eval/ --split test")
    p.add_argument("manifest", type=Path, help="dataset.json (its raters' masks are the references)")
    p.add_argument("--pred", type=_name_dir, action="append", required=True, metavar="NAME=DIR",
                   help="an algorithm and its folder of <case id>.nii.gz (.nii, .nrrd, .mha); repeat per "
                        "algorithm; the first two are compared statistically")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--split", default="test", help="which cases (default test)")
    p.add_argument("--preset", default="paper", help="configuration preset: paper or demo (default paper)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> int:
    from .config import resolve_config
    from .pipeline.evaluation import write_evaluation

    predictions = dict(args.pred)
    if len(predictions) != len(args.pred):
        raise InputError(None, "an algorithm name is given twice in --pred")
    results = write_evaluation(args.manifest, predictions, args.out, args.split, resolve_config(args.preset).evaluate,
                               args.workers)
    info = results.info
    print(f"evaluated {len(info.cases)} cases x {len(info.algorithms)} algorithms against "
          f"{', '.join(info.raters)}; results in {args.out}")
    return 0


# --- report ------------------------------------------------------------------------------------


def _add_report(sub) -> None:
    p = _subparser(sub, "report", "Write one self-contained HTML page (summary, tables, figures) from an "
                   "evaluation folder.", "hepaseg report eval/ -o eval/report.html")
    p.add_argument("folder", type=Path, help="output folder of 'hepaseg evaluate'")
    p.add_argument("-o", "--out", type=Path, default=None, help="HTML file (default FOLDER/report.html)")
    p.set_defaults(func=_run_report)


def _run_report(args) -> int:
    from .report.page import write_report

    print(f"wrote {write_report(args.folder, args.out or args.folder / 'report.html')}")
    return 0


# --- train -------------------------------------------------------------------------------------


def _add_train(sub) -> None:
    p = _subparser(sub, "train", "Train one aU-Net from one seed (algorithm A2); best validation state kept.",
                   "hepaseg train data/prep -o runs/a2 --preset paper --seed 0\n"
                   "  hepaseg train data/prep -o runs/demo --preset demo --seed 0\n"
                   "  hepaseg train data/prep -o runs/a2 --resume")
    p.add_argument("prep", type=Path, help="prepared-case cache (hepaseg preprocess)")
    p.add_argument("-o", "--out", type=Path, required=True, help="run folder (gets checkpoint.pt and model/)")
    p.add_argument("--preset", default=None, help="configuration preset: paper or demo (default paper; "
                                                  "with --resume: the run's own)")
    p.add_argument("--seed", type=int, default=None, metavar="N", help="random seed (default 0; with --resume: the run's own)")
    p.add_argument("--iterations", type=int, default=None, help="train this many iterations in all "
                                                                "(default: the preset's)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in the run folder")
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from dataclasses import replace

    from .config import resolve_config
    from .model.folder import model_dir
    from .training.checkpoint import CHECKPOINT
    from .training.train import run_settings, train_run

    resumed, resumed_seed = run_settings(args.out) if args.resume and (args.out / CHECKPOINT).exists() else (None, None)
    config = resolve_config(args.preset, resumed=resumed, where=args.out)
    if resumed_seed is not None and args.seed is not None and args.seed != resumed_seed:
        raise InputError(args.out, f"was started with seed {resumed_seed}; resume it without --seed")
    seed = resumed_seed if resumed_seed is not None else 0 if args.seed is None else args.seed
    if args.iterations is not None:
        config = config.replace(train=replace(config.train, iterations=args.iterations))
    result = train_run(args.prep, args.out, config, seed, device=args.device, resume=args.resume)
    best = "none" if result.best_jaccard is None else f"{result.best_jaccard:.4f}"
    print(f"{result.iterations_done} iterations; best validation Jaccard {best} at iteration "
          f"{result.best_iteration}; model in {model_dir(args.out)}")
    return 0


# --- predict -----------------------------------------------------------------------------------


def _add_predict(sub) -> None:
    p = _subparser(sub, "predict",
                   "Segment liver tumours with a trained model: one case, two folders, or a manifest.",
                   "hepaseg predict runs/a1/model -i patient.nii.gz -l liver.nii.gz -o tumor.nii.gz\n"
                   "  hepaseg predict runs/a1/model -i dicom_series_dir/ -l liver.nrrd -o out/ --format dicom-seg\n"
                   "  hepaseg predict runs/a1/model --dataset data/cohort/dataset.json --split test -o preds/a1\n"
                   "  hepaseg predict runs/a1/model -i images/ -l livers/ -o preds/a1   (folders: same file names)")
    p.add_argument("model", type=Path, help="model folder (weights.safetensors, config.json, model.json)")
    p.add_argument("-i", "--image", type=Path, help="image file or DICOM series folder; or a folder of images")
    p.add_argument("-l", "--liver", type=Path, help="liver mask on the image's grid; or a folder of them")
    p.add_argument("--dataset", type=Path, help="dataset.json: predict its cases into the folder -o")
    p.add_argument("--split", help="with --dataset: only this split (default: all cases)")
    p.add_argument("-o", "--out", type=Path, required=True,
                   help="mask file (one case), or output folder (batch, or DICOM-SEG of one case)")
    p.add_argument("--format", choices=("nifti", "nrrd", "dicom-seg"),
                   help="output format (default: from the file name; nifti in batch mode); "
                        "dicom-seg needs a DICOM input")
    p.add_argument("--save-probabilities", action="store_true",
                   help="also write <name>_probability.nii.gz (float32, original grid)")
    p.add_argument("--lesions", type=Path, help="one case: also write its lesion table here (batch: always "
                                                "<out>/lesions.csv)")
    p.add_argument("--tta", action="store_true", help="mirror test-time augmentation (8 flips, 8x slower)")
    p.add_argument("--threshold", type=float, help="probability threshold (default: the model's, 0.5)")
    p.add_argument("--no-restrict-to-liver", action="store_true", help="keep tumour outside the liver mask")
    p.add_argument("--no-border-opening", action="store_true", help="skip the liver-border clean-up")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="network arithmetic: auto = bf16 on CUDA, fp32 on the CPU; bf16 on a CPU with "
                        "bf16 instructions is several times faster")
    p.add_argument("--overwrite", action="store_true", help="batch: redo cases whose outputs exist")
    p.add_argument("--workers", type=int, default=None,
                   help="background reader threads (default 1 on the CPU, up to 4 on a GPU)")
    p.set_defaults(func=_run_predict)


def _run_predict(args) -> int:
    from tqdm import tqdm

    from .inference.batch import predict_paths

    infer = {"tta": True} if args.tta else {}
    if args.threshold is not None:
        infer["threshold"] = args.threshold
    if args.no_restrict_to_liver:
        infer["restrict_to_liver"] = False
    if args.no_border_opening:
        infer["border_opening"] = False
    summary = predict_paths(
        args.model, args.out, image=args.image, liver=args.liver, dataset=args.dataset, split=args.split,
        fmt=args.format, save_probabilities=args.save_probabilities, lesions_csv=args.lesions,
        overwrite=args.overwrite, device=args.device, precision=args.precision, infer=infer, workers=args.workers,
        on_error=lambda line: tqdm.write(line, file=sys.stderr))
    lesions = f"; lesions in {summary.lesions_csv}" if summary.lesions_csv else ""
    print(f"{summary.done} predicted, {summary.skipped} already done, {len(summary.failed)} failed{lesions}")
    return summary.exit_code


# --- select ------------------------------------------------------------------------------------


def _add_select(sub) -> None:
    p = _subparser(sub, "select", "Multi-model training (A1): successive halving over seeds; the winner's "
                   "best validation state becomes OUT/model.",
                   "hepaseg select data/prep -o runs/a1 --preset paper\n"
                   "  hepaseg select data/prep -o runs/a1 --preset paper --dry-run --its-per-second 1.4\n"
                   "  hepaseg select data/prep -o runs/a1 --backend ray --address auto\n"
                   "  hepaseg select data/prep -o runs/a1 --resume")
    p.add_argument("prep", type=Path, help="prepared-case cache (hepaseg preprocess); shared storage on a cluster")
    p.add_argument("-o", "--out", type=Path, required=True, help="selection folder (runs/, model/, "
                                                                 "selection.json, selection.csv, selection.png)")
    p.add_argument("--preset", default=None, help="configuration preset: paper or demo (default paper; "
                                                  "with --resume: the study's own)")
    p.add_argument("--config", type=Path, default=None, help="configuration JSON instead of a preset")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="where runs execute (default local)")
    p.add_argument("--workers", type=int, default=None, help="local: parallel runs (default one per GPU, "
                                                             "1 on the CPU)")
    p.add_argument("--device", default="auto", help="local: auto, cpu or cuda (default auto)")
    p.add_argument("--address", default=None, help="ray: cluster address, e.g. auto (default: a local Ray)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per run (local: default cores / "
                                                             "workers; ray: default 1, the CPUs asked per run)")
    p.add_argument("--resume", action="store_true", help="continue the study in OUT; finished runs are kept")
    p.add_argument("--dry-run", action="store_true", help="print the schedule as JSON and exit")
    p.add_argument("--its-per-second", type=float, default=None, help="dry run: single-run speed for the "
                                                                      "time estimate")
    p.add_argument("--its-from", type=Path, default=None, help="dry run: read the speed from an earlier study "
                                                               "or training run folder")
    p.set_defaults(func=_run_select)


def _run_select(args) -> int:
    import json

    from .config import resolve_config
    from .selection.executors import local_devices, make_executor
    from .selection.halving import dry_run, measured_its_per_second, resumed_config, run_selection

    config = resolve_config(args.preset, args.config, resumed_config(args.out) if args.resume else None, args.out)
    if args.dry_run:
        speed = measured_its_per_second(args.its_from) if args.its_from else args.its_per_second
        workers = len(local_devices(args.workers, args.device)) if args.backend == "local" else args.workers or 1
        print(json.dumps(dry_run(config, workers, speed), indent=2))
        return 0
    with make_executor(args.backend, args.workers, args.device, args.address, args.threads) as executor:
        result = run_selection(args.prep, args.out, config, executor, resume=args.resume)
    best = "none" if result.best_jaccard is None else f"{result.best_jaccard:.4f}"
    print(f"winner: seed {result.winner} (best validation Jaccard {best}); model in {result.model_dir}; "
          f"table {result.table}; figure {result.figure}")
    return 0


# --- study -------------------------------------------------------------------------------------


def _add_study(sub) -> None:
    p = _subparser(sub, "study", "Run the paper's experiment end to end: preprocess, A2, A1, predict, evaluate, report.",
                   "hepaseg study data/cohort/dataset.json -o study/ --preset paper\n"
                   "  hepaseg study data/cohort/dataset.json -o study/ --resume")
    p.add_argument("manifest", type=Path, help="dataset.json with train, val and test cases")
    p.add_argument("-o", "--out", type=Path, required=True, help="study folder")
    p.add_argument("--preset", default=None, help="configuration preset: paper or demo (default paper)")
    p.add_argument("--config", type=Path, default=None, help="a config.json to use instead of a preset")
    p.add_argument("--resume", action="store_true", help="continue a study; finished stages are skipped")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default auto")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.set_defaults(func=_run_study)


def _run_study(args) -> int:
    from .config import resolve_config
    from .pipeline.study import run_study
    from .report.run import headline

    config = resolve_config(args.preset, args.config)
    result = run_study(args.manifest, args.out, config, resume=args.resume, device=args.device, workers=args.workers)
    print(headline(result.evaluation))
    print(f"report: {result.report}")
    return 0


# --- main --------------------------------------------------------------------------------------

_COMMANDS = (_add_synth, _add_manifest, _add_check, _add_preprocess, _add_train, _add_evaluate, _add_report,
             _add_predict, _add_select, _add_study)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hepaseg",
        description="Liver tumour segmentation in late hepatobiliary-phase MRI.",
        epilog="example:\n  hepaseg synth data/mini --small --seed 1 && hepaseg check data/mini/dataset.json",
        formatter_class=_formatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
