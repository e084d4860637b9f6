"""Commands that train and apply models: ``train`` (A2), ``select`` (A1), ``train-liver``, ``predict``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputError
from .common import preset_option, subparser


def add_train(sub) -> None:
    p = subparser(sub, "train", "Train one aU-Net from one seed (algorithm A2); best validation state kept.",
                   "hepaseg train data/prep -o runs/a2 --preset paper --seed 0\n"
                   "  hepaseg train data/prep -o runs/demo --preset demo --seed 0\n"
                   "  hepaseg train data/prep -o runs/a2 --resume")
    p.add_argument("prep", type=Path, help="prepared-case cache (hepaseg preprocess)")
    p.add_argument("-o", "--out", type=Path, required=True, help="run folder (gets checkpoint.pt and model/)")
    preset_option(p, resumed="the run's own", config_file=True)
    p.add_argument("--seed", type=int, default=None, metavar="N", help="random seed (default 0; with --resume: the run's own)")
    p.add_argument("--iterations", type=int, default=None, help="train this many iterations in all "
                                                                "(default: the preset's; a learning-rate "
                                                                "warm-up is cut to at most a tenth of them)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--resume", action="store_true", help="continue the run in the folder (its own preset, configuration and seed)")
    liver_model_option(p)
    p.set_defaults(func=_run_train)


def liver_model_option(p) -> None:
    p.add_argument("--liver-model", type=Path, default=None, metavar="DIR",
                   help="a liver model folder (hepaseg train-liver: RUN/model) to embed as OUT/model/liver, "
                        "so that predict needs no liver mask")


def _embed_liver(liver_model: Path | None, folder: Path) -> str:
    """Embed the liver model (if given) in the model folder; the phrase the command prints."""
    from ..model.folder import embed_liver_model

    return f"; liver model in {embed_liver_model(liver_model, folder)}" if liver_model is not None else ""


def _run_config_and_seed(args, preset_name: str | None):
    """The configuration and seed of a training run (``--preset`` / ``--config`` / ``--resume``, ``--seed``,
    ``--iterations``), as ``presets.resolve_config`` resolves them for a run folder ``args.out``."""
    from ..presets import resolve_config
    from ..training.train import run_settings

    resumed, resumed_seed = run_settings(args.out) if args.resume else (None, None)
    config = resolve_config(preset_name, args.config, resumed, args.out, scope="training", iterations=args.iterations)
    if resumed_seed is not None and args.seed is not None and args.seed != resumed_seed:
        raise InputError(args.out, f"was started with seed {resumed_seed}; resume it without --seed")
    seed = resumed_seed if resumed_seed is not None else 0 if args.seed is None else args.seed
    return config, seed


def add_train_liver(sub) -> None:
    p = subparser(sub, "train-liver", "Train the liver model (whole field of view, coarse grid) on the "
                   "manifest's liver masks: train cases train, val cases choose the best state.",
                   "hepaseg train-liver data/cohort/dataset.json -o runs/liver --preset demo\n"
                   "  hepaseg train runs/prep -o runs/a2 --liver-model runs/liver/model\n"
                   "  hepaseg train-liver data/cohort/dataset.json -o runs/liver --resume\n"
                   "  hepaseg train-liver --randomized -o runs/shipped   (the shipped liver model, from scratch: "
                   "hours on a CPU; --resume continues)")
    p.add_argument("manifest", type=Path, nargs="?", help="dataset.json (its liver masks are the target)")
    p.add_argument("--randomized", action="store_true",
                   help="instead of a manifest: train on the randomised synthetic cohort, written into OUT/cohort "
                        "with the run's seed (hepaseg synth --randomized); default preset synth-liver")
    p.add_argument("-o", "--out", type=Path, required=True, help="run folder (gets prep/, checkpoint.pt, model/)")
    p.add_argument("--preset", default=None, help="paper or demo: the liver model that goes with that tumour "
                                                  "preset (paper-liver / demo-liver; default paper; with "
                                                  "--resume: the run's own)")
    p.add_argument("--config", type=Path, default=None, help="a liver config.json to use instead of a preset")
    p.add_argument("--seed", type=int, default=None, metavar="N", help="random seed (default 0)")
    p.add_argument("--iterations", type=int, default=None, help="train this many iterations in all "
                                                                "(default: the preset's; a learning-rate "
                                                                "warm-up is cut to at most a tenth of them)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--resume", action="store_true", help="continue the run in the folder")
    p.add_argument("--workers", type=int, default=None, help="pre-processing processes (default: all cores)")
    p.set_defaults(func=_run_train_liver)


def _run_train_liver(args) -> None:
    from ..model.folder import model_dir
    from ..training.liver import train_liver

    from ..training.liver import randomized_manifest

    if (args.manifest is None) == (not args.randomized):
        raise InputError(args.manifest, "give either a manifest or --randomized")
    name = args.preset if args.preset is None or args.preset.endswith("-liver") else f"{args.preset}-liver"
    if name is None and args.config is None and not args.resume:
        name = "synth-liver" if args.randomized else "paper-liver"
    config, seed = _run_config_and_seed(args, name)
    manifest = randomized_manifest(args.out, seed, args.workers) if args.randomized else args.manifest
    result = train_liver(manifest, args.out, config, seed, device=args.device, resume=args.resume,
                         workers=args.workers)
    best = "none" if result.best_score is None else f"{result.best_score:.4f}"
    print(f"{result.iterations_done} iterations; best validation liver Jaccard {best} at iteration "
          f"{result.best_iteration}; liver model in {model_dir(args.out)}")


def _run_train(args) -> None:
    from ..model.folder import check_liver_model, model_dir
    from ..training.train import train_run
    from ..training.validation import metric_label

    config, seed = _run_config_and_seed(args, args.preset)
    if args.liver_model is not None:
        check_liver_model(args.liver_model)  # before hours of training, not after
    result = train_run(args.prep, args.out, config, seed, device=args.device, resume=args.resume)
    liver = _embed_liver(args.liver_model, model_dir(args.out))
    best = "none" if result.best_score is None else f"{result.best_score:.4f}"
    print(f"{result.iterations_done} iterations; best validation {metric_label(config.train.validation_metric)} "
          f"{best} at iteration {result.best_iteration}; model in {model_dir(args.out)}{liver}")


def add_liver(sub) -> None:
    p = subparser(sub, "liver", "Segment the liver of any MRI (NIfTI, NRRD, MHA or a DICOM series) with a liver "
                   "model; by default the one shipped with hepaseg (trained on randomised synthetic data only).",
                   "hepaseg liver -i patient.nii.gz -o liver.nii.gz\n"
                   "  hepaseg liver -i dicom_series_dir/ -o liver.nrrd --device cpu\n"
                   "  hepaseg liver -i patient.nii.gz -o liver.nii.gz --model runs/liver/model")
    p.add_argument("-i", "--image", type=Path, required=True, help="image file or DICOM series folder")
    p.add_argument("-o", "--out", type=Path, required=True, help="mask file (.nii.gz, .nii, .nrrd or .mha)")
    p.add_argument("--model", type=Path, default=None,
                   help="a liver model folder (hepaseg train-liver: RUN/model; default: the shipped model)")
    p.add_argument("--series", metavar="UID", help="the Series Instance UID to read from a DICOM folder holding "
                                                   "several series")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.set_defaults(func=_run_liver)


def _run_liver(args) -> None:
    from ..inference.liver_file import write_liver

    result = write_liver(args.image, args.out, args.model, args.device, args.series)
    print(f"wrote {result.path}: liver {result.volume_ml:.0f} mL ({result.seconds:.1f} s)")


def add_predict(sub) -> None:
    from ..io.dicom_results import OBJECTS

    p = subparser(sub, "predict",
                   "Segment liver tumours with a trained model: one case, two folders, or a manifest.",
                   "hepaseg predict runs/a1/model -i patient.nii.gz -l liver.nii.gz -o tumor.nii.gz\n"
                   "  hepaseg predict runs/a1/model -i dicom_series_dir/ -l liver.nrrd -o out/   (out/: tumor, liver, "
                   "lesions.csv, overview.png; DICOM: segmentation.dcm, report.dcm, rtstruct.dcm, overview.dcm)\n"
                   "  hepaseg predict runs/a1/model -i dicom_series_dir/ -o out/ --objects seg,sr\n"
                   "  hepaseg predict runs/a1/model -i dicom_series_dir/ -l liver.nrrd -o out/ --format dicom-seg\n"
                   "  hepaseg predict runs/a1/model --dataset data/cohort/dataset.json --split test -o preds/a1\n"
                   "  hepaseg predict runs/a1/model -i images/ -l livers/ -o preds/a1   (folders: same file names)\n"
                   "  hepaseg predict runs/a1/model -i patient/dicom/ -o out/   (no -l: the model's liver model)")
    p.add_argument("model", type=Path, help="model folder (weights.safetensors, config.json, model.json)")
    p.add_argument("-i", "--image", type=Path, help="image file or DICOM series folder; or a folder of images")
    p.add_argument("-l", "--liver", type=Path, help="liver mask on the image's grid; or a folder of them "
                                                    "(default: made by the model's liver model, MODEL/liver)")
    p.add_argument("--series", metavar="UID", help="one case: the Series Instance UID to read from a DICOM "
                                                   "folder holding several series")
    p.add_argument("--dataset", type=Path, help="dataset.json: predict its cases into the folder -o")
    p.add_argument("--split", help="with --dataset: only this split (default: all cases)")
    p.add_argument("-o", "--out", type=Path, required=True,
                   help="one case: a folder (gets every output) or a mask file (that file only); batch: "
                        "the output folder")
    p.add_argument("--format", choices=("nifti", "nrrd", "dicom-seg"),
                   help="mask format (default: from the file name; nifti for a folder); dicom-seg needs a "
                        "DICOM input and, with a folder -o, writes only <out>/tumor.dcm")
    p.add_argument("--objects", default=",".join(OBJECTS), metavar="KINDS",
                   help="one DICOM series into a folder -o: the DICOM objects written beside the NIfTI outputs, "
                        f"any of {','.join(OBJECTS)} (default: all; docs/dicom.md); one the series cannot give "
                        "is left out with a line saying why, and the exit code is 1")
    p.add_argument("--save-probabilities", action="store_true",
                   help="also write <name>_probability.nii.gz (float32, original grid)")
    p.add_argument("--lesions", type=Path, help="one case with a mask file -o: also write its lesion table here "
                                                "(a folder -o and a batch: always <out>/lesions.csv)")
    p.add_argument("--tta", action="store_true", help="mirror test-time augmentation (the 4 in-plane flips; about 2.3x the network time; "
                                                           "default: the model's setting, on in the demo preset)")
    p.add_argument("--threshold", type=float, help="probability threshold (default: the model's, 0.5)")
    p.add_argument("--no-restrict-to-liver", action="store_true", help="keep tumour outside the liver mask")
    p.add_argument("--no-border-opening", action="store_true", help="skip the liver-border clean-up")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="network arithmetic: auto (default) = as the model trained (bf16 where its "
                        "train.mixed_precision is on and the device has bf16: CUDA, or a CPU with AVX512-BF16 / "
                        "AMX; else fp32), so a study's model folder predicts the study's own masks")
    p.add_argument("--overwrite", action="store_true", help="batch: redo cases whose outputs exist")
    p.add_argument("--workers", type=int, default=None,
                   help="background reader threads (default 1 on the CPU, up to 4 on a GPU)")
    p.set_defaults(func=_run_predict)


def _run_predict(args) -> int:
    from ..inference.batch import predict_paths
    from ..inference.dicom_outputs import parse_objects

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
        series=args.series, objects=parse_objects(args.objects))
    for line in summary.objects_left_out:
        print(f"warning: {line}", file=sys.stderr)
    lesions = f"; lesions in {summary.lesions_csv}" if summary.lesions_csv else ""
    print(f"{summary.done} predicted, {summary.skipped} already done, {len(summary.failed)} failed{lesions}")
    return summary.exit_code


def add_select(sub) -> None:
    p = subparser(sub, "select", "Multi-model training (A1): successive halving over seeds; the winner's "
                   "best validation state becomes OUT/model.",
                   "hepaseg select data/prep -o runs/a1 --preset paper\n"
                   "  hepaseg select data/prep -o runs/a1 --preset paper --dry-run --its-per-second 1.4\n"
                   "  hepaseg select data/prep -o runs/a1 --backend ray --address auto\n"
                   "  hepaseg select data/prep -o runs/a1 --resume")
    p.add_argument("prep", type=Path, help="prepared-case cache (hepaseg preprocess); shared storage on a cluster")
    p.add_argument("-o", "--out", type=Path, required=True, help="selection folder (runs/, model/, "
                                                                 "selection.json, selection.csv, selection.png)")
    preset_option(p, resumed="the selection's own", config_file=True)
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="where runs execute (default local)")
    p.add_argument("--workers", type=int, default=None, help="local: parallel runs (default one per GPU, "
                                                             "1 on the CPU)")
    p.add_argument("--device", default="auto", help="local: auto, cpu or cuda (default auto)")
    p.add_argument("--address", default=None, help="ray: cluster address, e.g. auto (default: a local Ray)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per run (local: default cores / "
                                                             "workers; ray: default 1, the CPUs asked per run)")
    p.add_argument("--resume", action="store_true", help="continue the selection in OUT; finished runs are kept")
    liver_model_option(p)
    p.add_argument("--dry-run", action="store_true", help="print the schedule as JSON and exit")
    p.add_argument("--its-per-second", type=float, default=None, help="dry run: single-run speed for the "
                                                                      "time estimate")
    p.add_argument("--its-from", type=Path, default=None, help="dry run: read the speed from an earlier selection "
                                                               "or training run folder")
    p.set_defaults(func=_run_select)


def _run_select(args) -> None:
    import json

    from ..presets import resolve_config
    from ..model.folder import check_liver_model
    from ..selection.executors import local_devices, make_executor
    from ..selection.halving import (
        check_selection_feasible,
        dry_run,
        measured_its_per_second,
        resumed_config,
        run_selection,
    )
    from ..training.validation import metric_label

    config = resolve_config(args.preset, args.config, resumed_config(args.out) if args.resume else None, args.out,
                            scope="selection")
    if args.liver_model is not None:
        check_liver_model(args.liver_model)
    if args.dry_run:
        speed = measured_its_per_second(args.its_from) if args.its_from else args.its_per_second
        workers = len(local_devices(args.workers, args.device)) if args.backend == "local" else args.workers or 1
        print(json.dumps(dry_run(config, workers, speed), indent=2))
        return
    with make_executor(args.backend, args.workers, args.device, args.address, args.threads) as executor:
        if args.backend == "local" and args.device == "auto":
            check_selection_feasible(config, executor.slots)
        result = run_selection(args.prep, args.out, config, executor, resume=args.resume)
    liver = _embed_liver(args.liver_model, result.model_dir)
    best = "none" if result.best_score is None else f"{result.best_score:.4f}"
    print(f"winner: seed {result.winner} (best validation {metric_label(config.train.validation_metric)} {best}); "
          f"model in {result.model_dir}{liver}; "
          f"table {result.table}; figure {result.figure}")
