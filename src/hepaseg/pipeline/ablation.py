"""The architecture ablation, resumable: ``hepaseg study --variants aunet,2d,3d --seeds 3``.

Each variant is ``presets.variant_config(base, name)``: the same iteration budget, patch sampling,
loss, augmentation and post-processing, another network (and for ``3d`` a grid resampled in z).
Every variant trains the same seeds ``select.first_seed, ...``; nothing is selected, every run is
evaluated, so the report separates the architecture's effect from the seed's. Stages, recorded in
``<out>/pipeline.json`` like the study's (``pipeline.record``):

1. ``preprocess``: one cache per distinct pre-processing, ``<out>/prep/<grid>``.
2. ``train``: every (variant, seed) run on the local executor or Ray -> ``<out>/runs/<variant>/seed-NNN``;
   an interrupted stage continues each run from its checkpoint.
3. ``footprint``: per variant the measured seconds per training step and peak step memory.
4. ``predict``: every run on the test cases inside the given livers -> ``<out>/preds/<variant>-s<seed>``.
5. ``evaluate``: every run against every rater -> ``<out>/eval`` (``hepaseg evaluate``'s files, no tests).
6. ``report``: ``<out>/report.html`` (``report.ablation``): per variant mean +- SD over seeds, Tables 1/2
   on the per-case means over seeds with paired tests between variants (Benjamini-Hochberg), detection
   and Dice by lesion size, training time and memory, and a paragraph on what the data show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..config import Config, PreprocessConfig

from ..presets import VARIANTS, variant_config
from ..data.manifest import load_manifest
from ..errors import InputError
from ..io.lock import folder_lock
from ..progress import Progress
from .record import Record, Stages, fingerprint
from .study import StudyResult

REPORT = "report.html"


def parse_variants(text: str) -> tuple[str, ...]:
    """``aunet,2d,3d`` -> the variants in that order.

    Raises:
        InputError: an unknown or repeated variant, or fewer than two.
    """
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise InputError("--variants", f"unknown variant {unknown[0]!r} (choose from {', '.join(VARIANTS)})")
    if len(set(names)) != len(names):
        raise InputError("--variants", "a variant is given twice")
    if len(names) < 2:
        raise InputError("--variants", "an ablation compares two or more variants, e.g. aunet,2d,3d")
    return names


def run_name(variant: str, seed: int) -> str:
    """The algorithm name of one run in the evaluation, e.g. ``2d-s1``."""
    return f"{variant}-s{seed}"


def grid_name(pc: PreprocessConfig) -> str:
    """The cache folder of a pre-processing, e.g. ``2mm`` or ``2mm-z2mm`` (z resampled)."""
    name = f"{pc.inplane_spacing_mm:g}mm"
    return name if pc.slice_spacing_mm is None else f"{name}-z{pc.slice_spacing_mm:g}mm"


def run_ablation(manifest: str | Path, out: str | Path, base: Config, variants: Sequence[str], seeds: int = 3,
                 resume: bool = False, device: str = "auto", workers: int | None = None, backend: str = "local",
                 address: str | None = None, progress: bool = True,
                 log: Callable[[str], None] = print) -> StudyResult:
    """Run (or continue) the ablation; see the module docstring for the stages.

    Args:
        base: the configuration the variants derive from (a preset, possibly changed).
        variants: names from ``config.VARIANTS`` (``parse_variants``).
        seeds: runs per variant, seeds ``base.select.first_seed`` on.
        backend, address, workers: where the training runs execute (``selection.executors``).

    Raises:
        InputError: bad manifest or data, fewer than two variants or one seed, an existing
            folder without ``resume``, another process writing ``out``.
    """
    if seeds < 1:
        raise InputError("--seeds", f"must be >= 1, got {seeds}")
    manifest = Path(manifest).resolve()
    dataset = load_manifest(manifest)
    for split in ("train", "val", "test"):
        if not dataset.split(split):
            raise InputError(manifest, f"has no '{split}' case; an ablation needs train, val and test cases")
    configs = {v: variant_config(base, v) for v in parse_variants(",".join(variants))}
    folder = Path(out).resolve()
    with folder_lock(folder):
        record = Record(folder, base, resume, what="an ablation")
        record.data["variants"] = {v: c.to_dict() for v, c in configs.items()}
        record.data["seeds"] = list(range(base.select.first_seed, base.select.first_seed + seeds))
        record.data["groups"] = {v: [run_name(v, s) for s in record.data["seeds"]] for v in configs}
        return _run_stages(manifest, folder, configs, record, device, workers, backend, address, progress, log)


def _run_stages(manifest: Path, folder: Path, configs: dict[str, Config], record: Record, device: str,
                workers: int | None, backend: str, address: str | None, progress: bool,
                log: Callable[[str], None]) -> StudyResult:
    from ..data.preprocess import load_prepared, preprocess_dataset
    from ..evaluation.evaluate import evaluate_inputs
    from ..evaluation.inputs import find_inputs
    from ..evaluation.results import FORMAT_VERSION, write_results
    from ..inference.batch import predict_paths
    from ..model.folder import model_dir, read_model_info
    from ..report.ablation import write_ablation_report
    from ..selection.executors import make_executor
    from ..selection.halving import Task

    stages = Stages(record, log)
    seeds = record.data["seeds"]
    text = manifest.read_text(encoding="utf-8")
    base = next(iter(configs.values()))
    caches = {v: folder / "prep" / grid_name(c.preprocess) for v, c in configs.items()}
    runs = {run_name(v, s): (v, s, folder / "runs" / v / f"seed-{s:03d}") for v in configs for s in seeds}
    preds = {name: folder / "preds" / name for name in runs}
    evaluation = folder / "eval"

    def do_preprocess() -> dict[str, Any]:
        done = {}
        for variant, cache in caches.items():
            if cache.name not in done:
                summary = preprocess_dataset(manifest, cache, configs[variant].preprocess, workers=workers,
                                             progress=progress)
                done[cache.name] = summary.done
        return {"prepared": done}

    stages.run("preprocess", fingerprint(text, {v: asdict(c.preprocess) for v, c in configs.items()}), do_preprocess)
    prep_fp = fingerprint({v: sorted(c.record().get("fingerprint", c.id) for c in load_prepared(p).cases)
                           for v, p in caches.items()})
    trained = {v: {k: c.to_dict()[k] for k in ("preprocess", "model", "patch", "augment", "train")}
               for v, c in configs.items()}

    def do_train() -> dict[str, Any]:
        tasks = [Task(s, 0, configs[v].train.iterations, str(caches[v]), str(path), configs[v])
                 for v, s, path in runs.values()]
        with make_executor(backend, workers, device, address) as executor, \
                Progress(len(tasks), "train", "run", enabled=progress) as bar:
            for name, result in executor.map_unordered(train_named_run, list(zip(runs, tasks))):
                bar.update()
                log(f"[train] {name}: {result.iterations_done} it. in {result.seconds:.0f} s on {result.device}")
        facts = {}
        for name, (_, _, path) in runs.items():
            _, info = read_model_info(model_dir(path))
            facts[name] = {k: info[k] for k in ("iterations_done", "best_iteration", "best_score",
                                                "validation_metric", "train_seconds")}
        return facts

    train_fp = fingerprint(prep_fp, trained, seeds)
    stages.run("train", train_fp, do_train, stale=(folder / "runs",))

    def do_footprint() -> dict[str, Any]:
        return {v: footprint_facts(c, "cuda" if device == "cuda" else "cpu") for v, c in configs.items()}

    stages.run("footprint", fingerprint(trained, device), do_footprint)

    def do_predict() -> dict[str, Any]:
        failed = 0
        for name, (variant, _, path) in runs.items():
            summary = predict_paths(model_dir(path), preds[name], dataset=manifest, split="test", overwrite=True,
                                    device=device, infer=asdict(configs[variant].infer), progress=progress)
            failed += len(summary.failed)
        if failed:
            raise InputError(folder / "preds", f"{failed} case(s) failed to predict (see the lines above)")
        return {"runs": len(runs)}

    predict_fp = fingerprint(train_fp, {v: asdict(c.infer) for v, c in configs.items()}, text)
    stages.run("predict", predict_fp, do_predict, stale=tuple(preds.values()))

    def do_evaluate() -> dict[str, Any]:
        results = evaluate_inputs(find_inputs(manifest, preds, "test"), base.evaluate, workers)
        with folder_lock(evaluation):
            write_results(results, evaluation)
        return {"cases": len(results.info.cases)}

    evaluate_fp = fingerprint(predict_fp, asdict(base.evaluate), FORMAT_VERSION)
    stages.run("evaluate", evaluate_fp, do_evaluate, stale=(evaluation,))
    report = folder / REPORT
    stages.run("report", fingerprint(evaluate_fp, record.timings(but="report")),
               lambda: {"report": str(write_ablation_report(evaluation, record.data, report))})
    return StudyResult(folder, report, evaluation, stages.seconds, tuple(stages.skipped))


def footprint_facts(config: Config, device: str) -> dict[str, Any]:
    """A variant's network: parameters, receptive field and patch sizes (voxels), and the measured seconds
    per training step and peak step memory (``training.footprint.measure_step``)."""
    from ..model.shapes import input_size, receptive_field
    from ..model.unet import UNet, count_parameters
    from ..training.footprint import measure_step

    return {"parameters": count_parameters(UNet(config.model)), "receptive_field": list(receptive_field(config.model)),
            "input_size": list(input_size(config.model, config.patch.output_size)),
            "output_size": list(config.patch.output_size), **asdict(measure_step(config, device))}


def train_named_run(item: tuple[str, Any], device: str, threads: int) -> tuple[str, Any]:
    """Executor task: ``selection.halving.run_to_budget`` of a (run name, ``Task``) pair, named in the result."""
    from ..selection.halving import run_to_budget

    name, task = item
    return name, run_to_budget(task, device, threads)
