"""Test quality of one demo-preset training variant on the demo cohort; prints JSON (issue 17).

    PYTHONPATH=src python benchmarks/demo_quality.py --exp /work/exp --name base
    PYTHONPATH=src python benchmarks/demo_quality.py --exp /work/exp --name cos3k \
        --set train.iterations=3000 --set train.lr_schedule='"cosine"' --set train.warmup_iterations=100
    PYTHONPATH=src python benchmarks/demo_quality.py --exp /work/exp --name v24 --extra-val 18

Into ``--exp`` (kept between calls, so variants share it): the demo cohort (``demo_spec()``, seed 0),
optionally ``--extra-val N`` more validation cases (from a cohort of seed 1 with 18 validation cases,
``<exp>/extraval``; the demo's own cases, test cases included, stay the same), their prepared caches,
then per variant ``runs/<name>`` (``train_run``, seed ``--seed``, default 4 = the demo's A2 seed),
``preds/<name>`` (``predict_paths`` on the 19 test cases, the study's call) and ``eval/<name>``
(``pipeline.evaluation.write_evaluation``, the study's evaluation). Prints the validation history
(every metric at every validation), the best iteration, the loop's it/s, and the test mean Dice vs
the raters and detection F1 (the numbers ``make demo``'s headline shows), with the raters' own.
``--set stage.field=JSON`` changes the demo preset; ``--threads`` sets torch's CPU threads.
``--no-eval`` only trains (speed runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path


def cohorts(exp: Path, extra_val: int, preprocess) -> tuple[Path, Path]:
    """(manifest of the demo cohort, prepared cache with ``extra_val`` more validation cases), the cache
    prepared with ``preprocess`` (a ``PreprocessConfig``; its folder named by the in-plane spacing)."""
    from hepaseg.data.preprocess import preprocess_dataset
    from hepaseg.pipeline.demo import demo_spec
    from hepaseg.synth import write_cohort

    manifest = exp / "cohort" / "dataset.json"
    if not manifest.is_file():
        write_cohort(manifest.parent, seed=0, spec=demo_spec(), progress=False)
    source = manifest
    if extra_val:
        extra = exp / "extraval" / "dataset.json"
        if not extra.is_file():
            spec = dataclasses.replace(demo_spec(), n_train=0, n_val=18, n_test=0, n_unlabeled=0)
            write_cohort(extra.parent, seed=1, spec=spec, progress=False)
        base, more = json.loads(manifest.read_text()), json.loads(extra.read_text())
        cases = [{**c, **{k: f"cohort/{c[k]}" for k in ("image", "liver")},
                  "tumor": {r: f"cohort/{p}" for r, p in c["tumor"].items()}} for c in base["cases"]]
        cases += [{**c, "id": f"x{c['id']}", **{k: f"extraval/{c[k]}" for k in ("image", "liver")},
                   "tumor": {r: f"extraval/{p}" for r, p in c["tumor"].items()}} for c in more["cases"][:extra_val]]
        source = exp / f"dataset-val{extra_val}.json"
        source.write_text(json.dumps({**base, "cases": cases}, indent=1))
    prep = exp / (("prep" if not extra_val else f"prep-val{extra_val}") + f"-{preprocess.inplane_spacing_mm:g}mm")
    if not prep.is_dir():  # prepared once; concurrent variants then only read it
        preprocess_dataset(source, prep, preprocess, progress=False)
    return manifest, prep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--extra-val", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--save-states", action="store_true",
                        help="also save every validated state to runs/<name>/states/ (for --eval-states)")
    parser.add_argument("--eval-states", action="store_true",
                        help="evaluate every saved state of runs/<name> on the test cases instead of training")
    parser.add_argument("--states", type=int, nargs="*", default=None,
                        help="with --eval-states: only the states of these iterations")
    args = parser.parse_args(argv)

    import torch

    from hepaseg.model.folder import model_dir, read_model_info
    from hepaseg.training.train import train_run

    torch.set_num_threads(args.threads)
    from hepaseg.config import with_assignments
    from hepaseg.presets import demo_config

    config = with_assignments(demo_config(), args.sets)
    manifest, prep = cohorts(args.exp, args.extra_val, config.preprocess)
    run = args.exp / "runs" / args.name
    if args.eval_states:
        return eval_states(args, config, manifest, run)
    if args.save_states:
        from hepaseg.training import train as train_module

        original = train_module._Run.validate

        def validate_and_save(self):
            original(self)
            (self.run_dir / "states").mkdir(exist_ok=True)
            torch.save(train_module.state_copy(self.kept_net),
                       self.run_dir / "states" / f"it-{self.status.iteration:05d}.pt")

        train_module._Run.validate = validate_and_save
    load = os.getloadavg()
    t0 = time.perf_counter()
    result = train_run(prep, run, config, seed=args.seed, device="cpu", resume=True, progress=False)
    train_s = time.perf_counter() - t0
    log = [json.loads(line) for line in (model_dir(run) / "train_log.jsonl").read_text().splitlines()]
    speeds = [r["it_per_s"] for r in log if "it_per_s" in r]
    _, info = read_model_info(model_dir(run))
    out = {"name": args.name, "seed": args.seed, "sets": args.sets, "extra_val": args.extra_val,
           "threads": args.threads, "train_s": round(train_s, 1), "it_per_s_last": speeds[-1] if speeds else None,
           "load_before": load, "load_after": os.getloadavg(),
           "iterations": result.iterations_done, "best_iteration": result.best_iteration,
           "best_score": result.best_score, "metric": config.train.validation_metric,
           "history": [{"iteration": h["iteration"], **{k: round(v, 4) for k, v in h.get("scores", {}).items()}}
                       for h in info["history"]]}
    if not args.no_eval:
        out["test"] = test_scores(config, manifest, model_dir(run), args.exp / "preds" / args.name,
                                  args.exp / "eval" / args.name, args.name)
    print(json.dumps(out))
    return 0


def test_scores(config, manifest: Path, model: Path, preds: Path, evaluation: Path, name: str) -> dict:
    """Predict the test cases with a model folder and evaluate them as the study does."""
    from hepaseg.evaluation.results import INTER_RATER, MEAN
    from hepaseg.inference.batch import predict_paths
    from hepaseg.pipeline.evaluation import write_evaluation
    from hepaseg.report.tables import finite_mean

    predict_paths(model, preds, dataset=manifest, split="test", overwrite=True, device="cpu",
                  infer=dataclasses.asdict(config.infer), progress=False)
    results = write_evaluation(manifest, {name: preds}, evaluation, config=config.evaluate)
    return {"mean_dice": finite_mean(results.values("scores", "mean_dice", name)),
            "f1": finite_mean(results.values("detection", "f1", name, MEAN)),
            "raters_dice": finite_mean(results.values("segmentation", "dice", INTER_RATER, MEAN)),
            "raters_f1": finite_mean(results.values("detection", "f1", INTER_RATER, MEAN))}


def eval_states(args, config, manifest: Path, run: Path) -> int:
    """Test scores of every state saved by --save-states, with the validation scores of that state."""
    import shutil

    import torch

    from hepaseg.model.folder import model_dir, read_model_info, write_weights

    _, info = read_model_info(model_dir(run))
    history = {h["iteration"]: h for h in info["history"]}
    rows = []
    for path in sorted((run / "states").glob("it-*.pt")):
        iteration = int(path.stem[3:])
        if args.states is not None and iteration not in args.states:
            continue
        folder = args.exp / "tmp-states" / args.name / path.stem
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(model_dir(run), folder)
        write_weights(folder, torch.load(path, weights_only=True))
        test = test_scores(config, manifest, folder, folder.parent / f"{path.stem}-preds",
                           folder.parent / f"{path.stem}-eval", args.name)
        h = history.get(iteration, {})
        rows.append({"iteration": iteration, "val": h.get("scores"), "val_counts": h.get("counts"),
                     "test_dice": test["mean_dice"], "test_f1": test["f1"]})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "val_counts"}), file=sys.stderr)
    print(json.dumps({"name": args.name, "states": rows}))
    return 0


def noise(runs: list[Path], boot: int = 2000) -> dict:
    """Validation noise from the recorded per-case counts of runs (``--noise RUN ...``): per run and
    metric the score at each validation on all validation cases and on the demo's own 6 (ids without
    the ``x`` prefix), the mean absolute change between consecutive validations, and the bootstrap
    standard error over cases of the last validation's score (the noise of the score itself)."""
    import numpy as np

    from hepaseg.model.folder import model_dir, read_model_info
    from hepaseg.checks import METRICS
    from hepaseg.training.validation import validation_score

    rng = np.random.default_rng(0)
    out = {}
    for run in runs:
        _, info = read_model_info(model_dir(run))
        rows = {}
        for subset in ("all", "demo6"):
            per_metric = {}
            for metric in METRICS:
                series, se = [], None
                for h in info["history"]:
                    counts = {k: tuple(v) for k, v in h["counts"].items() if subset == "all" or not k.startswith("x")}
                    series.append(round(validation_score(counts, metric), 4))
                ids = list(counts)
                draws = [validation_score({f"{i}-{n}": counts[ids[j]] for n, j in enumerate(rng.integers(0, len(ids), len(ids)))},
                                          metric) for i in range(boot)]
                se = float(np.std(draws))
                steps = np.abs(np.diff(series)) if len(series) > 1 else np.array([np.nan])
                per_metric[metric] = {"series": series, "mean_abs_step": round(float(np.mean(steps)), 4),
                                      "bootstrap_se_last": round(se, 4), "cases": len(ids)}
            rows[subset] = per_metric
        out[run.name] = {"iterations": [h["iteration"] for h in info["history"]], **rows}
    return out


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--noise":
        print(json.dumps(noise([Path(p) for p in sys.argv[2:]]), indent=1))
        sys.exit(0)
    sys.exit(main())
