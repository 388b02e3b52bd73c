"""Figures of `counting-inspect` (read from results/<experiment>/inspect.csv and
inspect_fit.csv beside the table): embedding coherence, attention mass, weight norms and
the mechanism label against m/d, and accuracy per true count against top-k."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from counting.columns import read_rows
from counting.plots.data import PlotData
from counting.plots.style import colors, curve_style, log_edges, save

MECHANISM_COLORS = {"histogram": "#1b9e77", "count_attend": "#7570b3", "neither": "#d9d9d9"}
NORM_PANELS = ("norm_qk", "norm_ov", "norm_mlp", "norm_total")


def _read(path: Path) -> list[dict]:
    return read_rows(path) if path.exists() else []


def inspected(data: PlotData) -> list[dict]:
    return [r for r in _read(data.out_dir.parent / "inspect.csv") if r.get("inspect_status") == "complete"]


def _by_task(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        out[r["task"]].append(r)
    return dict(sorted(out.items()))


def _scatter_by_d(ax, rows: list[dict], y: str) -> None:
    d_D = sorted({r["d"] for r in rows})
    for i, d in enumerate(d_D):
        part = [r for r in rows if r["d"] == d]
        st = curve_style(i, len(d_D))
        ax.scatter([r["m"] / r["d"] for r in part], [r[y] for r in part], color=st["color"], marker=st["marker"],
                   s=14, alpha=0.8, label=f"d = {int(d)}")
    ax.set_xscale("log", base=2)
    ax.axvline(1.0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("m / d")


def _panels(k: int, per_row: int = 4, h: float = 3.0):
    fig, axes = plt.subplots(1, k, figsize=(3.3 * k + 1.0, h), squeeze=False)
    return fig, axes[0]


def coherence_figure(data: PlotData) -> list[Path]:
    tasks = _by_task(inspected(data))
    if not tasks:
        return []
    fig, axes = _panels(len(tasks))
    for ax, (task, rows) in zip(axes, tasks.items()):
        _scatter_by_d(ax, rows, "coherence")
        d_D = sorted({r["d"] for r in rows})
        for i, d in enumerate(d_D):
            m_M = sorted({r["m"] for r in rows if r["d"] == d})
            welch = [math.sqrt((m - d) / (d * (m - 1))) if m > d else 0.0 for m in m_M]
            ax.plot([m / d for m in m_M], welch, color=colors(len(d_D))[i], lw=1.0, ls="--")
        ax.set_title(f"task = {task} (dashed: Welch bound)", fontsize=9)
        ax.set_ylabel("coherence max |cos(e_s, e_t)|")
        ax.set_ylim(-0.02, 1.02)
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"{data.experiment}: token-embedding coherence against m/d", fontsize=9)
    fig.tight_layout()
    return save(fig, data.out_dir, "inspect_coherence")


def attention_figure(data: PlotData) -> list[Path]:
    tasks = _by_task(inspected(data))
    if not tasks:
        return []
    fig, axes = plt.subplots(len(tasks), 3, figsize=(11.0, 3.0 * len(tasks)), squeeze=False)
    for row_axes, (task, rows) in zip(axes, tasks.items()):
        for ax, (y, name) in zip(row_axes, (("att_match", "mass on matches"), ("att_bos", "mass on BOS"),
                                             ("other_lift", "mass on others / uniform share"))):
            _scatter_by_d(ax, rows, y)
            ax.set_ylabel(name)
            ax.set_title(f"task = {task}", fontsize=9)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"{data.experiment}: attention at the answer position against m/d", fontsize=9)
    fig.tight_layout()
    return save(fig, data.out_dir, "inspect_attention")


def norms_figure(data: PlotData) -> list[Path]:
    rows = inspected(data)
    if not rows:
        return []
    fits = {(f["task"], f["norm"]): f for f in _read(data.out_dir.parent / "inspect_fit.csv")
            if f["side"] == "m>d" and f.get("subset", "all") == "all"}
    paths = []
    for task, part in _by_task(rows).items():
        fig, axes = _panels(len(NORM_PANELS))
        for ax, norm in zip(axes, NORM_PANELS):
            _scatter_by_d(ax, part, norm)
            ax.set_yscale("log")
            f = fits.get((task, norm))
            if f is not None and math.isfinite(f["exponent"]):
                _fit_lines(ax, [r for r in part if r["m"] > r["d"]], norm, f["exponent"])
                ax.set_title(f"{norm}: m>d exponent {f['exponent']:.2f} [{f['lo']:.2f}, {f['hi']:.2f}]", fontsize=8)
            else:
                ax.set_title(norm, fontsize=8)
            ax.set_ylabel(norm)
        axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
        fig.suptitle(f"{data.experiment}: weight norms against m/d (task = {task}; lines: log-log fit on m > d, one "
                     f"intercept per d; 95% bootstrap interval)", fontsize=9)
        fig.tight_layout()
        paths += save(fig, data.out_dir, "inspect_norms" + (f"_task-{task}" if len(_by_task(rows)) > 1 else ""))
    return paths


def _fit_lines(ax, rows: list[dict], norm: str, p: float) -> None:
    """The fitted law y = e^(a_d) (m/d)^p, one line per d (its own intercept)."""
    d_D = sorted({r["d"] for r in rows})
    for d in d_D:
        x_N = np.array([r["m"] / r["d"] for r in rows if r["d"] == d])
        y_N = np.array([r[norm] for r in rows if r["d"] == d])
        if len(set(x_N)) < 2 or (y_N <= 0).any():
            continue
        a = np.mean(np.log(y_N)) - p * np.mean(np.log(x_N))
        xs = np.array([x_N.min(), x_N.max()])
        ax.plot(xs, np.exp(a) * xs**p, color="k", lw=1.0)


def mechanism_figure(data: PlotData) -> list[Path]:
    tasks = _by_task(inspected(data))
    if not tasks:
        return []
    fig, axes = _panels(len(tasks), h=3.6)
    for ax, (task, rows) in zip(axes, tasks.items()):
        cells: dict[tuple, Counter] = defaultdict(Counter)
        for r in rows:
            cells[(r["d"], r["m"])][r["mechanism"]] += 1
        d_D, m_M = sorted({k[0] for k in cells}), sorted({k[1] for k in cells})
        de, me = log_edges(d_D), log_edges(m_M)
        for (d, m), count in cells.items():
            i, j = d_D.index(d), m_M.index(m)
            top, _ = count.most_common(1)[0]
            ax.fill_between([de[i], de[i + 1]], me[j], me[j + 1], color=MECHANISM_COLORS[top])
            text = " ".join(f"{name[0].upper()}{count[name]}" for name in MECHANISM_COLORS if count[name])
            ax.text(math.sqrt(de[i] * de[i + 1]), math.sqrt(me[j] * me[j + 1]), text, ha="center", va="center",
                    fontsize=6)
        lo, hi = min(de[0], me[0]), max(de[-1], me[-1])
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlim(de[0], de[-1])
        ax.set_ylim(me[0], me[-1])
        ax.set_xlabel("d")
        ax.set_ylabel("m")
        ax.set_title(f"task = {task} (dashed: m = d)", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in MECHANISM_COLORS.values()]
    axes[-1].legend(handles, [f"{k} ({k[0].upper()})" for k in MECHANISM_COLORS], fontsize=7, loc="center left",
                    bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"{data.experiment}: mechanism label per cell (colour: most seeds; text: seeds per label)", fontsize=9)
    fig.tight_layout()
    return save(fig, data.out_dir, "inspect_mechanism")


def topk_figure(data: PlotData) -> list[Path]:
    rows = [r for r in data.counts if r.get("topk") not in (None, "", "None")]
    if not rows:
        return []
    right: dict[tuple, float] = defaultdict(float)
    seen: dict[tuple, float] = defaultdict(float)
    for r in rows:
        key = (int(float(r["m"])), int(float(r["topk"])), int(r["count"]))
        right[key] += float(r["accuracy"]) * float(r["support"])
        seen[key] += float(r["support"])
    m_M = sorted({k[0] for k in seen})
    k_K = sorted({k[1] for k in seen})
    fig, axes = plt.subplots(1, len(m_M), figsize=(3.3 * len(m_M) + 1.0, 3.2), sharey=True, squeeze=False)
    for ax, m in zip(axes[0], m_M):
        for i, k in enumerate(k_K):
            c_C = sorted(key[2] for key in seen if key[:2] == (m, k) and seen[key] > 0)
            ax.plot(c_C, [right[(m, k, c)] / seen[(m, k, c)] for c in c_C], label=f"top-k = {k}", markersize=3,
                    **curve_style(i, len(k_K)))
        ax.set_title(f"m = {m}, d = {int(float(rows[0]['d']))}", fontsize=9)
        ax.set_xlabel("true count c")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("accuracy at count c")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"{data.experiment}: accuracy per true count with attention limited to the top-k keys "
                 "(pooled over seeds)", fontsize=9)
    fig.tight_layout()
    return save(fig, data.out_dir, "topk_accuracy_per_count")


INSPECT_FIGURES = {
    "inspect_coherence": coherence_figure,
    "inspect_attention": attention_figure,
    "inspect_norms": norms_figure,
    "inspect_mechanism": mechanism_figure,
    "topk_accuracy_per_count": topk_figure,
}
