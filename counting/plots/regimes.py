"""m_thr against the axis a regime study sweeps: the context length n (phase_n), the MLP
width w (phase_width) or the training budget (every phase experiment's budget study). One
figure per group of the other series columns; a curve per (d, method); open markers are
censored thresholds (every m passed: the true m_thr lies above, or every m failed: below)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from counting.plots.data import PlotData
from counting.plots.style import curve_style, file_suffix, save
from counting.store.columns import series_of

METHODS = ("interpolated", "best_seed")  # mean over seeds (learnability) and best seed (capacity)
LABELS = {"n": "context length n", "w": "MLP width w", "budget": "training budget (steps)"}


def _groups(analysis, axis: str) -> dict[tuple, list[dict]]:
    others = [c for c in analysis.columns if c != axis]
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in analysis.threshold_rows:
        if r["method"] in METHODS:
            out[series_of(r, others)].append(r)
    return out


def _mark_cost(ax, axis: str, rows: list[dict]) -> None:
    """phase_width: CountAttend's MLP cost at this n (results/theory): about sqrt(2n) knots at
    the argmax head's tolerance, n for exact interpolation."""
    if axis != "w" or "n" not in rows[0]:
        return
    n = int(rows[0]["n"])
    for x, text, style in ((math.sqrt(2 * n), f"sqrt(2n) = {math.sqrt(2 * n):.0f}", "--"), (n, f"n = {n}", ":")):
        ax.axvline(x, color="gray", linestyle=style, linewidth=1)
        ax.text(x, 1.0, f" CountAttend: {text}", rotation=90, va="top", ha="right", fontsize=7, color="gray",
                transform=ax.get_xaxis_transform())


def threshold_vs_axis(data: PlotData, axis: str) -> list[Path]:
    """One figure per series of the other columns: m_thr (mean of seeds and best seed, with intervals; censored
    ones circled) against `axis` (n, w, or the budget from the budget study), one colour per d with m = d
    dotted, and CountAttend's MLP cost marked against w."""
    analysis = data.budget if axis == "budget" else data.analysis
    if analysis is None or axis not in analysis.columns:
        return []
    paths = []
    others = [c for c in analysis.columns if c != axis]
    groups = _groups(analysis, axis)
    for key, rows in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if len({r[axis] for r in rows}) < 2:
            continue  # one value of the axis: nothing to draw against
        d_values = sorted({r["d"] for r in rows})
        fig, ax = plt.subplots(figsize=(5.8, 4.4))
        for i, d in enumerate(d_values):
            for j, method in enumerate(METHODS):
                rs = sorted((r for r in rows if r["d"] == d and r["method"] == method), key=lambda r: r[axis])
                if not rs:
                    continue
                st = curve_style(i, max(len(d_values), 2))
                x_T = np.array([float(r[axis]) for r in rs]) * (1.0 + 0.03 * j)
                m_T = np.array([r["m_thr"] for r in rs])
                err_2xT = np.nan_to_num(np.abs(np.array([[r["m_thr_low"] for r in rs], [r["m_thr_high"] for r in rs]]) - m_T))
                ax.errorbar(x_T, m_T, yerr=err_2xT, color=st["color"], marker=st["marker"] if j == 0 else "x",
                            linestyle="-" if j == 0 else "--", capsize=3,
                            label=f"d = {d}, {'mean of seeds' if j == 0 else 'best seed'}")
                open_T = np.array([bool(r["censored"]) for r in rs])
                if open_T.any():
                    ax.plot(x_T[open_T], m_T[open_T], "o", markerfacecolor="white", color=st["color"], markersize=9)
            ax.axhline(d, color=curve_style(i, max(len(d_values), 2))["color"], linestyle=":", linewidth=1)
        _mark_cost(ax, axis, rows)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel(LABELS[axis])
        ax.set_ylabel(f"m_thr (accuracy >= {data.cfg.tau}); dotted: m = d")
        ax.legend(fontsize=6, ncol=2)
        label = " ".join(f"{c}={v}" for c, v in zip(others, key))
        ax.set_title(f"{data.experiment}: {label}; m_thr against {axis} (open markers: censored)", fontsize=8)
        paths += save(fig, data.out_dir, f"threshold_vs_{axis}{file_suffix(others, key, len(groups) > 1)}")
    return paths
