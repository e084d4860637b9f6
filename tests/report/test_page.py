"""The report page (``report.page``) of a tiny evaluation: self-contained, extra sections at the end."""

from __future__ import annotations

from hepaseg.report.evaluation import FIGURES
from hepaseg.report.html import Section
from hepaseg.report.page import build_report


def test_report_is_self_contained(tiny_evaluation):
    _, out = tiny_evaluation
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(FIGURES) == 5
    assert page.count("<table") >= 3 and "Table 1" in page and "Table 2" in page
    assert "http://" not in page and "https://" not in page
    extra = build_report(out, [Section("Rating", "<p>extra block</p>")])
    assert extra.index("<h2>Rating</h2>") > extra.index("<h2>Paired tests</h2>")
