"""The phase transition: heatmap over (d, m), accuracy against m, and m_thr against d."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects

from counting.plots.data import PlotData, rows_of
from counting.plots.style import CMAP, curve_style, log_edges, save, title


def thresholds_of(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d_T, m_thr_T, err_2xT): threshold rows as points with their interval as error bars."""
    d_T = np.array([r["d"] for r in rows], float)
    m_T = np.array([r["m_thr"] for r in rows])
    err_2xT = np.abs(np.array([[r["m_thr_low"] for r in rows], [r["m_thr_high"] for r in rows]]) - m_T)
    return d_T, m_T, np.nan_to_num(err_2xT)


def fit_line(fit: dict, d_lo: float, d_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """(d_L, m_L): the fitted m_thr = exp(intercept) d^slope over [d_lo, d_hi]."""
    d_L = np.geomspace(d_lo, d_hi, 50)
    return d_L, np.exp(fit["intercept"]) * d_L ** fit["slope"]


def phase_diagram(data: PlotData) -> list[Path]:
    """Mean accuracy over (m, d) on log axes, the line d = m, and m_thr(d) with its fit."""
    paths = []
    cols = data.analysis.columns
    for series, label, suffix in data.series_items():
        cells = [c for c in data.analysis.cells if c.series == series]
        d_D, m_M = sorted({c.d for c in cells}), sorted({c.m for c in cells})
        if len(d_D) < 2 or len(m_M) < 2:
            continue
        acc_DxM = np.full((len(d_D), len(m_M)), np.nan)
        for c in cells:
            acc_DxM[d_D.index(c.d), m_M.index(c.m)] = c.mean
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        mesh = ax.pcolormesh(log_edges(m_M), log_edges(d_D), np.ma.masked_invalid(acc_DxM), cmap=CMAP,
                             vmin=0.0, vmax=1.0, shading="flat")
        for i, d in enumerate(d_D):
            for j, m in enumerate(m_M):
                if np.isfinite(acc_DxM[i, j]):
                    ax.text(m, d * 1.15, f"{acc_DxM[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if acc_DxM[i, j] > 0.6 else "white")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        lo, hi = min(d_D[0], m_M[0]) / 2, max(d_D[-1], m_M[-1]) * 2
        ax.plot([lo, hi], [lo, hi], color="white", linestyle="--", linewidth=1.5, label="d = m",
                path_effects=[patheffects.withStroke(linewidth=2.5, foreground="black")])
        thr = [r for r in rows_of(data.analysis.threshold_rows, cols, series) if r["method"] == "interpolated"]
        if thr:
            d_T, m_T, err_2xT = thresholds_of(thr)
            ax.errorbar(m_T, d_T, xerr=err_2xT, fmt="o", color="red", ecolor="red", capsize=3,
                        markerfacecolor="none", label=f"m_thr(d), tau = {data.cfg.tau}")
        for f in rows_of(data.analysis.fit_rows, cols, series):
            if f["method"] == "interpolated" and f.get("over", "all d") == "all d":
                d_line, m_line = fit_line(f, d_D[0], d_D[-1])
                ax.plot(m_line, d_line, color="red", linestyle=":", label=f"fit: m_thr ~ d^{f['slope']:.2f}")
        ax.set_xlim(log_edges(m_M)[0], log_edges(m_M)[-1])
        ax.set_ylim(log_edges(d_D)[0], log_edges(d_D)[-1])
        ax.set_xlabel("vocabulary size m")
        ax.set_ylabel("embedding dimension d")
        fig.colorbar(mesh, ax=ax, label="accuracy (mean over seeds)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=7, frameon=False)
        ax.set_title(title(data.experiment, label, data.seeds(series)), fontsize=9)
        paths += save(fig, data.out_dir, f"phase_diagram{suffix}")
    return paths


def accuracy_vs_m(data: PlotData) -> list[Path]:
    """One curve per d with its bootstrap interval, the trivial baseline and tau."""
    paths = []
    cols = data.analysis.columns
    for series, label, suffix in data.series_items():
        rows = rows_of(data.analysis.cell_rows, cols, series)
        if len({r["m"] for r in rows}) < 2:
            continue
        d_D = sorted({r["d"] for r in rows})
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for i, d in enumerate(d_D):
            rs = sorted((r for r in rows if r["d"] == d), key=lambda r: r["m"])
            m_K = [r["m"] for r in rs]
            st = curve_style(i, len(d_D))
            ax.plot(m_K, [r["accuracy"] for r in rs], label=f"d = {d}", **st)
            ax.fill_between(m_K, [r["accuracy_low"] for r in rs], [r["accuracy_high"] for r in rs],
                            color=st["color"], alpha=0.2, linewidth=0)
            if all(r.get("exact_accuracy") is not None and np.isfinite(r["exact_accuracy"]) for r in rs):
                ax.plot(m_K, [r["exact_accuracy"] for r in rs], color=st["color"], linestyle="--", linewidth=1,
                        marker=st["marker"], markerfacecolor="white", label=f"d = {d}: worst in-support family")
            off = [(r["m"], r["offsupport_accuracy"]) for r in rs if r.get("offsupport_accuracy") is not None
                   and np.isfinite(r["offsupport_accuracy"])]
            if len(off) >= 2:
                ax.plot(*zip(*off), color=st["color"], linestyle=":", linewidth=1, marker=st["marker"],
                        markersize=3, markerfacecolor="white", label=f"d = {d}: worst off-support family")
        by_m: dict[int, list[float]] = {}
        for r in rows:
            by_m.setdefault(r["m"], []).append(r["baseline_accuracy"])
        m_B = sorted(by_m)
        ax.plot(m_B, [np.mean(by_m[m]) for m in m_B], color="gray", linestyle=(0, (1, 1)), label="trivial baseline")
        ax.axhline(data.cfg.tau, color="black", linewidth=0.8, linestyle="--", label=f"tau = {data.cfg.tau}")
        if any(r.get("exact_accuracy") is not None for r in rows):
            ax.axhline(data.cfg.exact, color="black", linewidth=0.6, linestyle=":", label=f"exact = {data.cfg.exact}")
        for d in d_D:
            ax.axvline(d, color="0.85", linewidth=0.6, zorder=0)  # m = d
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("vocabulary size m")
        ax.set_ylabel(f"accuracy ({round(100 * data.cfg.ci)}% bootstrap interval)")
        ax.legend(fontsize=7, ncol=2, loc="lower left")  # below the curves, above the baseline
        ax.set_title(title(data.experiment, label, data.seeds(series)), fontsize=9)
        paths += save(fig, data.out_dir, f"accuracy_vs_m{suffix}")
    return paths


# the methods threshold_vs_d draws (thresholds.csv holds them all): average accuracy over seeds,
# the best model (capacity), and both for exact counting (the worst test family) where measured
FIGURE_METHODS = ("interpolated", "best_seed", "exact_interpolated", "exact_best")


def threshold_vs_d(data: PlotData) -> list[Path]:
    """m_thr against d on log-log axes, each method with its fit over every d, and m = d."""
    paths = []
    cols = data.analysis.columns
    for series, label, suffix in data.series_items():
        thr = [r for r in rows_of(data.analysis.threshold_rows, cols, series) if r["method"] in FIGURE_METHODS]
        if not thr:
            continue
        fig, ax = plt.subplots(figsize=(5.6, 4.4))
        methods = [m for m in FIGURE_METHODS if any(r["method"] == m for r in thr)]
        for i, method in enumerate(methods):
            rs = [r for r in thr if r["method"] == method]
            st = curve_style(i, max(len(methods), 2))
            d_T, m_T, err_2xT = thresholds_of(rs)
            d_T = d_T * (1.0 + 0.03 * i)  # offset so the bars of the methods do not overlap
            open_T = np.array([bool(r["censored"]) for r in rs])
            ax.errorbar(d_T, m_T, yerr=err_2xT, fmt=st["marker"], color=st["color"], capsize=3,
                        label=f"{method}" + (" (open: censored)" if open_T.any() else ""))
            if open_T.any():
                ax.plot(d_T[open_T], m_T[open_T], st["marker"], markerfacecolor="white", color=st["color"])
            for f in rows_of(data.analysis.fit_rows, cols, series):
                if f["method"] == method and f.get("over", "all d") == "all d":
                    d_line, m_line = fit_line(f, min(r["d"] for r in rs), max(r["d"] for r in rs))
                    ax.plot(d_line, m_line, color=st["color"],
                            linestyle=st["linestyle"],
                            label=f"fit: slope {f['slope']:.2f} [{f['slope_low']:.2f}, {f['slope_high']:.2f}]")
        d_all = np.array(sorted({r["d"] for r in thr}), float)
        ax.plot(d_all, d_all, color="gray", linestyle=":", label="m = d (theory)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("embedding dimension d")
        exact = f" (exact_*: worst in-support family >= {data.cfg.exact:g})" if any(m.startswith("exact") for m in methods) else ""
        ax.set_ylabel(f"m_thr (accuracy >= {data.cfg.tau}){exact}", fontsize=8)
        ax.legend(fontsize=7)
        ax.set_title(title(data.experiment, label, data.seeds(series)), fontsize=9)
        paths += save(fig, data.out_dir, f"threshold_vs_d{suffix}")
    return paths
