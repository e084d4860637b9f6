"""The study's own report sections (the run: stages, speed, selection, environment) and the
headline table printed at the end of ``hepaseg study`` and ``make demo``."""

from __future__ import annotations

import html
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.results import INTER_RATER, MEAN, read_results
from ..model.folder import current_score_keys
from .html import Section, image_html, table_html, text_html
from .selection_check import check_line, check_sections
from .summary import compare
from .tables import finite_mean, mean_sd

STAGE_TITLES = {
    "preprocess": "pre-processing", "a2": "A2: single training", "a1": "A1: successive halving over seeds",
    "predict": "prediction (test + unlabeled, both models)", "evaluate": "evaluation",
    "selection_check": "selection check (every run on the test cases)", "report": "report",
}


def run_sections(record: dict[str, Any], this_call: dict[str, float], device: str) -> list[Section]:
    """HTML sections describing the run from the study record (``pipeline.json``)."""
    stages = record.get("stages", {})
    rows = []
    for name, title in STAGE_TITLES.items():
        entry = stages.get(name)
        if entry is None or name == "report":
            continue
        rows.append([title, f"{entry.get('seconds', float('nan')):.1f}",
                     "this run" if name in this_call else "earlier run (resumed)"])
    sections = [Section("The run: wall time per stage", table_html(["stage", "wall time (s)", "computed in"], rows))]
    a2, a1 = (current_score_keys(stages.get(name, {}).get("facts", {})) for name in ("a2", "a1"))
    config = record.get("config", {})
    speed = []
    if a2:
        speed.append(f"A2 trained {a2['iterations']} iterations in {a2['seconds']:.0f} s "
                     f"({a2['its_per_second']:.2f} iterations/s including validation); best validation "
                     f"{_label(config)} {_num(a2.get('best_score'))}.")
    if a1:
        sel = config.get("select", {})
        speed.append(f"A1 started {sel.get('runs')} seeds (budgets {sel.get('min_iterations')} to "
                     f"{sel.get('max_iterations')} iterations, eta {sel.get('eta')}); the winner is seed "
                     f"{a1['winner']} with best validation {_label(config)} {_num(a1.get('best_score'))}; the runs took "
                     f"{a1['task_seconds']:.0f} s of device time.")
    if speed:
        sections.append(Section("Training speed and selection", text_html(speed)))
    figure = Path(a1["figure"]) if a1.get("figure") else None
    if figure is not None and figure.is_file():
        sections.append(Section("Figure 5: the selection over seeds", image_html(figure.read_bytes(), "selection")))
    sections += check_sections(stages.get("selection_check"))
    sections.append(Section("Environment", table_html(["item", "value"], environment(device))))
    sections.append(Section("Configuration", "<details><summary>config.json</summary><pre>"
                            + html.escape(json.dumps(config, indent=2)) + "</pre></details>"))
    return sections


def environment(device: str) -> list[list[str]]:
    """Versions and hardware, as (item, value) rows."""
    import numpy
    import scipy
    import torch

    from ..version import __version__
    from ..model.device import native_bf16

    rows = [["hepaseg", __version__], ["python", platform.python_version()], ["torch", torch.__version__],
            ["numpy", numpy.__version__], ["scipy", scipy.__version__],
            ["platform", platform.platform()], ["CPU cores", str(os.cpu_count())],
            ["CPU bf16 instructions (bf16 autocast on the CPU)", "yes" if native_bf16(torch.device("cpu")) else "no"],
            ["device setting", device]]
    if torch.cuda.is_available():
        rows.append(["GPU", torch.cuda.get_device_name(0)])
    return rows


def _num(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _label(config: dict) -> str:
    """The name of the validation score the study's configuration ranks by (``train.validation_metric``)."""
    from ..training.validation import metric_label

    return metric_label(config.get("train", {}).get("validation_metric", "jaccard"))


def headline(evaluation: str | Path) -> str:
    """A plain-text table: mean Dice vs the raters, phi, ASSD, detection F1 per algorithm and the raters,
    which of the first two algorithms is better in mean Dice, and, in a study folder, one line on its
    selection check (``report.selection_check.check_line``)."""
    results = read_results(evaluation)
    algorithms = list(results.info.algorithms)

    def row(title: str, cells: list[str]) -> str:
        return f"{title:<22}" + "".join(f"{c:>18}" for c in cells)

    def stat(values: np.ndarray) -> str:
        return mean_sd(values, pm="+-")

    lines = [row("", [*algorithms, "raters"])]
    lines.append(row("mean Dice vs raters", [stat(results.values("scores", "mean_dice", a)) for a in algorithms]
                     + [stat(results.values("segmentation", "dice", INTER_RATER, MEAN))]))
    lines.append(row("phi", [stat(results.values("scores", "phi", a)) for a in algorithms] + ["(0.9 by design)"]))
    lines.append(row("ASSD vs raters (mm)", [stat(results.values("segmentation", "assd_mm", a, MEAN)) for a in algorithms]
                     + [stat(results.values("segmentation", "assd_mm", INTER_RATER, MEAN))]))
    lines.append(row("detection F1", [stat(results.values("detection", "f1", a, MEAN)) for a in algorithms]
                     + [stat(results.values("detection", "f1", INTER_RATER, MEAN))]))
    if len(algorithms) >= 2:
        first, second = algorithms[:2]
        a, b = (finite_mean(results.values("scores", "mean_dice", name)) for name in (first, second))
        lines.append(compare("mean Dice", first, second, a, b) + ".")
    check = check_line(evaluation)
    if check is not None:
        lines.append(check)
    return "\n".join(lines)
