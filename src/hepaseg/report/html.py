"""One self-contained HTML page: inline CSS, images as base64 data URIs, no external resource.

A page is a title and a list of ``Section(title, html)`` blocks, so that other commands (e.g. a
study) can add their own sections to the evaluation report.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 3px 7px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #eee; } caption { caption-side: bottom; text-align: left; font-size: 0.85em;
  color: #444; padding-top: 4px; max-width: 1100px; white-space: normal; }
img { max-width: 100%; height: auto; }
"""


@dataclass(frozen=True)
class Section:
    """A titled block of the page; ``html`` is trusted markup (escape user text with ``text_html``)."""

    title: str
    html: str


def text_html(paragraphs: Sequence[str]) -> str:
    """Paragraphs of plain text, escaped."""
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)


def table_html(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    """An HTML table of plain-text cells (escaped)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image_html(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG embedded as a base64 data URI."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_page(title: str, sections: Sequence[Section]) -> str:
    """The complete HTML document."""
    body = "".join(f"<section><h2>{html.escape(s.title)}</h2>{s.html}</section>" for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")
