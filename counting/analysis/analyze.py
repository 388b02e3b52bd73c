"""The whole analysis of one table: cells -> thresholds per d -> log-log fit across d.

Writes next to the table: `cells.csv` (mean accuracy per (series, d, m) with its bootstrap
interval and baseline), `thresholds.csv` (m_thr per (series, d, method) with its interval and
censoring) and `fit.csv` (slope and intercept of log m_thr against log d, with intervals, and
whether slope 1 lies inside).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from counting.analysis import scaling, stats, threshold
from counting.analysis.table import Cell, cells, series_label
from counting.config import AnalysisConfig
from counting.store import write_table
from counting.store.columns import TableError, searched, series_columns, series_of


def last_above(m_K: np.ndarray, stat_RxK: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(m_thr_R, censored_R): the largest grid m whose statistic reaches `level` (no
    interpolation, no "stays above": a curve that dips and recovers counts its recovery);
    censored below when no m does, above when the largest does."""
    ok_RxK = stat_RxK >= level
    any_R = ok_RxK.any(axis=1)
    last_R = stat_RxK.shape[1] - 1 - np.argmax(ok_RxK[:, ::-1], axis=1)
    m_thr_R = np.where(any_R, np.asarray(m_K, np.float64)[last_R], float(m_K[0]))
    censored_R = np.where(~any_R, threshold.BELOW, np.where(last_R == len(m_K) - 1, threshold.ABOVE, threshold.NONE))
    return m_thr_R, censored_R


# method -> (the cell statistic it cuts, the level it cuts it at, the estimator). A cell's
# statistics (`cell_statistics`): `mean` over seeds (of the chosen setting, under a search),
# `best` over every model of the cell (seeds and searched settings: the capacity envelope),
# `share` of the seeds that reach tau (learnability: cut at one half), and their `exact_*`
# twins on the worst in-support family's accuracy where the families were evaluated
# (counting.tasks.families: exact counting), and `off_*` on the worst off-support family (held-out
# pairs; two-token inputs for a model that never trained on them).
LOGISTIC = lambda m_K, acc_RxK, level: (threshold.logistic(m_K, acc_RxK, level), None)
METHODS = {
    "interpolated": ("mean", "tau", threshold.interpolated),
    "logistic": ("mean", "tau", LOGISTIC),
    "last_above": ("mean", "tau", last_above),
    "best_seed": ("best", "tau", threshold.interpolated),
    "learnability": ("share", 0.5, threshold.interpolated),
    "exact_interpolated": ("exact_mean", "exact", threshold.interpolated),
    "exact_last_above": ("exact_mean", "exact", last_above),
    "exact_best": ("exact_best", "exact", threshold.interpolated),
    "offsupport_interpolated": ("off_mean", "exact", threshold.interpolated),  # the worst off-support family:
    "offsupport_best": ("off_best", "exact", threshold.interpolated),  # generalisation, an OOD claim of its own
}
FEW_SEEDS = 5  # below this many seeds a percentile bootstrap has few distinct resamples: say so


@dataclasses.dataclass
class Analysis:
    """The analysis of one table: its series columns, its cells, and the rows of cells.csv, thresholds.csv and
    fit.csv."""

    columns: list[str]  # the series columns
    cells: list[Cell]
    cell_rows: list[dict]
    threshold_rows: list[dict]
    fit_rows: list[dict]

    def series(self) -> list[tuple]:
        """Every series of the cells (the values of the series columns), sorted."""
        return sorted({c.series for c in self.cells}, key=str)


def check_fingerprints(rows: list[dict], cfg: AnalysisConfig) -> None:
    """Rows of one task and model class trained by different code (a `fingerprint` column
    with several values among them) are not analysed together unless cfg.mix_fingerprints
    says so. (Runs of different tasks or model classes have fingerprints of their own.)"""
    groups: dict[tuple, set] = defaultdict(set)
    for r in rows:
        groups[(r.get("task"), r.get("arch"))].add(r.get("fingerprint") or "none")  # "none": from before fingerprints
    for prints in groups.values():
        if len(prints) > 1 and not cfg.mix_fingerprints:
            prints = sorted(prints)
            raise TableError(f"table: rows from {len(prints)} versions of the training code (fingerprints "
                             f"{', '.join(prints)}); retrain the stale ones (rerun the sweep: rerun=stale) or allow it "
                             "(--mix-fingerprints)")


def cell_statistics(c: Cell, cfg: AnalysisConfig) -> dict[str, tuple[float, np.ndarray, Callable]]:
    """Each statistic of a cell: (its value, the accuracies it is taken of, the reduction
    `reduce(acc, axis)` giving it), so a bootstrap can resample those accuracies."""
    mean, best = np.mean, np.max
    share = lambda acc, axis=-1: (acc >= cfg.tau).mean(axis=axis)
    out = {"mean": (c.seeds_S, mean), "best": (c.acc_S, best), "share": (c.seeds_S, share)}  # best: every model
    if c.worst_S is not None and np.isfinite(c.worst_S).all():
        out["exact_mean"] = (c.worst_seeds_S, mean)  # the chosen setting's seeds
        out["exact_best"] = (c.worst_S, best)  # every model
    if c.off_S is not None and np.isfinite(c.off_S).all():
        out["off_mean"] = (c.off_seeds_S, mean)
        out["off_best"] = (c.off_S, best)
    return {k: (float(reduce(acc, axis=-1)), acc, reduce) for k, (acc, reduce) in out.items()}


def curve_statistic(m_by_d: list[np.ndarray], reduce: Callable, estimate: Callable, level: float,
                    d_D: np.ndarray, fitted: list[int]) -> Callable:
    """statistic(*acc, axis=-1) for `stats.bootstrap_interval`: the accuracies of every cell of
    the curves (one per d, cells ascending in m) -> the rows m_thr at each d, then the slope
    and intercept of the log-log fit over the d indexed by `fitted` (the uncensored ones), then
    the same without the first of them; vectorised over the resamples (leading axes)."""
    def statistic(*acc, axis=-1):
        values = [reduce(a, axis=axis) for a in acc]
        batch = np.shape(values[0])
        rows, i = [], 0
        for m_K in m_by_d:
            stat_RxK = np.stack(values[i:i + len(m_K)], axis=-1).reshape(-1, len(m_K))
            rows.append(estimate(m_K, stat_RxK, level)[0])
            i += len(m_K)
        for over in (fitted, fitted[1:]):
            if len(over) >= 2:
                rows.extend(scaling.loglog_fit_replicates(d_D[over], np.stack([rows[j] for j in over], axis=1)))
            else:
                rows.extend([np.full(len(rows[0]), np.nan)] * 2)
        return np.stack(rows).reshape(len(rows), *batch)
    return statistic


def analyze(rows: list[dict], cfg: AnalysisConfig = AnalysisConfig()) -> Analysis:
    """The whole analysis of a table's rows: refuses mixed fingerprints (unless allowed), then per cell its mean
    accuracy and share above tau with bootstrap intervals, per series, d and method (METHODS) m_thr with its
    interval and censoring, and per series and method the log-log fit of m_thr against d over the uncensored d
    (and without the smallest d when three or more), each series bootstrapped once."""
    check_fingerprints(rows, cfg)
    rng = np.random.default_rng(cfg.seed)
    search = searched(rows)
    columns = series_columns(rows, search)
    all_cells = cells(rows, columns, search)
    budget_stops = defaultdict(list)  # (series, d, m) -> whether each model ran out of budget
    for r in rows:
        if r.get("stop_reason"):
            budget_stops[(series_of(r, columns), r["d"], r["m"])].append(r["stop_reason"] == "budget")
    cell_rows, threshold_rows, fit_rows = [], [], []
    cell_stats: dict[tuple, dict] = {}  # (series, d, m) -> statistic -> (value, accuracies, reduction)
    mean_and_share = lambda acc, axis=-1: np.stack([acc.mean(axis=axis), (acc >= cfg.tau).mean(axis=axis)])
    for c in all_cells:
        key = (c.series, c.d, c.m)
        cell_stats[key] = cell_statistics(c, cfg)
        seeds = c.seeds_S
        (low, share_low), (high, share_high) = stats.bootstrap_interval((seeds,), mean_and_share, ci=cfg.ci,
                                                                         n_resamples=cfg.boot, rng=rng)
        row = {**dict(zip(columns, c.series)), "d": c.d, "m": c.m, "seeds": len(seeds),
               "accuracy": c.mean, "accuracy_low": float(low), "accuracy_high": float(high),
               "seed_min": float(seeds.min()), "seed_max": float(seeds.max()),
               "best_accuracy": float(c.acc_S.max()), "share_above_tau": cell_stats[key]["share"][0],
               "share_low": float(share_low), "share_high": float(share_high),
               "share_out_of_budget": float(np.mean(budget_stops[key])) if budget_stops[key] else "",
               "baseline_accuracy": c.baseline,
               "interval_note": f"{len(seeds)} seeds: read the seed range" if len(seeds) < FEW_SEEDS else ""}
        if c.setting is not None:
            row.update({"models": len(c.acc_S), "chosen_lr": c.setting[0], "chosen_weight_decay": c.setting[1]})
        if "exact_mean" in cell_stats[key]:
            row.update({"exact_accuracy": cell_stats[key]["exact_mean"][0], "exact_best": cell_stats[key]["exact_best"][0],
                        "exact_share": float((c.worst_seeds_S >= cfg.exact).mean())})
        if "off_mean" in cell_stats[key]:
            row["offsupport_accuracy"] = cell_stats[key]["off_mean"][0]
        cell_rows.append(row)
    by_series_d: dict[tuple, list[Cell]] = defaultdict(list)
    for c in all_cells:
        by_series_d[(c.series, c.d)].append(c)
    levels = {"tau": cfg.tau, "exact": cfg.exact}
    for method, (statistic, level, estimate) in METHODS.items():
        level = levels.get(level, level)
        curves: dict[tuple, list] = defaultdict(list)  # series -> (d, cells ascending in m, m_thr, censored)
        for (series, d), cs in sorted(by_series_d.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            cs = sorted((c for c in cs if statistic in cell_stats[(series, d, c.m)]), key=lambda c: c.m)
            if len(cs) < 2:  # a statistic not measured in a cell leaves it out of this curve (no
                continue  # off-support family at m = 2, where every input is in-support); one m: no curve
            m_K = np.array([c.m for c in cs])
            point_1xK = np.array([[cell_stats[(series, d, c.m)][statistic][0] for c in cs]])
            m_thr, censored = estimate(m_K, point_1xK, level)
            if not np.isfinite(m_thr[0]):
                continue  # the curve does not allow this method here
            curves[series].append((d, cs, float(m_thr[0]), "" if censored is None else str(censored[0])))
        for series, curve in curves.items():
            # One bootstrap of the whole series (every cell's seeds resampled, each independently):
            # its thresholds at every d and the fits across d, from the same resamples.
            d_D = np.array([d for d, *_ in curve])
            fitted = [j for j, (*_, cens) in enumerate(curve) if not cens]
            acc = [cell_stats[(series, d, c.m)][statistic][1] for d, cs, *_ in curve for c in cs]
            reduce = cell_stats[(series, curve[0][0], curve[0][1][0].m)][statistic][2]
            stat = curve_statistic([np.array([c.m for c in cs]) for _, cs, *_ in curve], reduce, estimate, level,
                                   d_D, fitted)
            low_O, high_O = stats.bootstrap_interval(acc, stat, ci=cfg.ci, n_resamples=cfg.boot, rng=rng)
            for j, (d, cs, m_thr, cens) in enumerate(curve):
                seeds = min(len(c.seeds_S) for c in cs)
                threshold_rows.append({**dict(zip(columns, series)), "d": d, "m_thr": m_thr,
                                       "m_thr_low": float(low_O[j]), "m_thr_high": float(high_O[j]), "method": method,
                                       "censored": cens, "tau": cfg.tau, "level": level, "seeds": seeds,
                                       "grid_m": " ".join(str(c.m) for c in cs),
                                       "interval_note": f"{seeds} seeds" if seeds < FEW_SEEDS else ""})
            point = np.array([m_thr for *_, m_thr, _ in curve])
            fit_rows.extend(_fit_row(columns, series, method, d_D[fitted], point[fitted],
                                     low_O[-4:-2], high_O[-4:-2], cfg))
            if len(fitted) >= 3:  # the smallest d often dominates a slope: the fit without it, beside
                fit_rows.extend(_fit_row(columns, series, method, d_D[fitted[1:]], point[fitted[1:]],
                                         low_O[-2:], high_O[-2:], cfg, over=f"d > {d_D[fitted[0]]}"))
    return Analysis(columns, all_cells, cell_rows, threshold_rows, fit_rows)


def _fit_row(columns, series, method, d_D, m_thr_D, low_2, high_2, cfg: AnalysisConfig, over: str = "all d") -> list[dict]:
    """The fit row: slope and intercept of the thresholds m_thr_D at d_D, with the bootstrap
    intervals (low_2, high_2) of (slope, intercept) that `curve_statistic` gave."""
    slope, intercept = scaling.loglog_fit(d_D, m_thr_D)
    if not np.isfinite(slope):
        return []
    (slope_lo, icpt_lo), (slope_hi, icpt_hi) = (float(v) for v in low_2), (float(v) for v in high_2)
    return [{**dict(zip(columns, series)), "method": method, "over": over, "points": len(d_D),
             "d_values": " ".join(map(str, d_D)), "slope": slope, "slope_low": slope_lo, "slope_high": slope_hi,
             "intercept": intercept, "intercept_low": icpt_lo, "intercept_high": icpt_hi,
             "slope_one_inside": bool(slope_lo <= 1.0 <= slope_hi), "tau": cfg.tau}]


def write(analysis: Analysis, out_dir: Path) -> dict[str, Path]:
    """cells.csv, thresholds.csv and fit.csv in out_dir; returns their paths."""
    out_dir = Path(out_dir)
    paths = {name: out_dir / f"{name}.csv" for name in ("cells", "thresholds", "fit")}
    cols = analysis.columns
    write_table(paths["cells"], analysis.cell_rows, cols + ["d", "m", "seeds", "accuracy", "accuracy_low", "accuracy_high",
                                                            "best_accuracy", "share_above_tau", "share_out_of_budget",
                                                            "baseline_accuracy"], digits=6)
    write_table(paths["thresholds"], analysis.threshold_rows, cols + ["d", "m_thr", "m_thr_low", "m_thr_high", "method",
                                                                      "censored"], digits=6)
    write_table(paths["fit"], analysis.fit_rows, cols + ["method", "over", "slope", "slope_low", "slope_high"], digits=6)
    return paths


def headline(analysis: Analysis, cfg: AnalysisConfig) -> str:
    """One line: per series and d, where average accuracy and (where measured) exact counting
    stop, from the interpolated thresholds (">= m" when censored above, "< m" below)."""
    def text(r):
        if r is None:
            return "-"
        if r["censored"] == "above":
            return f">= {r['m_thr']:.3g}"
        if r["censored"] == "below":
            return f"< {r['m_thr']:.3g}"
        return f"{r['m_thr']:.3g}"

    parts = []
    multi = len(analysis.series()) > 1
    for series in analysis.series():
        rows = [r for r in analysis.threshold_rows if series_of(r, analysis.columns) == series]
        for d in sorted({r["d"] for r in rows}):
            get = lambda method: next((r for r in rows if r["d"] == d and r["method"] == method), None)
            label = (series_label(analysis.columns, series) + " ") if multi else ""
            piece = f"{label}d = {d}: average accuracy >= {cfg.tau} up to m_thr {text(get('interpolated'))}"
            if get("exact_interpolated") is not None:
                piece += f", exact counting on the training support (worst in-support family >= {cfg.exact}) " \
                         f"up to {text(get('exact_interpolated'))}"
            if get("offsupport_interpolated") is not None:
                piece += f", off the support (worst off-support family) up to {text(get('offsupport_interpolated'))}"
            parts.append(piece)
    return "found: " + "; ".join(parts) if parts else "found: no threshold (fewer than two m per d)"


def report(analysis: Analysis, cfg: AnalysisConfig) -> str:
    """The human summary counting-analyze prints."""
    lines = []
    pct = round(100 * cfg.ci)
    for series in analysis.series():
        lines.append(f"{series_label(analysis.columns, series)}  (tau = {cfg.tau}, {pct}% bootstrap intervals, {cfg.boot} replicates)")
        for r in analysis.threshold_rows:
            if series_of(r, analysis.columns) == series:
                cens = {"above": "  (every m passes: censored above)", "below": "  (every m fails: censored below)"}.get(r["censored"], "")
                lines.append(f"  d={r['d']:<5} m_thr={r['m_thr']:8.3g} [{r['m_thr_low']:.3g}, {r['m_thr_high']:.3g}]  {r['method']}{cens}")
        for f in analysis.fit_rows:
            if series_of(f, analysis.columns) == series:
                inside = "inside" if f["slope_one_inside"] else "outside"
                lines.append(f"  fit ({f['method']}, {f['over']}, {f['points']} d values): log m_thr = {f['intercept']:.3f} + "
                             f"{f['slope']:.3f} log d;"
                             f" slope [{f['slope_low']:.3f}, {f['slope_high']:.3f}]: slope 1 {inside}")
        if not any(tuple(f[c] for c in analysis.columns) == series for f in analysis.fit_rows):
            lines.append("  fit: fewer than 2 uncensored thresholds; no slope")
    return "\n".join(lines)
