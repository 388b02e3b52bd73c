"""Our accuracy beside a published peer's, per cell: one panel per swept parameter of their
Fig. 7 (d at p = 64, p at d = 64): their mean over 5 seeds, ours with its seed range."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt

from counting.plots.style import save


def compare_figure(rows: list[dict], out_dir: Path) -> list[Path]:
    panels = [("Fig07.a", "d", "embedding dimension d (p = 64)"), ("Fig07.b", "p", "MLP width p (d = 64)")]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, (figure, x, label) in zip(axes, panels):
        rs = sorted((r for r in rows if r["figure"] == figure), key=lambda r: r[x])
        if not rs:
            continue
        ax.plot([r[x] for r in rs], [r["theirs"] for r in rs], "s-", color="black", label="Behrens et al. (mean of 5)")
        mine = [r for r in rs if not math.isnan(r["ours"])]
        if mine:
            ax.errorbar([r[x] for r in mine], [r["ours"] for r in mine],
                        yerr=[[r["ours"] - r["ours_min"] for r in mine], [r["ours_max"] - r["ours"] for r in mine]],
                        fmt="o--", color="tab:red", capsize=3, label="this suite (mean, seed range)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(label)
        ax.set_title(f"their {figure}: dot+softmax, T = 64, L = 10", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("per-token accuracy (histogram task)")
    axes[0].legend(fontsize=8)
    return save(fig, out_dir, "compare")
