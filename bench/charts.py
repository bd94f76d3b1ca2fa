"""The benchmarks' charts: horizontal bars with ours highlighted, one figure per script."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

OURS_COLOUR, PEER_COLOUR = "#d95f02", "#9e9e9e"
QUICK_NOTE = ", --quick smoke run: not for quoting"


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display), imported only when charting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bars(
    ax: Any,
    labels: list[str],
    values: list[float],
    colours: list[str],
    xlabel: str,
    *,
    text: Callable[[float], str] = lambda value: f"{value:.1f}",
    log: bool = False,
) -> None:
    """Horizontal bars, first label on top, each with its value written at its end."""
    ax.barh(labels, values, color=colours)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
        from matplotlib.ticker import NullFormatter

        # A span under a decade would label its minor ticks, and they overlap.
        ax.xaxis.set_minor_formatter(NullFormatter())
    for y, value in enumerate(values):
        ax.text(value, y, f" {text(value)}", va="center", fontsize=8)
    ax.set_xlim(min(values) / 2 if log else 0, max(values) * (4 if log else 1.3))
    ax.set_xlabel(xlabel)


def finish(fig: Any, axes: Any, title: str, path: Path) -> None:
    """Small tick labels, the figure's title, a tight layout; write ``path`` and close."""
    for ax in axes:
        ax.tick_params(labelsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
