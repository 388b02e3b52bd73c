"""Figures of `counting-inspect` (read from results/<experiment>/inspect.csv, inspect_fit.csv,
inspect_seeds.csv and inspect_maps.npz beside the table): embedding coherence, attention
mass, weight norms and the mechanism label against m/d, the token-space maps of a
histogram, a CountAttend and a failed model of one cell, the seeds' alignment by whether
they succeed, and accuracy per true count against top-k."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from counting.plots.data import PlotData
from counting.plots.style import colors, curve_style, log_edges, save
from counting.store import INSPECT_FIT, INSPECT_MAPS, INSPECT_SEEDS, INSPECT_TABLE
from counting.store.columns import read_rows

MECHANISM_COLORS = {"histogram": "#1b9e77", "count_attend": "#7570b3", "neither": "#d9d9d9"}
NORM_PANELS = ("norm_qk", "norm_ov", "norm_mlp", "norm_total")


def _read(path: Path) -> list[dict]:
    return read_rows(path) if path.exists() else []


def inspected(data: PlotData) -> list[dict]:
    """The rows of inspect.csv beside the experiment's table whose inspection completed (none without the file)."""
    return [r for r in _read(data.out_dir.parent / INSPECT_TABLE) if r.get("inspect_status") == "complete"]


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
    """inspect_coherence: per task, each model's embedding coherence max |cos(e_s, e_t)| against m/d, coloured
    by d, with the Welch bound sqrt((m - d) / (d (m - 1))) of each d dashed; no figure without inspected rows."""
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
    """inspect_attention: per task, the counting layer's attention mass at the answer position on the matches,
    on BOS, and on the other tokens over their uniform share, against m/d."""
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
    """inspect_norms (one figure per task): each weight norm (query-key, value-output, MLP, total) against m/d
    on log axes, with the m > d log-log fit of inspect_fit.csv drawn per d and its exponent and interval in the
    title."""
    rows = inspected(data)
    if not rows:
        return []
    fits = {(f["task"], f["norm"]): f for f in _read(data.out_dir.parent / INSPECT_FIT)
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
    """inspect_mechanism: per task, a d x m grid coloured by the mechanism label most seeds of a cell got, with
    the seeds per label written in the cell and m = d dashed."""
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
    """topk_accuracy_per_count: per m, the accuracy at each true count c of the models with top-k attention, one
    curve per top-k, pooled over seeds (weighted by support); no figure without such rows."""
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


# --- token-space maps and seeds compared (counting.inspect.token_space, counting.inspect.seeds) ---

KINDS = ("histogram", "count_attend", "failed")
CELL_COLUMNS = ("task", "arch", "d", "m", "n", "k", "w", "L", "H", "pos", "attention", "topk", "norm")


def model_kind(r: dict, tau: float) -> str | None:
    """failed (accuracy below tau), else the causal label where the interventions confirm
    one, else the correlational label; None for a counting model labelled neither."""
    if not r["accuracy"] >= tau:
        return "failed"
    for label in (r.get("causal_mechanism"), r.get("mechanism")):
        if label in KINDS:
            return label
    return None


def chosen_cell(rows: list[dict], tau: float) -> list[tuple[str, dict]]:
    """(kind, row) for one model per kind of the cell showing the most kinds (at least two)."""
    cells: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        kind = model_kind(r, tau)
        if kind is not None:
            cells[tuple(str(r.get(c)) for c in CELL_COLUMNS)].setdefault(kind, r)
    if not cells:
        return []
    best = max(sorted(cells), key=lambda key: len(cells[key]))
    if len(cells[best]) < 2:
        return []
    return [(kind, cells[best][kind]) for kind in KINDS if kind in cells[best]]


def _matrix(ax, A: np.ndarray, title: str, xlabel: str, ylabel: str) -> None:
    lim = float(np.nanmax(np.abs(A))) if np.isfinite(A).any() else 1.0
    im = ax.imshow(A, cmap="RdBu_r", vmin=-lim or -1, vmax=lim or 1, aspect="auto", interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    ax.set_title(title, fontsize=7)
    ax.set_xlabel(xlabel, fontsize=7)
    ax.set_ylabel(ylabel, fontsize=7)
    ax.tick_params(labelsize=6)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def token_maps_figure(data: PlotData) -> list[Path]:
    """inspect_token_maps: for one model per kind (histogram, CountAttend, failed) of the cell showing the most
    kinds, its value/output, query-key and MLP-input maps in token space (from inspect_maps.npz)."""
    path = data.out_dir.parent / INSPECT_MAPS
    chosen = chosen_cell(inspected(data), data.cfg.tau)
    if not chosen or not path.exists():
        return []
    maps = dict(np.load(path))
    fig, axes = plt.subplots(len(chosen), 3, figsize=(12.0, 3.0 * len(chosen)), squeeze=False)
    for row_axes, (kind, r) in zip(axes, chosen):
        get = lambda name, h=r["hash"]: maps.get(f"{h}/{name}")
        m = int(r["m"])
        fmt = lambda k, r=r: f"{r.get(k, float('nan')):.2f}"
        _matrix(row_axes[0], get("ov_VxM"), f"value/output map (diag share {fmt('tok_ov_diag_share')}, BOS share "
                f"{fmt('tok_ov_bos_share')})", "read on token e_t", f"key token s (row {m}: BOS)")
        qk, pos = get("qk_MxV"), get("qk_pos_MxP")
        if qk is None:
            row_axes[1].set_axis_off()
            row_axes[1].set_title("no query-key map (linear mixing)", fontsize=7)
        else:
            full = qk if pos is None else np.concatenate([qk, np.full((len(qk), 1), np.nan), pos], axis=1)
            _matrix(row_axes[1], full, f"query-key logits (match {fmt('tok_qk_match_mass')}, BOS "
                    f"{fmt('tok_qk_bos_mass')})", f"key: tokens, BOS (col {m})" + (", | positions" if pos is not None
                                                                              else ""), "query token")
        _matrix(row_axes[2], get("mlp_VxW"), f"MLP input neurons (selectivity {fmt('tok_mlp_selectivity')}, BOS "
                f"{fmt('tok_mlp_bos_share')})", "neuron", f"token (row {m}: BOS's write)")
        row_axes[0].annotate(f"{kind}: seed {r['seed']}, accuracy {r['accuracy']:.2f}\nmechanism {r['mechanism']}"
                             + (f", causal {r['causal_mechanism']}" if r.get("causal_mechanism") else ""),
                             (-0.45, 0.5), xycoords="axes fraction", ha="right", va="center", fontsize=7)
    r = chosen[0][1]
    cell = ", ".join(f"{c} = {r.get(c)}" for c in ("task", "d", "m", "n", "w") if r.get(c) is not None)
    fig.suptitle(f"{data.experiment}: the counting layer read in token space, one cell ({cell}); "
                 f"failed = accuracy < {data.cfg.tau}", fontsize=9)
    fig.tight_layout()
    return save(fig, data.out_dir, "inspect_token_maps")


SEED_PANELS = (("emb_procrustes_r2", "emb_procrustes_null", "token embeddings: Procrustes R^2"),
               ("resid_lstsq_r2", None, "residual streams: least-squares held-out R^2"),
               ("resid_procrustes_r2", "resid_procrustes_null", "residual streams: Procrustes R^2"))
PAIRS = ("both_succeed", "one_succeeds", "both_fail")


def seeds_figure(data: PlotData) -> list[Path]:
    """inspect_seeds: the alignment of two seeds of a cell (Procrustes R^2 of the token embeddings,
    least-squares and Procrustes R^2 of the residual streams, with the permuted null) by whether both, one or
    neither reach tau, for m <= d and m > d."""
    rows = _read(data.out_dir.parent / INSPECT_SEEDS)
    if not rows:
        return []
    fig, axes = _panels(len(SEED_PANELS), h=3.4)
    jitter = np.random.default_rng(0)
    sides = (("m <= d", lambda r: r["m"] <= r["d"]), ("m > d", lambda r: r["m"] > r["d"]))
    for ax, (y, null, name) in zip(axes, SEED_PANELS):
        for i, (side, keep) in enumerate(sides):
            part = [r for r in rows if keep(r) and r["pair"] in PAIRS]
            x = np.array([PAIRS.index(r["pair"]) for r in part], np.float64) + (i - 0.5) * 0.3
            st = curve_style(i, len(sides))
            ax.scatter(x + jitter.uniform(-0.08, 0.08, len(x)), [r[y] for r in part], s=14, color=st["color"],
                       marker=st["marker"], alpha=0.8, label=side)
            if null:
                ax.scatter(x, [r[null] for r in part], s=10, color="0.6", marker="x", lw=0.8,
                           label="null (tokens permuted)" if i == 0 else None)
        ax.set_xticks(range(len(PAIRS)), [p.replace("_", " ") for p in PAIRS], fontsize=7)
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(name, fontsize=8)
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"{data.experiment}: seeds of one cell aligned by a linear map, by whether they reach "
                 f"accuracy {data.cfg.tau}", fontsize=9)
    fig.tight_layout()
    return save(fig, data.out_dir, "inspect_seeds")


INSPECT_FIGURES = {
    "inspect_coherence": coherence_figure,
    "inspect_attention": attention_figure,
    "inspect_norms": norms_figure,
    "inspect_mechanism": mechanism_figure,
    "inspect_token_maps": token_maps_figure,
    "inspect_seeds": seeds_figure,
    "topk_accuracy_per_count": topk_figure,
}
