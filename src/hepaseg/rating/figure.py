"""Fig. 4 of the paper as PNG bytes (matplotlib, Agg canvas; no pyplot state).

Left: the histogram of ratings 1-5 per algorithm (share of that algorithm's ratings). Then one panel
per algorithm: its rating counts stacked by the mean image quality of the case. A simulated rater
is named in the title.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SCORES = (1, 2, 3, 4, 5)


def rating_figure(summary: dict[str, Any]) -> bytes:
    """The figure for an export's ``summary`` (export.summarise)."""
    algorithms = summary["algorithms"]
    fig = Figure(figsize=(4.2 * (1 + len(algorithms)), 3.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 1 + len(algorithms), squeeze=False)[0]
    width = 0.8 / max(len(algorithms), 1)
    for k, algorithm in enumerate(algorithms):
        d = summary["per_algorithm"][algorithm]
        counts = np.array([d["histogram"][str(s)] for s in SCORES], float)
        share = counts / max(counts.sum(), 1) * 100
        label = f"{algorithm}: mean {d['mean']:.2f}, median {d['median']:g}, 4-5: {d['share_4_5'] * 100:.0f} %"
        axes[0].bar(np.array(SCORES) + (k - (len(algorithms) - 1) / 2) * width, share, width, label=label,
                    color=f"C{k}")
    axes[0].set(xlabel="rating (1 very poor - 5 very good)", ylabel="share of contours (%)", xticks=SCORES,
                title="ratings per algorithm")
    axes[0].legend(fontsize=7, loc="upper left")
    levels = summary["quality_levels"]
    colours = [f"C{k + 2}" for k in range(len(levels))]
    for ax, algorithm in zip(axes[1:], algorithms):
        bottom = np.zeros(len(SCORES))
        for level, colour in zip(levels, colours):
            d = summary["by_quality"][algorithm][level]
            counts = np.array([d["histogram"][str(s)] for s in SCORES], float)
            ax.bar(SCORES, counts, 0.7, bottom=bottom, color=colour, label=f"quality {level} (n={d['n']})")
            bottom += counts
        ax.set(xlabel="rating", ylabel="contours", xticks=SCORES, title=f"{algorithm} by mean image quality")
        ax.legend(fontsize=7, loc="upper left")
    who = ("SIMULATED rater(s) " + ", ".join(summary["simulated_raters"]) if summary["simulated"]
           else "rater(s) " + ", ".join(summary["raters"]))
    fig.suptitle(f"Blinded rating by {who}: {summary['rated']} of {summary['items']} contours rated", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
