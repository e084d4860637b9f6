"""Commands that evaluate and report: ``evaluate``, ``report``, and the end-to-end ``study``."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .common import manifest_argument, name_dir, preset_option, subparser, workers_option


def add_evaluate(sub) -> None:
    p = subparser(sub, "evaluate",
                   "Evaluate predictions against every rater: Dice, phi, N:M lesion detection, paired "
                   "tests, the paper's tables and figures.",
                   "hepaseg evaluate data/cohort/dataset.json --pred A1=preds/a1 --pred A2=preds/a2 "
                   "-o eval/ --split test")
    manifest_argument(p, " (its raters' masks are the references)")
    p.add_argument("--pred", type=name_dir, action="append", required=True, metavar="NAME=DIR",
                   help="an algorithm and its folder of <case id>.nii.gz (.nii, .nrrd, .mha); repeat per "
                        "algorithm; the first two are compared statistically")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--split", default="test", help="which cases (default test)")
    preset_option(p)
    workers_option(p)
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> None:
    from ..config import resolve_config
    from ..pipeline.evaluation import write_evaluation

    predictions = dict(args.pred)
    if len(predictions) != len(args.pred):
        raise InputError(None, "an algorithm name is given twice in --pred")
    results = write_evaluation(args.manifest, predictions, args.out, args.split, resolve_config(args.preset).evaluate,
                               args.workers)
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
    p = subparser(sub, "study", "Run the paper's experiment end to end: preprocess, A2, A1, predict, evaluate, report.",
                   "hepaseg study data/cohort/dataset.json -o study/ --preset paper\n"
                   "  hepaseg study data/cohort/dataset.json -o study/ --resume")
    manifest_argument(p, " with train, val and test cases")
    p.add_argument("-o", "--out", type=Path, required=True, help="study folder")
    preset_option(p, config_file=True)
    p.add_argument("--resume", action="store_true", help="continue a study; finished stages are skipped")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default auto")
    workers_option(p)
    p.set_defaults(func=_run_study)


def _run_study(args) -> None:
    from ..config import resolve_config
    from ..pipeline.study import run_study
    from ..report.run import headline

    config = resolve_config(args.preset, args.config)
    result = run_study(args.manifest, args.out, config, resume=args.resume, device=args.device, workers=args.workers)
    print(headline(result.evaluation))
    print(f"report: {result.report}")
