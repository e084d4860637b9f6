"""Commands that evaluate and report: ``evaluate``, ``report``, and the end-to-end ``study``."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .common import manifest_argument, name_dir, name_label, preset_option, subparser, workers_option


def add_evaluate(sub) -> None:
    p = subparser(sub, "evaluate",
                   "Evaluate any number of algorithms against every rater: Dice, ASSD, HD95, phi, N:M "
                   "lesion detection, paired tests of every pair, the paper's tables and figures.",
                   "hepaseg evaluate data/cohort/dataset.json --pred A1=preds/a1 --pred A2=preds/a2 "
                   "-o eval/ --split test\n"
                   "  hepaseg evaluate data/cohort/dataset.json --pred A1=study/preds/A1 --pred A2=study/preds/A2 "
                   "--pred nnUNet=nnunet_out --label nnUNet=2 --reference nnUNet -o eval/")
    manifest_argument(p, " (its raters' masks are the references)")
    p.add_argument("--pred", type=name_dir, action="append", required=True, metavar="NAME=DIR",
                   help="an algorithm and its folder of <case id>.nii.gz (.nii, .nrrd, .mha); repeat per "
                        "algorithm (tables and figures follow this order)")
    p.add_argument("--label", action="append", default=[], metavar="NAME=L",
                   help="take the voxels equal to L as tumour in NAME's multi-class masks (nnU-Net writes "
                        "0/1/2: --label nnUNet=2); repeat per algorithm; default: binary masks")
    p.add_argument("--reference", default=None, metavar="NAME",
                   help="test every algorithm against NAME only (default: every pair of algorithms)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--split", default="test", help="which cases (default test)")
    preset_option(p, config_file=True)
    workers_option(p)
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> None:
    from ..presets import resolve_config
    from ..pipeline.evaluation import write_evaluation

    predictions, labels = dict(args.pred), dict(name_label(t) for t in args.label)
    if len(predictions) != len(args.pred):
        raise InputError("--pred", "an algorithm name is given twice")
    if len(labels) != len(args.label):
        raise InputError("--label", "an algorithm name is given twice")
    config = resolve_config(args.preset, args.config).evaluate
    results = write_evaluation(args.manifest, predictions, args.out, args.split, config, args.workers, labels,
                               args.reference)
    info = results.info
    print(f"evaluated {len(info.cases)} cases x {len(info.algorithms)} algorithms against "
          f"{', '.join(info.raters)}; results in {args.out}")


def add_report(sub) -> None:
    p = subparser(sub, "report", "Write one self-contained HTML page (summary, tables, figures) from an "
                   "evaluation folder.", "hepaseg report eval/ -o eval/report.html")
    p.add_argument("folder", type=Path, help="output folder of 'hepaseg evaluate'")
    p.add_argument("-o", "--out", type=Path, default=None, help="HTML file (default FOLDER/report.html)")
    p.add_argument("--rating", type=Path, default=None,
                   help="results of 'hepaseg rate export' (default: FOLDER/../rating/results if present)")
    p.set_defaults(func=_run_report)


def _run_report(args) -> None:
    from ..report.page import write_report

    print(f"wrote {write_report(args.folder, args.out or args.folder / 'report.html', rating=args.rating)}")


def add_study(sub) -> None:
    p = subparser(sub, "study", "Run the paper's experiment end to end: preprocess, liver model, A2, A1, predict, "
                   "evaluate, report; or, with --variants, the architecture ablation (every variant trained with "
                   "the same seeds and budget, evaluated against every rater).",
                   "hepaseg study data/cohort/dataset.json -o study/ --preset paper\n"
                   "  hepaseg study data/cohort/dataset.json -o study/ --resume\n"
                   "  hepaseg study data/cohort/dataset.json -o ablation/ --variants aunet,2d,3d --preset demo --seeds 3\n"
                   "  hepaseg study data/cohort/dataset.json -o ablation/ --variants aunet,2d,3d --backend ray "
                   "--address auto")
    manifest_argument(p, " with train, val and test cases")
    p.add_argument("-o", "--out", type=Path, required=True, help="study folder")
    preset_option(p, resumed="the study's own", config_file=True)
    p.add_argument("--resume", action="store_true", help="continue a study (its own configuration); finished "
                                                         "stages are skipped")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default auto")
    workers_option(p, "parallel processes for pre-processing and evaluation; on the CPU also the worker processes the "
                      "liver model, A2 and A1 train in side by side (default 2; 1: one after another in this process)")
    p.add_argument("--liver-config", type=Path, default=None, metavar="FILE",
                   help="the liver model's config.json (default: the liver preset of --preset: demo-liver "
                        "or paper-liver; with --resume: the study's own)")
    p.add_argument("--variants", default=None, metavar="V,V,...",
                   help="run the architecture ablation instead: aunet (the paper's), 2d, 3d (isotropic), "
                        "comma-separated, derived from --preset / --config")
    p.add_argument("--seeds", type=int, default=None, help="ablation: runs per variant (default 3)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="ablation: where the training runs execute (default local)")
    p.add_argument("--address", default=None, help="ablation, ray: cluster address, e.g. auto (default: a local Ray)")
    p.set_defaults(func=_run_study)


def _run_study(args) -> None:
    from ..config import read_config
    from ..presets import check_config, resolve_config
    from ..pipeline.study import resumed_config, run_study
    from ..report.run import headline

    config = resolve_config(args.preset, args.config, resumed_config(args.out) if args.resume else None, args.out)
    if args.variants is not None:
        _run_ablation(args, config)
        return
    if args.seeds is not None or args.backend != "local" or args.address is not None:
        raise InputError("--seeds", "--seeds, --backend and --address are options of the ablation (--variants)")
    liver = None if args.liver_config is None else check_config(read_config(args.liver_config), args.liver_config,
                                                                "the liver model's configuration")
    result = run_study(args.manifest, args.out, config, resume=args.resume, device=args.device, workers=args.workers,
                       liver_config=liver)
    print(headline(result.evaluation))
    print(f"report: {result.report}")


def _run_ablation(args, config) -> None:
    from ..pipeline.ablation import parse_variants, run_ablation
    from ..report.ablation import headline

    if args.liver_config is not None:
        raise InputError("--liver-config", "the ablation trains no liver model (it uses the given livers)")
    result = run_ablation(args.manifest, args.out, config, parse_variants(args.variants),
                          seeds=3 if args.seeds is None else args.seeds, resume=args.resume, device=args.device,
                          workers=args.workers, backend=args.backend, address=args.address)
    print(headline(result.evaluation, result.folder))
    print(f"report: {result.report}")
