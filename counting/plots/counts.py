"""Accuracy per true count: which answers a model gets right (one panel per d, one curve per m)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt

from counting.plots.data import PlotData, rows_of
from counting.plots.style import curve_style, save, title


def accuracy_per_count(data: PlotData) -> list[Path]:
    """accuracy_per_count (one figure per series): per d, the accuracy at each true count c, one curve per m,
    pooled over seeds (weighted by support), from counts.csv."""
    paths = []
    cols = data.analysis.columns
    for series, label, suffix in data.series_items():
        rows = rows_of(data.counts, cols, series)
        if not rows:
            continue
        right: dict[tuple, float] = defaultdict(float)
        seen: dict[tuple, float] = defaultdict(float)
        for r in rows:  # pooled over seeds: right answers / answers, per (d, m, count)
            key = (r["d"], r["m"], int(r["count"]))
            right[key] += r["accuracy"] * r["support"]
            seen[key] += r["support"]
        d_D = sorted({k[0] for k in seen})
        m_M = sorted({k[1] for k in seen})
        fig, axes = plt.subplots(1, len(d_D), figsize=(3.0 * len(d_D) + 1.0, 3.2), sharey=True, squeeze=False)
        for ax, d in zip(axes[0], d_D):
            for i, m in enumerate(m_M):
                c_C = sorted(k[2] for k in seen if k[0] == d and k[1] == m and seen[k] > 0)
                if c_C:
                    ax.plot(c_C, [right[(d, m, c)] / seen[(d, m, c)] for c in c_C], label=f"m = {m}",
                            markersize=3, **curve_style(i, len(m_M)))
            ax.set_title(f"d = {d}", fontsize=9)
            ax.set_xlabel("true count c")
            ax.set_ylim(-0.02, 1.02)
        axes[0][0].set_ylabel("accuracy at count c")
        axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
        fig.suptitle(title(data.experiment, label, data.seeds(series), "(pooled over seeds)"), fontsize=9)
        fig.tight_layout()
        paths += save(fig, data.out_dir, f"accuracy_per_count{suffix}")
    return paths
