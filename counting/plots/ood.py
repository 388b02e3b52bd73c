"""Out-of-distribution accuracy: against the evaluation length n' and against the number k'
of distinct tokens per sequence (one panel per series and d; one curve per trained m, or per
trained k where the experiment sweeps k; the training value is marked)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from counting.analysis.table import series_label
from counting.plots.data import PlotData
from counting.plots.style import curve_style, save, title
from counting.store.columns import series_of

AXES = {  # figure name -> (x column, training column, which points belong, x label)
    "ood_length": ("eval_n", "n", lambda r: r["eval_k"] == r["k"], "evaluation length n'"),
    "ood_vocab": ("eval_k", "k", lambda r: r["eval_n"] == r["n"], "distinct tokens per sequence k'"),
}


def _panel_key(cols: list[str], r: dict) -> tuple:
    return series_of(r, cols)


def ood_figure(data: PlotData, name: str) -> list[Path]:
    """ood_length or ood_vocab (`name`, AXES): per series and d, the mean accuracy over seeds against the
    evaluation length n' (or k'), one curve per m (or k, where k is swept), the training point starred; no
    figure when nothing was evaluated away from the training value."""
    x_col, train_col, belongs, xlabel = AXES[name]
    rows = [r for r in data.ood if belongs(r)]
    if not any(r[x_col] != r[train_col] for r in rows):
        return []  # nothing evaluated away from the training value along this axis
    sweeps_k = any(r["k"] != r["m"] for r in rows)
    curve_col = "k" if sweeps_k and name == "ood_vocab" else "m"
    panel_cols = [c for c in data.analysis.columns if c != "k"] + ["d"]
    panels = sorted({_panel_key(panel_cols, r) for r in rows}, key=str)
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols + 1.2, 3.0 * nrows + 0.4), sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    seeds = set()
    for ax, panel in zip(axes.flat, panels):
        prs = [r for r in rows if _panel_key(panel_cols, r) == panel]
        curves = sorted({r[curve_col] for r in prs})
        for i, v in enumerate(curves):
            acc: dict[int, list[float]] = defaultdict(list)
            train_x = None
            for r in prs:
                if r[curve_col] == v:
                    acc[int(r[x_col])].append(r["accuracy"])
                    seeds.add(r["seed"])
                    train_x = int(r[train_col])
            x_X = sorted(acc)
            st = curve_style(i, len(curves))
            ax.plot(x_X, [np.mean(acc[x]) for x in x_X], label=f"{curve_col} = {v}", markersize=4, **st)
            if train_x in acc:
                ax.plot([train_x], [np.mean(acc[train_x])], marker="*", markersize=11, color=st["color"],
                        linestyle="none")
        ax.set_title(series_label(panel_cols, panel).replace("task=", ""), fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
    for row in axes:
        row[0].set_ylabel("accuracy (mean over seeds)")
    axes[0][ncols - 1].legend(title="* = training point", title_fontsize=7, fontsize=7, loc="upper left",
                              bbox_to_anchor=(1.02, 1.0))
    values = lambda c: ",".join(str(v) for v in sorted({r[c] for r in rows}))
    label = f"task={values('task')} m={values('m')} trained at n={values('n')}"
    fig.suptitle(title(data.experiment, label, len(seeds)), fontsize=9)
    fig.tight_layout()
    return save(fig, data.out_dir, name)
