"""The figures of `counting-theory` (PNG and PDF), drawn from the table rows, in the suite's
figure style (counting.plots.style: cividis, and every series with its own marker and line
style, so the figures read in grayscale)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from counting.plots.style import colors, curve_style, save


def countattend_cost(width: list[dict], out: Path) -> list[Path]:
    """Left: MLP width against n. Right: smallest exact logit scale against n, with theory."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    n = np.array([r["n"] for r in width])
    series = [("w_interp", "exact interpolation"), ("w_quarter", "fewest knots, gaps < 1/4"),
              ("w_min", "fewest knots, gaps < 1/2")]
    for i, (key, label) in enumerate(series):
        a.plot(n, [r[key] for r in width], label=label, **curve_style(i, len(series) + 1))
    a.plot(n, np.sqrt(2 * n), color="gray", linestyle=":", label="sqrt(2n)")
    a.set(xscale="log", yscale="log", xlabel="n", ylabel="MLP width w",
          title="CountAttend: width (the head-only variant needs w = 0)")
    a.legend(fontsize=8)
    verified = [r for r in width if "beta_min_head" in r]
    vn = np.array([r["n"] for r in verified])
    variants = ("interp", "quarter", "min", "head")
    for i, inv in enumerate(variants):
        b.plot(vn, [r[f"beta_min_{inv}"] for r in verified], label=f"measured, {inv}", **curve_style(i, len(variants)))
    b.plot(vn, np.log(2 * vn), color="black", linestyle=":", label="ln(2n) (head)")
    b.plot(vn, np.log(2.5 * vn), color="gray", linestyle="--", label="ln(5n/2) (interp)")
    b.set(xscale="log", xlabel="n", ylabel="smallest exact beta", title="CountAttend: attention logit scale")
    b.legend(fontsize=8)
    return save(fig, out, "countattend_cost")


def precision(rows: list[dict], out: Path) -> list[Path]:
    """Largest exact n per construction and dtype (filled: model argmax; hatched: readout)."""
    names = list(dict.fromkeys(r["construction"] for r in rows))
    dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / (2 * len(dtypes))
    for j, dt in enumerate(dtypes):
        colour = colors(len(dtypes))[j]
        for k, crit in enumerate(("model", "readout")):
            ys = [next((r[f"n_max_{crit}"] for r in rows if r["construction"] == nm and r["dtype"] == dt), 0)
                  for nm in names]
            xs = np.arange(len(names)) + (2 * j + k - len(dtypes)) * width + width / 2
            ax.bar(xs, np.maximum(ys, 0.5), width, color=colour, hatch="//" if crit == "readout" else None,
                   edgecolor="black", label=f"{dt}, {crit}")
    ax.set_xticks(np.arange(len(names)), names, rotation=15, fontsize=8)
    ax.set(yscale="log", ylabel="largest exact n (capped searches stop at the cap)",
           title="Precision: exact up to n (filled = argmax of the logits, hatched = count in the residual)")
    ax.legend(fontsize=7, ncol=len(dtypes))
    return save(fig, out, "precision")


def coherence(rows: list[dict], out: Path) -> list[Path]:
    """Coherence against m/d: optimised (filled), random (hollow), lower bound (line)."""
    grid = [r for r in rows if r["kind"] == "grid"]
    ds = sorted({r["d"] for r in grid})
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, d in enumerate(ds):
        sel = sorted((r for r in grid if r["d"] == d), key=lambda r: r["m"])
        st = curve_style(i, len(ds))
        x = [r["m_over_d"] for r in sel]
        ax.plot(x, [r["bound"] for r in sel], color=st["color"], linestyle=st["linestyle"], label=f"d={d}: bound")
        ax.plot(x, [r["optimised"] for r in sel], color=st["color"], marker=st["marker"], linestyle="none",
                label=f"d={d}: optimised")
        ax.plot(x, [r["random_mean"] for r in sel], color=st["color"], marker=st["marker"], linestyle="none",
                markerfacecolor="none")
    ax.set(xscale="log", xlabel="m / d", ylabel="coherence max |<e_i, e_j>|",
           title="Coherence: optimised (filled), random (hollow, mean), lower bound (lines)")
    ticks: list[float] = []
    for t in sorted({round(r["m_over_d"], 2) for r in grid}):
        ticks += [t] if not ticks or t > 1.1 * ticks[-1] else []  # no overlapping labels
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=7)
    ax.minorticks_off()
    ax.legend(fontsize=7, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save(fig, out, "coherence")


def interference(margin: list[dict], fits: list[dict], out: Path) -> list[Path]:
    """Left: Lipschitz scale a readout needs against n. Right: fitted vs predicted exponent."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    keys = sorted({(r["d"], r["m"], r["embedding"]) for r in margin})
    for i, (d, m, kind) in enumerate(keys):
        sel = [r for r in margin if (r["d"], r["m"], r["embedding"]) == (d, m, kind)]
        a.plot([r["n"] for r in sel], [r["lipschitz_needed"] for r in sel], label=f"d={d} m={m} {kind}",
               **curve_style(i, len(keys)))
    a.set(xscale="log", yscale="log", xlabel="n", ylabel="Lambda(n) = T / min ||sum g_t e_t||",
          title="Weight scale any readout of the uniform average needs")
    a.legend(fontsize=7)
    lip = [f for f in fits if f["quantity"] == "lipschitz_needed"]
    for i, f in enumerate(lip):
        st = curve_style(i, len(lip))
        b.plot(f["predicted"], f["exponent"], marker=st["marker"], color=st["color"], linestyle="none",
               label=f["setting"])
    top = max([2.0] + [f["exponent"] for f in lip if np.isfinite(f["exponent"])])
    b.plot([0, top], [0, top], color="gray", linestyle=":", label="measured = predicted")
    b.set(xlabel="pigeonhole exponent max(1, (m-1)/d) (asymptotic lower bound)",
          ylabel="fitted exponent of Lambda(n)", title="Growth exponents (fit over the n shown left)")
    b.legend(fontsize=7)
    return save(fig, out, "interference")


def countattend_coherent(rows: list[dict], out: Path) -> list[Path]:
    """Left: beta_min against n per (d, m). Right: beta_min (1 - mu+) against ln(2n)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.5))
    keys = sorted({(r["d"], r["m"]) for r in rows})
    for i, (d, m) in enumerate(keys):
        sel = [r for r in rows if (r["d"], r["m"]) == (d, m)]
        st = curve_style(i, len(keys))
        mu = sel[0]["mu_plus"]
        a.plot([r["n"] for r in sel], [r["beta_min"] for r in sel], label=f"d={d} m={m} (mu+={mu:.3f})", **st)
        b.plot([np.log(2 * r["n"]) for r in sel], [r["beta_min"] * (1 - max(mu, 0.0)) for r in sel], **st)
    lim = np.log(2 * np.array([min(r["n"] for r in rows), max(r["n"] for r in rows)]))
    b.plot(lim, lim, color="gray", linestyle=":", label="beta (1 - mu+) = ln(2n)")
    a.set(xscale="log", yscale="log", xlabel="n", ylabel="smallest exact beta",
          title="CountAttend with m > d - 2 directions")
    b.set(xlabel="ln(2n)", ylabel="beta_min (1 - mu+)", title="Collapse onto the leak bound")
    a.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    b.legend(fontsize=7)
    return save(fig, out, "countattend_coherent")
