"""The whole analysis of one table: cells -> thresholds per d -> log-log fit across d.

Writes next to the table: `cells.csv` (mean accuracy per (series, d, m) with its bootstrap
interval and baseline), `thresholds.csv` (m_thr per (series, d, method) with its interval and
censoring) and `fit.csv` (slope and intercept of log m_thr against log d, with intervals, and
whether slope 1 lies inside).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

import numpy as np

from counting.analysis import bootstrap, scaling, threshold
from counting.analysis.table import Cell, TableError, cells, series_columns, series_label
from counting.config import AnalysisConfig
from counting.store import write_table

# method -> (the cell statistic over seeds it cuts, the estimator). The mean over seeds mixes
# "can this size count" with "does training find it"; the best seed measures capacity alone
# (the share of seeds at or above tau, in cells.csv, measures how often training finds it).
METHODS = {
    "interpolated": ("mean", threshold.interpolated),
    "logistic": ("mean", lambda m_K, acc_RxK, tau: (threshold.logistic(m_K, acc_RxK, tau), None)),
    "best_seed": ("best", threshold.interpolated),
}
STATISTICS = {"mean": lambda acc_RxS: acc_RxS.mean(axis=-1), "best": lambda acc_RxS: acc_RxS.max(axis=-1)}


@dataclasses.dataclass
class Analysis:
    columns: list[str]  # the series columns
    cells: list[Cell]
    cell_rows: list[dict]
    threshold_rows: list[dict]
    fit_rows: list[dict]

    def series(self) -> list[tuple]:
        return sorted({c.series for c in self.cells}, key=str)


def check_fingerprints(rows: list[dict], cfg: AnalysisConfig) -> None:
    """Rows trained by different code (a `fingerprint` column with several values) are not
    analysed together unless cfg.mix_fingerprints says so."""
    prints = sorted({r.get("fingerprint") or "none" for r in rows})  # "none": from before fingerprints
    if len(prints) > 1 and not cfg.mix_fingerprints:
        raise TableError(f"table: rows from {len(prints)} versions of the training code (fingerprints {', '.join(prints)}); "
                         "retrain the stale ones (rerun the sweep: rerun=stale) or allow it (--mix-fingerprints)")


def analyze(rows: list[dict], cfg: AnalysisConfig = AnalysisConfig()) -> Analysis:
    check_fingerprints(rows, cfg)
    rng = np.random.default_rng(cfg.seed)
    columns = series_columns(rows)
    all_cells = cells(rows, columns)
    budget_stops = defaultdict(list)  # (series, d, m) -> whether each model ran out of budget
    for r in rows:
        if r.get("stop_reason"):
            budget_stops[(tuple(r[c] for c in columns), r["d"], r["m"])].append(r["stop_reason"] == "budget")
    cell_rows, threshold_rows, fit_rows = [], [], []
    boot: dict[tuple, dict[str, np.ndarray]] = {}  # (series, d, m) -> statistic -> replicates
    for c in all_cells:
        acc_RxS = bootstrap.resampled(c.acc_S, cfg.boot, rng)
        boot[(c.series, c.d, c.m)] = {name: f(acc_RxS) for name, f in STATISTICS.items()}
        low, high = bootstrap.interval(boot[(c.series, c.d, c.m)]["mean"], cfg.ci)
        cell_rows.append({**dict(zip(columns, c.series)), "d": c.d, "m": c.m, "seeds": len(c.acc_S),
                          "accuracy": c.mean, "accuracy_low": low, "accuracy_high": high,
                          "best_accuracy": float(c.acc_S.max()), "share_above_tau": float((c.acc_S >= cfg.tau).mean()),
                          "share_out_of_budget": float(np.mean(budget_stops[(c.series, c.d, c.m)]))
                          if budget_stops[(c.series, c.d, c.m)] else "",
                          "baseline_accuracy": c.baseline})
    by_series_d: dict[tuple, list[Cell]] = defaultdict(list)
    for c in all_cells:
        by_series_d[(c.series, c.d)].append(c)
    for method, (statistic, estimate) in METHODS.items():
        per_series: dict[tuple, dict] = defaultdict(lambda: {"d": [], "point": [], "boot": [], "censored": []})
        for (series, d), cs in sorted(by_series_d.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            cs = sorted(cs, key=lambda c: c.m)
            if len(cs) < 2:
                continue  # one vocabulary size: no curve in m to cut
            m_K = np.array([c.m for c in cs])
            point_1xK = np.array([[STATISTICS[statistic](c.acc_S) for c in cs]])
            boot_RxK = np.stack([boot[(series, d, c.m)][statistic] for c in cs], axis=1)
            m_thr, censored = estimate(m_K, point_1xK, cfg.tau)
            if not np.isfinite(m_thr[0]):
                continue  # the curve does not allow this method here
            m_thr_R, _ = estimate(m_K, boot_RxK, cfg.tau)
            low, high = bootstrap.interval(m_thr_R, cfg.ci)
            cens = "" if censored is None else str(censored[0])
            threshold_rows.append({**dict(zip(columns, series)), "d": d, "m_thr": float(m_thr[0]),
                                   "m_thr_low": low, "m_thr_high": high, "method": method, "censored": cens,
                                   "tau": cfg.tau, "grid_m": " ".join(map(str, m_K))})
            if not cens:
                s = per_series[series]
                s["d"].append(d), s["point"].append(m_thr[0]), s["boot"].append(m_thr_R)
        for series, s in per_series.items():
            fit_rows.extend(_fit_row(columns, series, method, s, cfg))
    return Analysis(columns, all_cells, cell_rows, threshold_rows, fit_rows)


def _fit_row(columns, series, method, s, cfg: AnalysisConfig) -> list[dict]:
    d_D = np.array(s["d"])
    slope, intercept = scaling.loglog_fit(d_D, np.array(s["point"]))
    if not np.isfinite(slope):
        return []
    slope_R, intercept_R = scaling.loglog_fit_replicates(d_D, np.stack(s["boot"], axis=1))
    slope_lo, slope_hi = bootstrap.interval(slope_R, cfg.ci)
    icpt_lo, icpt_hi = bootstrap.interval(intercept_R, cfg.ci)
    return [{**dict(zip(columns, series)), "method": method, "points": len(d_D),
             "d_values": " ".join(map(str, d_D)), "slope": slope, "slope_low": slope_lo, "slope_high": slope_hi,
             "intercept": intercept, "intercept_low": icpt_lo, "intercept_high": icpt_hi,
             "slope_one_inside": bool(slope_lo <= 1.0 <= slope_hi), "tau": cfg.tau}]


def write(analysis: Analysis, out_dir: Path) -> dict[str, Path]:
    """cells.csv, thresholds.csv and fit.csv in out_dir; returns their paths."""
    out_dir = Path(out_dir)
    paths = {name: out_dir / f"{name}.csv" for name in ("cells", "thresholds", "fit")}
    cols = analysis.columns
    write_table(paths["cells"], analysis.cell_rows, cols + ["d", "m", "seeds", "accuracy", "accuracy_low", "accuracy_high", "best_accuracy",
                                                 "share_above_tau", "share_out_of_budget", "baseline_accuracy"], digits=6)
    write_table(paths["thresholds"], analysis.threshold_rows, cols + ["d", "m_thr", "m_thr_low", "m_thr_high", "method", "censored"], digits=6)
    write_table(paths["fit"], analysis.fit_rows, cols + ["method", "slope", "slope_low", "slope_high"], digits=6)
    return paths


def report(analysis: Analysis, cfg: AnalysisConfig) -> str:
    """The human summary counting-analyze prints."""
    lines = []
    pct = round(100 * cfg.ci)
    for series in analysis.series():
        lines.append(f"{series_label(analysis.columns, series)}  (tau = {cfg.tau}, {pct}% bootstrap intervals, {cfg.boot} replicates)")
        for r in analysis.threshold_rows:
            if tuple(r[c] for c in analysis.columns) == series:
                cens = {"above": "  (every m passes: censored above)", "below": "  (every m fails: censored below)"}.get(r["censored"], "")
                lines.append(f"  d={r['d']:<5} m_thr={r['m_thr']:8.3g} [{r['m_thr_low']:.3g}, {r['m_thr_high']:.3g}]  {r['method']}{cens}")
        for f in analysis.fit_rows:
            if tuple(f[c] for c in analysis.columns) == series:
                inside = "inside" if f["slope_one_inside"] else "outside"
                lines.append(f"  fit ({f['method']}, {f['points']} d values): log m_thr = {f['intercept']:.3f} + {f['slope']:.3f} log d;"
                             f" slope [{f['slope_low']:.3f}, {f['slope_high']:.3f}]: slope 1 {inside}")
        if not any(tuple(f[c] for c in analysis.columns) == series for f in analysis.fit_rows):
            lines.append("  fit: fewer than 2 uncensored thresholds; no slope")
    return "\n".join(lines)
