"""The selection figure (like the paper's Fig. 5): finished runs over wall time, losses over iterations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..io.atomic import atomic_path
from .schedule import Schedule
from .state import TaskResult


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds < 120:
        return 1.0, "s"
    if seconds < 7200:
        return 60.0, "min"
    return 3600.0, "h"


def plot_selection(results: Sequence[TaskResult], schedule: Schedule, winner: int, path: str | Path,
                   metric: str = "jaccard") -> Path:
    """Write the two-panel selection figure as PNG (matplotlib Agg), atomically.

    Left: cumulative number of finished run-to-budget tasks over wall time since the first task
    started, marked by rung. Right: validation loss ``1 - score`` (``metric``, Jaccard in the paper) of every run over its
    iterations (the winner drawn bold), with the rung budgets as dashed lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = min(r.started_at for r in results)
    scale, unit = _time_unit(max(r.finished_at for r in results) - start)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    finished = sorted(results, key=lambda r: r.finished_at)
    times = [(r.finished_at - start) / scale for r in finished]
    left.step([0.0, *times], range(len(times) + 1), where="post", color="grey", lw=1)
    for rung in schedule:
        points = [(t, n) for n, (t, r) in enumerate(zip(times, finished), 1) if r.rung == rung.index]
        if points:
            left.plot(*zip(*points), "o", ms=4, label=f"rung {rung.index}: {rung.runs} runs to {rung.iterations:,} it.")
    left.yaxis.get_major_locator().set_params(integer=True)
    left.set(xlabel=f"wall time ({unit})", ylabel="finished runs (run-to-budget tasks)",
             title="Finished runs over time")
    left.legend(fontsize="small")
    last = {}
    for r in results:  # each seed's longest history is the one of its last task
        if r.seed not in last or r.rung > last[r.seed].rung:
            last[r.seed] = r
    for seed, r in sorted(last.items()):
        its = [i for i, _ in r.history]
        loss = [1.0 - j for _, j in r.history]
        is_winner = seed == winner
        right.plot(its, loss, marker="o", ms=2.5, lw=2.2 if is_winner else 0.9, alpha=1.0 if is_winner else 0.6,
                   color="black" if is_winner else None, label=f"seed {seed} (winner)" if is_winner else None,
                   zorder=3 if is_winner else 2)
    for rung in schedule[:-1]:
        right.axvline(rung.iterations, color="grey", ls="--", lw=0.7)
    from ..training.validation import metric_label

    right.set(xlabel="iterations", ylabel=f"validation loss (1 - {metric_label(metric)})",
              title="Validation loss per run")
    right.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)
