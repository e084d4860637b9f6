"""From per-case results to the paper's outputs: statistics, tables, figures, and the HTML report.

``write_evaluation`` is ``hepaseg evaluate``: evaluate, then write every file into one folder.
``write_report`` is ``hepaseg report``: one self-contained HTML page from that folder; pass extra
``Section`` blocks to add a study's own results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..atomic import write_bytes, write_text
from ..config import EvalConfig
from ..dataset import load_manifest
from ..evaluate import evaluate_dataset, find_predictions
from ..results import Results, from_csv, read_results, to_csv, write_results
from ..stats import PairedTest, compare_algorithms
from .figures import overlay_figure, recall_by_size_figure, segmentation_figure
from .html import Section, image_html, render_page, table_html, text_html
from .overlays import OverlayPanel, load_panel, select_cases
from .summary import summary_paragraphs
from .tables import table1, table2

STATS_FILE = "stats.csv"
FIGURES = {
    "segmentation.png": "Figure 2: segmentation per case",
    "recall_by_size.png": "Detection recall by lesion size",
    "overlays.png": "Figure 3: example slices",
}

__all__ = ["Section", "build_report", "summarise", "write_evaluation", "write_report"]


def write_evaluation(manifest: str | Path, predictions: Mapping[str, str | Path], out: str | Path,
                     split: str = "test", config: EvalConfig = EvalConfig(),
                     workers: int | None = None) -> Results:
    """Evaluate a split and write every result file into ``out``.

    Files: ``segmentation.csv``, ``scores.csv``, ``detection.csv``, ``lesions.csv``,
    ``evaluation.json`` (see ``hepaseg.results``), ``stats.csv``, ``table1.md`` / ``.csv``,
    ``table2.md`` / ``.csv`` and the figures in ``FIGURES``. Everything is computed before the
    first file is written, and each file is written atomically.

    Raises:
        InputError: see ``hepaseg.evaluate.evaluate_dataset``.
    """
    results = evaluate_dataset(manifest, predictions, split, config, workers)
    files = summarise(results)
    write_results(results, out)
    for name, data in files.items():
        if isinstance(data, bytes):
            write_bytes(Path(out) / name, data)
        else:
            write_text(Path(out) / name, data)
    return results


def summarise(results: Results) -> dict[str, str | bytes]:
    """Statistics, tables and figures of ``results``: file name -> contents (nothing written).

    Statistics compare the first two algorithms (none with a single algorithm). The example-slice
    figure reads the selected cases' images and masks again.
    """
    info = results.info
    tests: tuple[PairedTest, ...] = ()
    if len(info.algorithms) >= 2:
        tests = compare_algorithms(results, info.algorithms[0], info.algorithms[1])
    files: dict[str, str | bytes] = {STATS_FILE: to_csv(tests, PairedTest)}
    for table in (table1(results, tests), table2(results, tests)):
        files[f"{table.name}.md"] = table.markdown()
        files[f"{table.name}.csv"] = table.csv()
    files["segmentation.png"] = segmentation_figure(results)
    files["recall_by_size.png"] = recall_by_size_figure(results)
    files["overlays.png"] = overlay_figure(_overlay_panels(results), info.raters, info.algorithms)
    return files


def _overlay_panels(results: Results) -> list[OverlayPanel]:
    info = results.info
    dataset = load_manifest(info.manifest)
    chosen = select_cases(results, info.algorithms[0])
    paths = find_predictions(info.predictions, [case_id for case_id, _ in chosen])
    return [load_panel(dataset.case(case_id), {a: paths[a][case_id] for a in info.algorithms}, info.raters, title)
            for case_id, title in chosen]


def build_report(folder: str | Path, sections: Sequence[Section] = ()) -> str:
    """The HTML page for an evaluation folder, with ``sections`` appended after the built-in ones.

    Raises:
        InputError: the folder lacks a file that ``hepaseg evaluate`` writes.
    """
    root = Path(folder)
    results = read_results(root)
    tests = _read_tests(root)
    built = [Section("Summary", text_html(summary_paragraphs(results, tests)))]
    t1, t2 = table1(results, tests), table2(results, tests)
    built.append(Section("Segmentation (Table 1)", table_html(t1.header, t1.rows, t1.caption)))
    built += _figure(root, "segmentation.png")
    built.append(Section("Detection (Table 2)", table_html(t2.header, t2.rows, t2.caption)))
    built += _figure(root, "recall_by_size.png")
    built += _figure(root, "overlays.png")
    built.append(Section("Paired tests", table_html(
        ("family", "metric", "rater", "statistic", "p", "adjusted p", "significant", "n"),
        [(t.family, t.metric, t.rater, f"{t.statistic:g}", f"{t.p:.4g}", f"{t.p_adjusted:.4g}",
          "yes" if t.significant else "no", str(t.n)) for t in tests],
        "Wilcoxon signed-rank (two-sided) on per-case pairs of the first two algorithms; "
        "Benjamini-Hochberg within each family.")))
    info = results.info
    built.append(Section("Run", text_html([
        f"Manifest {info.manifest}, split '{info.split}', {len(info.cases)} cases: {', '.join(info.cases)}.",
        "Predictions: " + "; ".join(f"{a} = {p}" for a, p in info.predictions.items()) + ".",
        f"Settings: {info.config}.",
    ])))
    return render_page(f"Evaluation: {', '.join(info.algorithms)} vs {', '.join(info.raters)}",
                       [*built, *sections])


def write_report(folder: str | Path, out: str | Path, sections: Sequence[Section] = ()) -> Path:
    """Write ``build_report(folder, sections)`` to ``out`` atomically."""
    write_text(out, build_report(folder, sections))
    return Path(out)


def _read_tests(root: Path) -> tuple[PairedTest, ...]:
    return from_csv(root / STATS_FILE, PairedTest)


def _figure(root: Path, name: str) -> list[Section]:
    path = root / name
    return [Section(FIGURES[name], image_html(path.read_bytes(), FIGURES[name]))] if path.is_file() else []
