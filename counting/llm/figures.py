"""Figures of an LLM probe, looked up by name: accuracy against m at fixed n (one line per
variant: model, method and form), against n at fixed m, a heatmap over (m, n) per variant,
and predicted against true count. Each takes the experiment's `ProbeData` and returns the
files it wrote (PNG + PDF)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from counting.llm.table import read_answers
from counting.plots.style import CMAP, curve_style, log_edges, save


@dataclasses.dataclass
class ProbeData:
    experiment: str
    out_dir: Path
    table: list[dict]  # table.csv rows
    samples: list[dict]  # scored answers, one per prompt and model

    def tasks(self) -> list[str]:
        return sorted({r["task"] for r in self.table})

    def suffix(self, task: str) -> str:
        return f"_{task}" if len(self.tasks()) > 1 else ""

    def models(self, task: str) -> list[tuple]:
        """The variants answered on this task: (model, method, form)."""
        return sorted({variant(r) for r in self.table if r["task"] == task})

    def header(self, task: str) -> str:
        rows = [r for r in self.table if r["task"] == task]
        N = max(r["samples"] for r in rows)
        return f"{self.experiment}: task={task}, {rows[0]['sampler']} sampler, {N} prompts per cell"


def load(root: Path, experiment: str, table: list[dict], prompt_keys: set[str]) -> ProbeData:
    samples = [s for s in read_answers(root) if s.get("prompt_key") in prompt_keys]
    return ProbeData(experiment, Path(root) / "figures", table, samples)


def variant(row: dict) -> tuple[str, str, str]:
    return row["model"], row["method"], row["form"]


def label(var: tuple[str, str, str], variants: list[tuple]) -> str:
    """The model's name, with the method and form where the figure shows more than one."""
    model, method, form = var
    name = Path(model.rstrip("/")).name or model
    detail = [v for v, i in ((method, 1), (form, 2)) if len({x[i] for x in variants}) > 1]
    return f"{name} ({', '.join(detail)})" if detail else name


def accuracy_lines(data: ProbeData, x: str, panel: str) -> list[Path]:
    """Accuracy against x, one panel per value of `panel`, one line per variant, 95% intervals."""
    paths = []
    for task in data.tasks():
        rows = [r for r in data.table if r["task"] == task]
        models = data.models(task)
        # a panel per value of `panel` with at least two values of x (a cross grid has one such panel)
        panels = sorted(p for p in {r[panel] for r in rows} if len({r[x] for r in rows if r[panel] == p}) > 1)
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels) + 1.2, 3.2), sharey=True, squeeze=False)
        for ax, p in zip(axes[0], panels):
            for i, var in enumerate(models):
                cell = sorted((r for r in rows if r[panel] == p and variant(r) == var), key=lambda r: r[x])
                if not cell:
                    continue
                xs = [r[x] for r in cell]
                acc = np.array([r["accuracy"] for r in cell])
                err_2xX = np.clip([[a - r["ci_low"] for a, r in zip(acc, cell)],
                                   [r["ci_high"] - a for a, r in zip(acc, cell)]], 0, None)
                ax.errorbar(xs, acc, yerr=err_2xX, label=label(var, models), capsize=2, markersize=4,
                            **curve_style(i, len(models)))
            largest = {}  # per x, the baseline of the variant with the most prompts in that cell
            for r in sorted((r for r in rows if r[panel] == p), key=lambda r: r["samples"]):
                largest[r[x]] = r["baseline_accuracy"]
            base = sorted(largest.items())
            ax.plot([b[0] for b in base], [b[1] for b in base], color="0.6", linestyle=":", label="majority baseline")
            ax.set_xscale("log", base=2)
            ticks = sorted({r[x] for r in rows})
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.set_title(f"{panel} = {p}", fontsize=9)
            ax.set_xlabel(f"{x} ({'distinct items' if x == 'm' else 'sequence length'})")
            ax.set_ylim(-0.02, 1.02)
        axes[0][0].set_ylabel("accuracy (95% interval)")
        axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
        fig.suptitle(data.header(task), fontsize=9)
        fig.tight_layout()
        paths += save(fig, data.out_dir, f"accuracy_vs_{x}{data.suffix(task)}")
    return paths


def model_panels(data: ProbeData, task: str, width: float):
    """A row of panels, one per variant (model, method, form) of the task: (fig, axes,
    [(ax, variant, panel title)])."""
    models = data.models(task)
    fig, axes = plt.subplots(1, len(models), figsize=(width * len(models) + 0.8, 3.2), squeeze=False)
    axes = axes[0].tolist()
    return fig, axes, [(ax, var, label(var, models)) for ax, var in zip(axes, models)]


def heatmap(data: ProbeData) -> list[Path]:
    paths = []
    for task in data.tasks():
        fig, axes, panels = model_panels(data, task, 3.6)
        for ax, var, title in panels:
            rows = [r for r in data.table if r["task"] == task and variant(r) == var]
            m_M, n_N = sorted({r["m"] for r in rows}), sorted({r["n"] for r in rows})
            acc_NxM = np.full((len(n_N), len(m_M)), np.nan)
            for r in rows:
                acc_NxM[n_N.index(r["n"]), m_M.index(r["m"])] = r["accuracy"]
            mesh = ax.pcolormesh(log_edges(m_M), log_edges(n_N), acc_NxM, cmap=CMAP, vmin=0, vmax=1)
            for (j, i), a in np.ndenumerate(acc_NxM):
                if np.isfinite(a):
                    ax.text(m_M[i], n_N[j], f"{a:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if a < 0.5 else "black")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log", base=2)
            ax.set_xticks(m_M, [str(v) for v in m_M])
            ax.set_yticks(n_N, [str(v) for v in n_N])
            ax.set_xlabel("m (distinct items)")
            ax.set_ylabel("n (sequence length)")
            ax.set_title(title, fontsize=9)
        fig.colorbar(mesh, ax=axes, label="accuracy")
        fig.suptitle(data.header(task), fontsize=9)
        paths += save(fig, data.out_dir, f"accuracy_heatmap{data.suffix(task)}")
    return paths


def predicted_vs_true(data: ProbeData) -> list[Path]:
    """How often each count was answered for each true count (parsed answers; invalid share in the title)."""
    paths = []
    for task in data.tasks():
        fig, axes, panels = model_panels(data, task, 3.4)
        for ax, var, title in panels:
            s = [a for a in data.samples if a["task"] == task and variant(a) == var]
            parsed = [a for a in s if a["predicted"] is not None]
            top = max([a["answer"] for a in s] + [a["predicted"] for a in parsed if 0 <= a["predicted"] <= 4 * a["n"]])
            hist_PxT = np.zeros((top + 1, top + 1))
            for a in parsed:
                if 0 <= a["predicted"] <= top:
                    hist_PxT[a["predicted"], a["answer"]] += 1
            share_PxT = hist_PxT / np.maximum(hist_PxT.sum(0, keepdims=True), 1)
            mesh = ax.pcolormesh(np.arange(top + 2) - 0.5, np.arange(top + 2) - 0.5, share_PxT, cmap=CMAP, vmin=0, vmax=1)
            ax.plot([0, top], [0, top], color="0.5", linestyle="--", linewidth=0.8)
            ax.set_xlabel("true count")
            ax.set_ylabel("predicted count")
            invalid = 1 - len(parsed) / max(len(s), 1)
            ax.set_title(f"{title}; invalid {invalid:.0%}", fontsize=9)
        fig.colorbar(mesh, ax=axes, label="share of answers at this true count")
        fig.suptitle(data.header(task) + ", pooled over (m, n)", fontsize=9)
        paths += save(fig, data.out_dir, f"predicted_vs_true{data.suffix(task)}")
    return paths


FIGURES: dict[str, Callable[[ProbeData], list[Path]]] = {
    "accuracy_vs_m": lambda data: accuracy_lines(data, "m", "n"),
    "accuracy_vs_n": lambda data: accuracy_lines(data, "n", "m"),
    "accuracy_heatmap": heatmap,
    "predicted_vs_true": predicted_vs_true,
}


def plot_all(data: ProbeData, names=None) -> dict[str, list[Path]]:
    if not data.table:
        return {name: [] for name in (names or FIGURES)}
    return {name: FIGURES[name](data) for name in (names or FIGURES)}
