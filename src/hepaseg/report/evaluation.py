"""The evaluation folder's tables and figures: rendered from the results, nothing written.

``render_evaluation`` gives ``table1.md`` / ``.csv``, ``table2.md`` / ``.csv`` and the PNG figures in
``FIGURES``; the example-slice figure reads the chosen cases' images and masks from the files the
evaluation found (``EvaluationInputs``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..evaluation.inputs import EvaluationInputs
from ..evaluation.results import Results
from ..evaluation.stats import PairedTest
from .figures import (
    lesion_dice_figure,
    overlay_figure,
    recall_by_size_figure,
    segmentation_figure,
    surface_figure,
)
from .overlays import OverlayPanel, load_panel, select_cases
from .tables import table1, table2

FIGURES = {
    "segmentation.png": "Figure 2: segmentation per case",
    "surface.png": "Surface distances per case",
    "recall_by_size.png": "Detection recall by lesion size",
    "lesion_dice.png": "Lesion-level agreement: Dice per correspondence",
    "overlays.png": "Figure 3: example slices",
}


def render_evaluation(results: Results, tests: Sequence[PairedTest], inputs: EvaluationInputs) -> dict[str, str | bytes]:
    """Tables and figures of ``results``: file name -> contents (text or PNG bytes)."""
    info = results.info
    files: dict[str, str | bytes] = {}
    for table in (table1(results, tests), table2(results, tests)):
        files[f"{table.name}.md"] = table.markdown()
        files[f"{table.name}.csv"] = table.csv()
    files["segmentation.png"] = segmentation_figure(results)
    files["surface.png"] = surface_figure(results)
    files["recall_by_size.png"] = recall_by_size_figure(results)
    files["lesion_dice.png"] = lesion_dice_figure(results)
    files["overlays.png"] = overlay_figure(_overlay_panels(results, inputs), info.raters, info.algorithms)
    return files


def _overlay_panels(results: Results, inputs: EvaluationInputs) -> list[OverlayPanel]:
    algorithms = results.info.algorithms
    return [load_panel(inputs.case(case_id), {a: inputs.files[a][case_id] for a in algorithms}, results.info.raters,
                       title)
            for case_id, title in select_cases(results, algorithms[0])]
