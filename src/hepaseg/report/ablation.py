"""The ablation's report page (``pipeline.ablation``): the variants, their seeds, Tables 1 and 2 on
the per-case means over seeds with paired tests between variants, lesion size, cost, and a paragraph.

It reads the evaluation folder of every run and the ablation's record (``pipeline.json``: per
variant its configuration and the run names, per run its training facts, per variant its footprint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..evaluation.results import INTER_RATER, MEAN, Results, read_results
from ..evaluation.seeds import by_group, seed_means, size_bins, size_labels
from ..evaluation.stats import DETECTION, SEGMENTATION, PairedTest, algorithm_pairs, compare_algorithms, find_test
from ..io.atomic import write_text
from ..model.folder import current_score_keys
from .figures import figure_png
from .html import Section, image_html, render_page, table_html, text_html
from .tables import PM, finite_mean, table1, table2

# (title, table, field, rater) of the per-seed summary; lower is better for the last two
SEED_METRICS = (("Dice vs raters", "scores", "mean_dice", None), ("\u03c6", "scores", "phi", None),
                ("ASSD mm", "segmentation", "assd_mm", MEAN), ("recall", "detection", "recall", MEAN),
                ("precision", "detection", "precision", MEAN), ("F1", "detection", "f1", MEAN),
                ("FP count", "detection", "fp", MEAN))


def _pm(values: Sequence[float], digits: str = ".3f") -> str:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    if not a.size:
        return "n/a"
    sd = a.std(ddof=1) if a.size > 1 else 0.0
    return f"{a.mean():{digits}} {PM} {sd:{digits}}"


def write_ablation_report(evaluation: str | Path, record: Mapping[str, Any], out: str | Path) -> Path:
    """Write the ablation page to ``out`` atomically; see the module docstring."""
    results = read_results(evaluation)
    groups: dict[str, list[str]] = record["groups"]
    variants = list(groups)
    grouped = by_group(results, groups)
    tests = compare_algorithms(grouped, algorithm_pairs(variants))
    stages = record["stages"]
    sections = [Section("Ablation: what the data show", text_html(summary(results, grouped, groups, tests))),
                Section("Variants", _variants_table(record, stages["footprint"]["facts"],
                                                    stages["train"]["facts"])),
                Section("Seeds", _seeds_table(results, groups, stages["train"]["facts"]))]
    t1, t2 = table1(grouped, tests), table2(grouped, tests)
    note = (f" Each variant's per-case values are the means over its {len(record['seeds'])} seeds; the p rows "
            "compare variants on those per-case means.")
    sections += [Section("Segmentation per variant (Table 1)", table_html(t1.header, t1.rows, t1.caption + note)),
                 Section("Detection per variant (Table 2)", table_html(t2.header, t2.rows, t2.caption + note)),
                 Section("By lesion size", _size_table(grouped, variants) + image_html(size_figure(grouped, variants),
                                                                                        "F1 and Dice by lesion size")),
                 Section("Paired tests", table_html(
                     ("family", "metric", "rater", "first", "second", "p", "adjusted p", "significant", "n"),
                     [(t.family, t.metric, t.rater, t.first, t.second, f"{t.p:.4g}", f"{t.p_adjusted:.4g}",
                       "yes" if t.significant else "no", str(t.n)) for t in tests],
                     "Wilcoxon signed-rank (two-sided) on the per-case means over seeds of each pair of variants; "
                     "Benjamini-Hochberg within each family."))]
    info = results.info
    sections.append(Section("Run", text_html([
        f"Manifest {info.manifest}, split '{info.split}', {len(info.cases)} cases; seeds {record['seeds']}.",
        "Stage wall times (s): " + ", ".join(f"{k} {v.get('seconds', 0):.0f}" for k, v in stages.items()
                                               if v.get("finished")) + "."])))
    write_text(out, render_page(f"Ablation: {', '.join(variants)} ({len(record['seeds'])} seeds each)", sections))
    return Path(out)


def headline(evaluation: str | Path, folder: str | Path) -> str:
    """One line: each variant's mean Dice against the raters, mean +- SD over seeds."""
    import json

    record = json.loads((Path(folder) / "pipeline.json").read_text(encoding="utf-8"))
    results = read_results(evaluation)
    groups = record["groups"]
    return ("mean Dice vs raters (mean \u00b1 SD over seeds): " + ", ".join(
        f"{v} {_pm(seed_means(results, runs, 'scores', 'mean_dice', None))}" for v, runs in groups.items()))


def summary(results: Results, grouped: Results, groups: Mapping[str, Sequence[str]],
            tests: Sequence[PairedTest]) -> list[str]:
    """The paragraph: each variant's mean +- SD over seeds, the paired tests, seed spread against the
    differences between variants, small lesions, and what is significant."""
    dice = {v: seed_means(results, runs, "scores", "mean_dice", None) for v, runs in groups.items()}
    f1 = {v: seed_means(results, runs, "detection", "f1", MEAN) for v, runs in groups.items()}
    inter = finite_mean(results.values("segmentation", "dice", INTER_RATER, MEAN))
    seeds = len(next(iter(groups.values())))
    lines = [f"On {len(results.info.cases)} test cases with {seeds} seed(s) per variant, mean Dice against the raters "
             f"(mean {PM} SD over seeds): " + ", ".join(f"{v} {_pm(d)}" for v, d in dice.items())
             + f"; the raters agree with each other at {inter:.3f}. Detection F1: "
             + ", ".join(f"{v} {_pm(d)}" for v, d in f1.items()) + "."]
    significant = []
    for first, second in algorithm_pairs(list(groups)):
        parts = []
        for family, metric, name, values in ((SEGMENTATION, "dice", "Dice", dice), (DETECTION, "f1", "F1", f1)):
            test = find_test(tests, family, metric, MEAN, (first, second))
            diff = np.nanmean(values[first]) - np.nanmean(values[second])
            if test is None or np.isnan(test.p):
                parts.append(f"{name} {diff:+.3f} (no test)")
                continue
            parts.append(f"{name} {diff:+.3f} (p {test.p:.3g}, adjusted {test.p_adjusted:.3g}"
                         f"{', significant' if test.significant else ''})")
            if test.significant:
                significant.append(f"{name} of {first} vs {second}")
        lines.append(f"{first} minus {second}: " + "; ".join(parts) + ".")
    spread = max((float(np.nanstd(d, ddof=1)) for d in dice.values() if np.isfinite(d).sum() > 1), default=np.nan)
    means = [float(np.nanmean(d)) for d in dice.values()]
    gap = max(means) - min(means)
    if np.isfinite(spread):
        lines.append(f"The Dice SD between seeds reaches {spread:.3f}, against a difference of {gap:.3f} between the "
                     f"best and the worst variant: " + ("the architecture matters more than the seed here."
                                                        if gap > 2 * spread else
                                                        "the seed moves the result about as much as the architecture."))
    small = {v: size_bins(grouped, v) for v in groups}
    lines.append(f"Lesions {size_labels()[0]}: detection F1 " + ", ".join(
        f"{v} {b.f1[0]:.2f}" for v, b in small.items()) + f" (from {int(next(iter(small.values())).references[0])} "
        "reference lesions per variant, pooled over raters and seeds).")
    lines.append("Significant after Benjamini-Hochberg: " + "; ".join(significant) + "." if significant else
                 "No difference in mean Dice or F1 between the variants is significant after Benjamini-Hochberg "
                 "with these cases and seeds.")
    return [" ".join(lines)]


def _variants_table(record: Mapping[str, Any], footprints: Mapping[str, Any], trained: Mapping[str, Any]) -> str:
    rows = []
    for variant, runs in record["groups"].items():
        cfg, fp = record["variants"][variant], footprints[variant]
        seconds = [trained[r]["train_seconds"] for r in runs]
        spacing = cfg["preprocess"].get("slice_spacing_mm")
        rows.append((variant, cfg["preset"], "x".join(map(str, cfg["model"]["kernel"])),
                     str(len(cfg["model"]["widths"])), f"{fp['parameters']:,}",
                     " x ".join(map(str, fp["receptive_field"])), " x ".join(map(str, fp["input_size"])),
                     " x ".join(map(str, fp["output_size"])),
                     f"{cfg['preprocess']['inplane_spacing_mm']:g} / " + ("slices" if spacing is None else f"{spacing:g}"),
                     str(cfg["train"]["iterations"]), _pm(seconds, ".0f"), f"{fp['seconds_per_step']:.3f}",
                     f"{fp['peak_memory_mb']:.0f} ({fp['method']})"))
    header = ("variant", "preset", "kernel", "levels", "parameters", "receptive field (voxels)", "patch input",
              "patch output", "grid mm (in-plane / z)", "iterations", "training s per run", "s per step",
              "peak step memory MB")
    return table_html(header, rows, f"Training s per run: mean {PM} SD over seeds, as recorded by each run; s per "
                                    "step and memory: measured once per variant on random patches (footprint stage).")


def _seeds_table(results: Results, groups: Mapping[str, Sequence[str]], trained: Mapping[str, Any]) -> str:
    rows = []
    for variant, runs in groups.items():
        cells = [_pm(seed_means(results, runs, table, field, rater), ".2f" if field == "fp" else ".3f")
                 for _, table, field, rater in SEED_METRICS]
        validation = [current_score_keys(trained[r])["best_score"] for r in runs]
        rows.append((variant, *cells, _pm([np.nan if v is None else v for v in validation])))
    metric = next(iter(trained.values()))["validation_metric"]
    header = ("variant", *(title for title, *_ in SEED_METRICS), f"best validation {metric}")
    return table_html(header, rows, f"Per variant: mean {PM} SD over seeds of each seed's mean over test cases "
                                    "(detection and ASSD: per case the mean over raters).")


def _size_table(grouped: Results, variants: Sequence[str]) -> str:
    labels, rows = size_labels(), []
    for variant in variants:
        b = size_bins(grouped, variant)
        for i, label in enumerate(labels):
            rows.append((variant, label, str(int(b.references[i])), f"{b.recall[i]:.2f}", str(int(b.predicted[i])),
                         f"{b.precision[i]:.2f}", f"{b.f1[i]:.2f}", f"{b.dice[i]:.2f}"))
    return table_html(("variant", "lesion volume", "reference lesions", "recall", "predicted lesions", "precision",
                       "F1", "lesion Dice"), rows,
                      "Pooled over cases, raters and seeds. Reference lesions are binned by their volume, predicted "
                      "ones by their correspondence's predicted volume; F1 combines the recall and precision of a "
                      "bin. Lesion Dice: mean Dice of the reference lesions' correspondences, a missed lesion 0.")


def size_figure(grouped: Results, variants: Sequence[str]) -> bytes:
    """Two panels: detection F1 and lesion Dice per lesion-volume bin, one line per variant."""
    labels = size_labels()
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    for ax, attribute, title in zip(fig.subplots(1, 2), ("f1", "dice"), ("detection F1", "lesion Dice")):
        for variant in variants:
            ax.plot(range(len(labels)), getattr(size_bins(grouped, variant), attribute), marker="o", label=variant)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("lesion volume")
        ax.set_title(f"{title} by lesion size (pooled over raters and seeds)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return figure_png(fig)
