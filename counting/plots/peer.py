"""Our accuracy beside a published peer's, per cell: one panel per swept parameter of their
Fig. 7 (d at p = 64, p at d = 64): their mean over 5 seeds, ours with its seed range, and the
agreement rule's verdict per cell (= equivalent, x differs, ? undecided; counting.analysis.peer).
The d = 64, p = 64 cell is one row of compare.csv drawn in both panels (its `figures`)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt

from counting.plots.style import save

MARKS = {"equivalent": "=", "differs": "x", "undecided": "?"}  # verdict -> the mark drawn under our point


def _verdicts(ax, rs: list[dict], x: str, suffix: str, color: str) -> None:
    for r in rs:
        mark = MARKS.get(r.get(f"verdict{suffix}", ""))
        if mark:
            ax.annotate(mark, (r[x], r[f"ours{suffix}_min"]), textcoords="offset points", xytext=(6, -10),
                        fontsize=8, color=color)


def compare_figure(rows: list[dict], out_dir: Path) -> list[Path]:
    """compare: their Fig. 7a (against d) and 7b (against the MLP width p) of Behrens et al., their mean beside
    ours (mean and seed range, at 150 epochs and where trained at their 500), with each of our points' verdict
    against their runs marked."""
    panels = [("Fig07.a", "d", "embedding dimension d (p = 64)"), ("Fig07.b", "p", "MLP width p (d = 64)")]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, (figure, x, label) in zip(axes, panels):
        rs = sorted((r for r in rows if figure in str(r.get("figures") or r["figure"]).split()), key=lambda r: r[x])
        if not rs:
            continue
        ax.plot([r[x] for r in rs], [r["theirs"] for r in rs], "s-", color="black", label="Behrens et al. (mean of 5)")
        mine = [r for r in rs if not math.isnan(r["ours"])]
        if mine:
            ax.errorbar([r[x] for r in mine], [r["ours"] for r in mine],
                        yerr=[[r["ours"] - r["ours_min"] for r in mine], [r["ours_max"] - r["ours"] for r in mine]],
                        fmt="o--", color="tab:red", capsize=3, label="this suite, 150 epochs (mean, seed range)")
            _verdicts(ax, mine, x, "", "tab:red")
        full = [r for r in rs if not math.isnan(r.get("ours_full", math.nan))]
        if full:
            ax.errorbar([r[x] for r in full], [r["ours_full"] for r in full],
                        yerr=[[r["ours_full"] - r["ours_full_min"] for r in full],
                              [r["ours_full_max"] - r["ours_full"] for r in full]],
                        fmt="D", color="tab:blue", capsize=3, label="this suite, their 500 epochs")
            _verdicts(ax, full, x, "_full", "tab:blue")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(label)
        ax.set_title(f"their {figure}: dot+softmax, T = 64, L = 10", fontsize=9)

        ax.grid(alpha=0.3)
    axes[0].set_ylabel("per-token accuracy (histogram task)")
    axes[0].legend(fontsize=8)
    if rows and "margin" in rows[0]:
        fig.text(0.5, -0.02, f"under each of our points, its verdict against their 5 runs: = equivalent (TOST, margin "
                 f"{rows[0]['margin']:g}), x differs (Welch, Holm over the distinct cells), ? undecided; alpha "
                 f"{rows[0]['alpha']:g}", ha="center", va="top", fontsize=7, color="dimgray")
    return save(fig, out_dir, "compare")


def diagram_figure(cells: list[dict], out_dir: Path, name: str = "diagram_t32") -> list[Path]:
    """Their Fig. 1/2 in our runs: mean accuracy over the (d, p) grid, one panel per variant, one
    row per training length that ran (the runs at their full length, where any, below)."""
    import numpy as np

    from counting.analysis.peer import DIAGRAM_LENGTHS

    variants = sorted({c["variant"] for c in cells})
    lengths = [(suffix, length) for suffix, length in DIAGRAM_LENGTHS.items()
               if any(np.isfinite(c.get(f"ours{suffix}", np.nan)) for c in cells)]
    if not variants or not lengths:
        return []
    fig, axes = plt.subplots(len(lengths), len(variants), figsize=(4.8 * len(variants), 3.8 * len(lengths)),
                             squeeze=False, layout="constrained")  # a row's titles clear the labels above
    for row, (suffix, length) in zip(axes, lengths):
        for ax, variant in zip(row, variants):
            mine = [c for c in cells if c["variant"] == variant]
            ds, ps = sorted({c["d"] for c in mine}), sorted({c["p"] for c in mine})
            acc_PxD = np.full((len(ps), len(ds)), np.nan)
            for c in mine:
                acc_PxD[ps.index(c["p"]), ds.index(c["d"])] = c.get(f"ours{suffix}", np.nan)
            image = ax.imshow(acc_PxD, origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
            for i in range(len(ps)):
                for j in range(len(ds)):
                    if not np.isnan(acc_PxD[i, j]):
                        ax.text(j, i, f"{acc_PxD[i, j]:.2f}", ha="center", va="center", fontsize=8,
                                color="white" if acc_PxD[i, j] < 0.6 else "black")
            ax.set_xticks(range(len(ds)), [str(d) for d in ds])
            ax.set_yticks(range(len(ps)), [str(p) for p in ps])
            ax.set_xlabel("embedding dimension d")
            ax.set_ylabel("MLP width p")
            seeds = sorted({c[f"our_seeds{suffix}"] for c in mine if c.get(f"our_seeds{suffix}")})
            T, L = mine[0]["T"], mine[0]["L"]
            ax.set_title(f"{variant}: T = {T}, L = {L}, {length}, {'/'.join(map(str, seeds))} seeds", fontsize=8)
    fig.colorbar(image, ax=axes.ravel().tolist(), label="per-token accuracy")
    return save(fig, out_dir, name)
