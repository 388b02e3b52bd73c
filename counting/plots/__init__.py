"""Figures of an experiment, looked up by name: each takes the experiment's `PlotData` and
returns the files it wrote (PNG and PDF; none where the data does not support the figure)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from counting.plots.counts import accuracy_per_count
from counting.plots.data import PlotData, load
from counting.plots.inspect import INSPECT_FIGURES
from counting.plots.ood import ood_figure
from counting.plots.phase import accuracy_vs_m, phase_diagram, threshold_vs_d
from counting.plots.regimes import threshold_vs_axis

FIGURES: dict[str, Callable[[PlotData], list[Path]]] = {
    "phase_diagram": phase_diagram,
    "accuracy_vs_m": accuracy_vs_m,
    "threshold_vs_d": threshold_vs_d,
    "accuracy_per_count": accuracy_per_count,
    "ood_length": lambda data: ood_figure(data, "ood_length"),
    "ood_vocab": lambda data: ood_figure(data, "ood_vocab"),
    "threshold_vs_n": lambda data: threshold_vs_axis(data, "n"),  # phase_n
    "threshold_vs_w": lambda data: threshold_vs_axis(data, "w"),  # phase_width
    "threshold_vs_budget": lambda data: threshold_vs_axis(data, "budget"),  # needs budget.csv
    **INSPECT_FIGURES,  # counting-inspect: need results/<experiment>/inspect.csv (none drawn without it)
}


def plot_all(data: PlotData, names=None) -> dict[str, list[Path]]:
    """Draws the figures `names` (default every one of FIGURES) from the data; name -> the files written (none
    where there was nothing to draw)."""
    return {name: FIGURES[name](data) for name in (names or FIGURES)}


def draw(root: Path, experiment: str, cfg, names=None, analysis=None, budget=None) -> tuple[list[Path], str]:
    """Draws an experiment's figures into root/figures (from the analyses when the caller has
    them); returns the PNG files and a summary line."""
    written = plot_all(load(root, experiment, cfg, analysis, budget), names)
    files = [p for paths in written.values() for p in paths if p.suffix == ".png"]
    skipped = [n for n, paths in written.items() if not paths]
    line = f"{len(files)} figures (PNG + PDF) in {Path(root) / 'figures'}"
    return files, line + (f"; no data for: {', '.join(skipped)}" if skipped else "")


__all__ = ["FIGURES", "PlotData", "draw", "load", "plot_all"]
