"""The paper's figures as PNG bytes (matplotlib, Agg canvas; no pyplot state).

- ``segmentation_figure``: Fig. 2 - per-case Dice against each rater; mean Dice vs inter-rater
  Dice; phi with the rater-level line (1 - alpha = 0.9).
- ``recall_by_size_figure``: detection recall by reference lesion volume, pooled over cases and
  raters (inter-rater: over rater pairs).
- ``surface_figure``: ASSD and HD95 per case (mean over raters), a box per algorithm and the raters.
- ``lesion_dice_figure``: the Dice of each matched (true-positive) lesion correspondence, a box per
  algorithm and the raters.
- ``overlay_figure``: Fig. 3 - example slices, rater contours (top row) and algorithm contours
  (bottom row) over the image.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..evaluation.results import INTER_RATER, MEAN, Results
from .overlays import OverlayPanel

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# Fig. 3: white solid / yellow dashed / cyan finely dotted, then more.
CONTOUR_STYLES = (("white", "solid"), ("yellow", "dashed"), ("cyan", "dotted"), ("magenta", "dashdot"),
                  ("lime", "solid"), ("orange", "dashed"), ("red", "dotted"), ("deepskyblue", "dashdot"))
SIZE_BINS_ML = (0.0, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0, np.inf)


def figure_png(fig: Figure) -> bytes:
    """A figure as PNG bytes (on an Agg canvas; no pyplot state)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _colour(index: int) -> str:
    return f"C{index % 10}"


def segmentation_figure(results: Results) -> bytes:
    """Fig. 2: three rows over the cases (x: case index 1..N, in manifest order)."""
    info = results.info
    n = len(info.cases)
    x = np.arange(1, n + 1)
    fig = Figure(figsize=(max(7.0, 0.32 * n + 3.0), 8.5), layout="constrained")
    top, middle, bottom = fig.subplots(3, 1, sharex=True)
    width = 0.6 / max(len(info.algorithms), 1)
    for a_index, algorithm in enumerate(info.algorithms):
        offset = (a_index - (len(info.algorithms) - 1) / 2) * width
        for r_index, rater in enumerate(info.raters):
            top.scatter(x + offset, results.values("segmentation", "dice", algorithm, rater), s=18,
                        marker=MARKERS[r_index % len(MARKERS)], color=_colour(a_index),
                        label=f"D({algorithm},{rater})")
        middle.plot(x, results.values("scores", "mean_dice", algorithm), marker="o", ms=4, lw=1,
                    color=_colour(a_index), label=f"mean D({algorithm},Ri)")
        bottom.plot(x, results.values("scores", "phi", algorithm), marker="o", ms=4, lw=1,
                    color=_colour(a_index), label=f"\u03c6({algorithm})")
    middle.plot(x, results.values("segmentation", "dice", INTER_RATER, MEAN), marker="x", ms=5, lw=1,
                color="black", label="mean D(Ri,Rj)")
    level = 1.0 - info.config.phi_alpha
    bottom.axhline(level, color="grey", ls="--", lw=1, label=f"rater level ({level:g})")
    for ax, title in ((top, "Dice per rater"), (middle, "Mean Dice vs inter-rater Dice"),
                      (bottom, "Uncertainty-aware score \u03c6")):
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=min(6, len(info.algorithms) * max(len(info.raters), 1)), loc="lower left")
    bottom.set_xticks(x)
    bottom.set_xticklabels([str(i) for i in x] if n > 25 else list(info.cases), rotation=90, fontsize=7)
    bottom.set_xlabel("test case")
    return figure_png(fig)


def _size_bin_labels() -> list[str]:
    edges = SIZE_BINS_ML
    labels = [f"<{edges[1]:g}"]
    labels += [f"{lo:g}-{hi:g}" for lo, hi in zip(edges[1:-2], edges[2:-1])]
    return labels + [f">{edges[-2]:g}"]


def recall_by_size(results: Results, algorithm: str) -> tuple[np.ndarray, np.ndarray]:
    """Detected and total reference lesions per volume bin (``SIZE_BINS_ML``), pooled over cases and raters."""
    volumes, detected = [], []
    for row in results.correspondences:
        if row.algorithm == algorithm and row.kind in ("tp", "fn"):
            volumes += row.ref_volumes_ml
            detected += [row.matched] * len(row.ref_volumes_ml)
    bins = np.digitize(np.asarray(volumes, dtype=np.float64), SIZE_BINS_ML[1:-1])
    n_bins = len(SIZE_BINS_ML) - 1
    total = np.bincount(bins, minlength=n_bins)
    hits = np.bincount(bins, weights=np.asarray(detected, dtype=np.float64), minlength=n_bins)
    return hits, total


def recall_by_size_figure(results: Results) -> bytes:
    """Grouped bars: recall per lesion-volume bin for each algorithm and the raters (inter-rater)."""
    groups = _groups(results)
    counts = {g: recall_by_size(results, g) for g in groups}
    used = np.flatnonzero(sum(total for _, total in counts.values()) > 0)
    labels = _size_bin_labels()
    fig = Figure(figsize=(max(6.0, 1.3 * max(len(used), 1) + 2.0), 4.0), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(groups)
    for g_index, group in enumerate(groups):
        hits, total = counts[group]
        recall = np.divide(hits[used], total[used], out=np.full(len(used), np.nan), where=total[used] > 0)
        xs = np.arange(len(used)) + (g_index - (len(groups) - 1) / 2) * width
        colour = "black" if group == INTER_RATER else _colour(g_index)
        bars = ax.bar(xs, np.nan_to_num(recall), width * 0.9, color=colour,
                      alpha=0.5 if group == INTER_RATER else 0.85,
                      label="raters (Ri,Rj)" if group == INTER_RATER else group)
        for bar, n in zip(bars, total[used]):
            ax.annotate(f"{int(n)}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                        va="bottom", fontsize=6, xytext=(0, 1), textcoords="offset points")
    ax.set_xticks(np.arange(len(used)))
    ax.set_xticklabels([labels[i] for i in used])
    ax.set_xlabel("reference lesion volume (mL)")
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1.1)
    ax.set_title("Detection recall by lesion size (numbers: reference lesions, pooled over cases and raters)",
                 fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return figure_png(fig)


def _groups(results: Results) -> list[str]:
    """The algorithms in order, then the raters against each other."""
    return [*results.info.algorithms, INTER_RATER]


def _boxes(ax, groups: Sequence[str], values: Sequence[np.ndarray], ylabel: str) -> None:
    """One box per group (colour per algorithm, grey for the raters) with its n under the name."""
    data = [v[~np.isnan(v)] for v in values]
    positions = [i for i, d in enumerate(data) if d.size]
    if positions:
        boxes = ax.boxplot([data[i] for i in positions], positions=positions, widths=0.6, patch_artist=True,
                           medianprops={"color": "black"})
        for box, i in zip(boxes["boxes"], positions):
            box.set_facecolor("0.75" if groups[i] == INTER_RATER else _colour(i))
            box.set_alpha(0.7)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{'raters (Ri,Rj)' if g == INTER_RATER else g}\nn={d.size}" for g, d in zip(groups, data)],
                       fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def surface_figure(results: Results) -> bytes:
    """ASSD and HD95 (mm) per case, as the mean over raters, one box per algorithm and the raters."""
    groups = _groups(results)
    fig = Figure(figsize=(max(6.0, 1.4 * len(groups) + 3.0), 4.0), layout="constrained")
    for ax, field, title in zip(fig.subplots(1, 2), ("assd_mm", "hd95_mm"), ("ASSD", "HD95")):
        _boxes(ax, groups, [results.values("segmentation", field, g, MEAN) for g in groups], f"{title} (mm)")
        ax.set_title(f"{title} per case (mean over raters; n: cases with a value)", fontsize=9)
    return figure_png(fig)


def lesion_dice(results: Results, group: str) -> np.ndarray:
    """Dice of every true-positive correspondence of ``group`` (an algorithm or ``inter-rater``), pooled over
    cases and raters (rater pairs)."""
    return np.array([row.dice for row in results.correspondences if row.algorithm == group and row.kind == "tp"],
                    dtype=np.float64)


def lesion_dice_figure(results: Results) -> bytes:
    """Distribution of the per-correspondence Dice (matched lesions only), one box per algorithm and the raters."""
    groups = _groups(results)
    fig = Figure(figsize=(max(6.0, 1.2 * len(groups) + 2.0), 4.0), layout="constrained")
    ax = fig.subplots()
    _boxes(ax, groups, [lesion_dice(results, g) for g in groups], "Dice of the correspondence")
    threshold = results.info.config.detection_dice_threshold
    ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"detection threshold ({threshold:g})")
    ax.set_ylim(0, 1.02)
    ax.set_title("Dice per matched lesion correspondence\n(n: correspondences, pooled over cases and raters)",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    return figure_png(fig)


def overlay_figure(panels: Sequence[OverlayPanel], raters: Sequence[str], algorithms: Sequence[str]) -> bytes:
    """Fig. 3: one column per panel; top row rater contours, bottom row algorithm contours."""
    fig = Figure(figsize=(3.6 * max(len(panels), 1), 7.6), layout="constrained")
    axes = fig.subplots(2, max(len(panels), 1), squeeze=False)
    for column, panel in enumerate(panels):
        for row, names in enumerate((raters, algorithms)):
            ax = axes[row, column]
            ax.imshow(panel.image, cmap="gray", aspect=panel.aspect, interpolation="nearest")
            for index, name in enumerate(names):
                mask = panel.masks[name]
                if mask.any() and not mask.all():
                    colour, style = CONTOUR_STYLES[index % len(CONTOUR_STYLES)]
                    ax.contour(mask.astype(np.float32), levels=[0.5], colors=[colour], linestyles=[style],
                               linewidths=1.2)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{panel.title}\n{panel.case}, {'ijk'[panel.slice_axis]} = {panel.slice_index}", fontsize=8)
    for row, names in enumerate((raters, algorithms)):
        handles = [Line2D([], [], color=CONTOUR_STYLES[i % len(CONTOUR_STYLES)][0],
                          ls=CONTOUR_STYLES[i % len(CONTOUR_STYLES)][1], label=n) for i, n in enumerate(names)]
        axes[row, -1].legend(handles=handles, fontsize=7, loc="lower right", facecolor="0.3", labelcolor="white")
    return figure_png(fig)
