"""``hepaseg evaluate``: evaluate a split against every rater and write the evaluation folder.

The folder gets the per-case results (``evaluation.results``: ``segmentation.csv``, ``scores.csv``,
``detection.csv``, ``correspondences.csv``, ``evaluation.json``), the paired tests (``stats.csv``), and
the tables and figures (``report.evaluation``). Everything is computed before the first file is
written, and each file is written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..config import EvalConfig
from ..evaluation.evaluate import evaluate_inputs
from ..evaluation.inputs import find_inputs
from ..evaluation.results import STATS_FILE, Results, to_csv, write_results
from ..evaluation.stats import PairedTest, algorithm_pairs, compare_algorithms
from ..io.atomic import write_bytes, write_text
from ..io.lock import folder_lock
from ..report.evaluation import render_evaluation


def write_evaluation(manifest: str | Path, predictions: Mapping[str, str | Path], out: str | Path,
                     split: str = "test", config: EvalConfig = EvalConfig(),
                     workers: int | None = None, labels: Mapping[str, int] | None = None,
                     reference: str | None = None) -> Results:
    """Evaluate a split and write every result file into ``out``.

    Args:
        predictions: algorithm -> prediction folder, in the order of the tables and figures.
        labels: algorithm -> the label value that is tumour in its multi-class masks (``--label``).
        reference: compare every algorithm with this one; default: every pair of algorithms.
            No test with a single algorithm.

    Raises:
        InputError: see ``evaluation.inputs.find_inputs``, ``evaluation.evaluate.evaluate_inputs``
            and ``evaluation.stats.algorithm_pairs``.
    """
    pairs = algorithm_pairs(list(predictions), reference)
    inputs = find_inputs(manifest, predictions, split, labels)
    results = evaluate_inputs(inputs, config, workers)
    tests = compare_algorithms(results, pairs)
    files = {STATS_FILE: to_csv(tests, PairedTest), **render_evaluation(results, tests, inputs)}
    with folder_lock(out):
        for name, data in files.items():
            if isinstance(data, bytes):
                write_bytes(Path(out) / name, data)
            else:
                write_text(Path(out) / name, data)
        write_results(results, out)  # last: its evaluation.json marks a complete folder
    return results
