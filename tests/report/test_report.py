"""Report building blocks: cell formatting, slice choice, HTML page."""

from __future__ import annotations

import math

import numpy as np

from hepaseg.evaluation.stats import PairedTest
from hepaseg.report.html import Section, image_html, render_page, table_html
from hepaseg.report.overlays import disagreement_slice
from hepaseg.report.summary import compare
from hepaseg.report.tables import mean_sd, median, p_value


def test_mean_sd_uses_sample_sd_and_skips_nan():
    assert mean_sd([1.0, 2.0, 3.0, math.nan]) == "2.000 \u00b1 1.000"
    assert mean_sd([0.5]) == "0.500"
    assert mean_sd([math.nan]) == "-"


def test_median_like_the_paper():
    assert median([2.0, 2.0, 3.0]) == "2"
    assert median([1.0, 2.333, 3.0]) == "2.3"
    assert median([6.0, 5.0, 7.0, 6.0]) == "6"


def test_p_value_cells():
    def test(p: float, significant: bool) -> PairedTest:
        return PairedTest("segmentation", "dice", "R1", "A1", "A2", 1.0, p, p, significant, 19)

    assert p_value(test(0.0017, True)) == "0.0017*"
    assert p_value(test(0.0269, False)) == "0.0269"
    assert p_value(test(1e-6, True)) == "<0.0001*"
    assert p_value(test(math.nan, False)) == "-"
    assert p_value(None) == "-"


def test_disagreement_slice():
    a = np.zeros((4, 4, 5), dtype=bool)
    b = a.copy()
    a[:, :, 1] = b[:, :, 1] = True  # agreement on slice 1
    a[0, 0, 3] = True  # one voxel of disagreement on slice 3
    assert disagreement_slice([a, b]) == 3
    assert disagreement_slice([a, a]) == 1  # no disagreement: most tumour
    empty = np.zeros((4, 4, 5), dtype=bool)
    assert disagreement_slice([empty, empty]) == 2  # nothing: the middle


def test_page_escapes_text_and_embeds_images():
    page = render_page("A & B", [Section("T<1>", table_html(["x"], [["<b>"]], "cap")),
                                 Section("img", image_html(b"\x89PNG", "fig"))])
    assert "A &amp; B" in page and "T&lt;1&gt;" in page and "&lt;b&gt;" in page
    assert 'src="data:image/png;base64,iVBORw=="' in page


def test_comparison_names_the_better_one_with_its_value_first():
    assert compare("mean Dice", "A1", "A2", 0.611, 0.625) == "A2 is better than A1 in mean Dice (0.625 vs 0.611)"
    assert compare("mean Dice", "A1", "A2", 0.7, 0.6) == "A1 is better than A2 in mean Dice (0.700 vs 0.600)"
    assert compare("phi", "A1", "A2", 0.5, 0.5002) == "A1 and A2 reach the same phi (0.500 vs 0.500)"
    assert compare("ASSD", "A1", "A2", 2.0, 3.0, lower_is_better=True) == "A1 is better than A2 in ASSD (2.000 vs 3.000)"
    assert compare("ASSD", "A1", "A2", 3.5, 3.0, lower_is_better=True) == "A2 is better than A1 in ASSD (3.000 vs 3.500)"
