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

FIGURES: dict[str, Callable[[PlotData], list[Path]]] = {
    "phase_diagram": phase_diagram,
    "accuracy_vs_m": accuracy_vs_m,
    "threshold_vs_d": threshold_vs_d,
    "accuracy_per_count": accuracy_per_count,
    "ood_length": lambda data: ood_figure(data, "ood_length"),
    "ood_vocab": lambda data: ood_figure(data, "ood_vocab"),
    **INSPECT_FIGURES,  # counting-inspect: need results/<experiment>/inspect.csv (none drawn without it)
}


def plot_all(data: PlotData, names=None) -> dict[str, list[Path]]:
    return {name: FIGURES[name](data) for name in (names or FIGURES)}


__all__ = ["FIGURES", "PlotData", "load", "plot_all"]
