"""The report's liver section: the liver model's masks against the given ones on the test cases
(``evaluation.liver``'s ``liver.csv`` in the evaluation folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..evaluation.liver import LIVER_FILE, LiverScore
from ..evaluation.results import from_csv
from .html import Section, table_html, text_html
from .tables import mean_sd


def liver_sections(evaluation: str | Path) -> list[Section]:
    """The section, or none when the evaluation folder has no ``liver.csv``."""
    path = Path(evaluation) / LIVER_FILE
    if not path.is_file():
        return []
    rows = from_csv(path, LiverScore)
    dice = np.array([r.dice for r in rows], dtype=np.float64)
    assd = np.array([r.assd_mm for r in rows], dtype=np.float64)
    scored = [r for r in rows if not np.isnan(r.dice)]
    missing = [r.case for r in rows if np.isnan(r.dice)]
    lines = [f"The liver model against the given liver masks on {len(rows)} test cases: Dice {mean_sd(dice)}, "
             f"mean surface distance {mean_sd(assd)} mm (mean ± SD)."]
    if scored:
        worst = min(scored, key=lambda r: r.dice)
        lines.append(f"The lowest Dice is {worst.dice:.3f} ({worst.case}).")
    if missing:
        lines.append(f"No plausible liver in {len(missing)} case(s): {', '.join(missing)}; there the fully "
                     "automatic algorithms found no tumour (an empty mask is evaluated).")
    lines.append("The algorithms named '-auto' in Tables 1 and 2 segmented the tumours inside these predicted "
                 "livers (fully automatic); the others inside the given ones (the paper's setting).")
    text = text_html([" ".join(lines)])
    table = table_html(("case", "Dice", "mean surface distance (mm)", "HD95 (mm)", "predicted (mL)", "given (mL)"),
                       [(r.case, f"{r.dice:.3f}", f"{r.assd_mm:.2f}", f"{r.hd95_mm:.2f}", f"{r.predicted_ml:.0f}",
                         f"{r.given_ml:.0f}") for r in rows])
    return [Section("Liver model", text + table)]
