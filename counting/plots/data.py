"""Everything a figure may need of one experiment, loaded once: the analysis of table.csv,
the per-count table and the out-of-distribution table (each optional)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from counting.analysis.analyze import Analysis, analyze
from counting.analysis.table import series_label
from counting.config import AnalysisConfig
from counting.plots.style import file_suffix
from counting.store import COUNTS, FIGURES, OOD_TABLE, TABLE
from counting.store.columns import read_table, series_of


@dataclasses.dataclass
class PlotData:
    """What the figures of one experiment are drawn from: its name, the figures folder, the analysis settings
    and the table's analysis, the counts.csv and completed ood.csv rows, and the budget study's analysis when
    there is one."""

    experiment: str
    out_dir: Path
    cfg: AnalysisConfig
    analysis: Analysis
    counts: list[dict]  # counts.csv rows (may be empty)
    ood: list[dict]  # ood.csv rows with status complete (may be empty)
    budget: Analysis | None = None  # the analysis of budget.csv (the budget study), if there is one

    def seeds(self, series: tuple) -> int | str:
        """The number of seeds per cell of a series (the most common count)."""
        cells = [c for c in self.analysis.cells if c.series == series]
        per_cell = [len(c.seeds_S) for c in cells]
        seeds = max(set(per_cell), key=per_cell.count) if per_cell else 0
        searched = [len(c.acc_S) // max(len(c.seeds_S), 1) for c in cells if c.chosen_S is not None]
        if searched:
            return f"{seeds} seeds x {max(searched)} optimiser settings searched"
        return seeds

    def series_items(self):
        """(series, its label, its file-name suffix) for every series of the table."""
        all_series = self.analysis.series()
        for series in all_series:
            yield (series, series_label(self.analysis.columns, series),
                   file_suffix(self.analysis.columns, series, len(all_series) > 1))


def rows_of(rows: list[dict], columns: list[str], series: tuple) -> list[dict]:
    """The rows (of any table with the series columns) that belong to one series."""
    return [r for r in rows if series_of(r, columns) == series]


def load(root: Path, experiment: str, cfg: AnalysisConfig, analysis: Analysis | None = None,
         budget: Analysis | None = None) -> PlotData:
    """root is results/<experiment>; figures go to root/figures. The tables are analysed here
    unless the caller passes their analyses (made with the same cfg)."""
    from counting.analysis.budget import BUDGET_TABLE

    analysis = analysis or analyze(read_table(root / TABLE), cfg)
    if budget is None and (root / BUDGET_TABLE).exists():
        budget = analyze(read_table(root / BUDGET_TABLE), cfg)
    counts = read_table(root / COUNTS) if (root / COUNTS).exists() else []
    ood = []
    if (root / OOD_TABLE).exists():
        ood = [r for r in read_table(root / OOD_TABLE)
               if r.get("eval_status") == "complete"]
    return PlotData(experiment, root / FIGURES, cfg, analysis, counts, ood, budget)
