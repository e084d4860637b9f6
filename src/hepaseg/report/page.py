"""The HTML report (``hepaseg report``): one self-contained page from an evaluation folder.

It reads only what ``hepaseg evaluate`` wrote there, plus the expert rating's exported results where
a study folder holds them (``report.rating``); pass extra ``Section`` blocks to add a study's own
results (``report.run``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..evaluation.results import STATS_FILE, from_csv, read_results
from ..evaluation.stats import PairedTest
from ..io.atomic import write_text
from .evaluation import FIGURES
from .html import Section, image_html, render_page, table_html, text_html
from .rating import find_rating, rating_sections
from .summary import summary_paragraphs
from .tables import table1, table2


def build_report(folder: str | Path, sections: Sequence[Section] = (), rating: str | Path | None = None) -> str:
    """The HTML page for an evaluation folder, with ``sections`` appended after the built-in ones.

    ``rating`` is a ``hepaseg rate export`` folder (default: ``report.rating.find_rating``, the
    study's ``rating/results`` if it exists); its section follows the paired tests.

    Raises:
        InputError: the folder lacks a file that ``hepaseg evaluate`` writes.
    """
    root = Path(folder)
    results = read_results(root)
    tests = _read_tests(root)
    built = [Section("Summary", text_html(summary_paragraphs(results, tests)))]
    t1, t2 = table1(results, tests), table2(results, tests)
    built.append(Section("Segmentation (Table 1)", table_html(t1.header, t1.rows, t1.caption)))
    built += _figure(root, "segmentation.png") + _figure(root, "surface.png")
    built.append(Section("Detection (Table 2)", table_html(t2.header, t2.rows, t2.caption)))
    built += _figure(root, "recall_by_size.png") + _figure(root, "lesion_dice.png")
    built += _figure(root, "overlays.png")
    built.append(Section("Paired tests", table_html(
        ("family", "metric", "rater", "first", "second", "statistic", "p", "adjusted p", "significant", "n"),
        [(t.family, t.metric, t.rater, t.first, t.second, f"{t.statistic:g}", f"{t.p:.4g}", f"{t.p_adjusted:.4g}",
          "yes" if t.significant else "no", str(t.n)) for t in tests],
        "Wilcoxon signed-rank (two-sided) on per-case pairs of each pair of algorithms; "
        "Benjamini-Hochberg within each family, over all its metrics, raters and pairs.")))
    rating = rating or find_rating(root)
    if rating is not None:
        built += rating_sections(rating)
    info = results.info
    built.append(Section("Run", text_html([
        f"Manifest {info.manifest}, split '{info.split}', {len(info.cases)} cases: {', '.join(info.cases)}.",
        "Predictions: " + "; ".join(f"{a} = {p}" + (f" (label {info.labels[a]})" if a in info.labels else "")
                                    for a, p in info.predictions.items()) + ".",
        f"Settings: {info.config}.",
    ])))
    return render_page(f"Evaluation: {', '.join(info.algorithms)} vs {', '.join(info.raters)}",
                       [*built, *sections])


def write_report(folder: str | Path, out: str | Path, sections: Sequence[Section] = (),
                 rating: str | Path | None = None) -> Path:
    """Write ``build_report(folder, sections, rating)`` to ``out`` atomically."""
    write_text(out, build_report(folder, sections, rating))
    return Path(out)


def _read_tests(root: Path) -> tuple[PairedTest, ...]:
    return from_csv(root / STATS_FILE, PairedTest)


def _figure(root: Path, name: str) -> list[Section]:
    path = root / name
    return [Section(FIGURES[name], image_html(path.read_bytes(), FIGURES[name]))] if path.is_file() else []
