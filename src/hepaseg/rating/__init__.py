"""The blinded expert rating of the automatic contours (METHOD.md section 9, the paper's Fig. 4).

Modules, one job each: ``protocol`` (who sees which contour in which round), ``store`` (the SQLite
database), ``images`` (the image stacks and masks the viewer draws), ``prepare`` (``rate init``),
``app`` (the web app), ``serve`` (``rate serve``), ``simulate`` (the simulated rater of ``rate
simulate``), ``export`` and ``figure`` (``rate export``: CSV, summary, Fig. 4, the paired test).
The viewer's HTML, JavaScript and CSS are package data in ``static/``. docs/rating.md has the
protocol, the security model and how to run it in a hospital network.
"""

from .export import export_ratings
from .prepare import init_rating
from .protocol import Item, assign
from .simulate import simulate_ratings

__all__ = ["Item", "assign", "export_ratings", "init_rating", "simulate_ratings"]
