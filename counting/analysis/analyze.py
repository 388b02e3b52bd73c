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
from counting.analysis.table import Cell, cells, series_label
from counting.columns import TableError, searched, series_columns, series_of
from counting.config import AnalysisConfig
from counting.store import write_table


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
# twins on the worst-family accuracy where the families were evaluated (counting.families).
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
}
FEW_SEEDS = 5  # below this many seeds a percentile bootstrap has few distinct resamples: say so


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


def cell_statistics(c: Cell, cfg: AnalysisConfig, rng: np.random.Generator) -> dict[str, tuple[float, np.ndarray]]:
    """Each statistic of a cell: (its value, its bootstrap replicates over seeds)."""
    seeds_RxS = bootstrap.resampled(c.acc_S, cfg.boot, rng)  # without a search: one resample serves all
    all_RxS = seeds_RxS
    if c.chosen_S is not None:
        seeds_RxS = bootstrap.resampled(c.chosen_S, cfg.boot, rng)
    seeds = c.seeds_S
    out = {"mean": (float(seeds.mean()), seeds_RxS.mean(axis=1)),
           "best": (float(c.acc_S.max()), all_RxS.max(axis=1)),
           "share": (float((seeds >= cfg.tau).mean()), (seeds_RxS >= cfg.tau).mean(axis=1))}
    if c.worst_S is not None and np.isfinite(c.worst_S).all():
        worst_all_RxS = bootstrap.resampled(c.worst_S, cfg.boot, rng)
        worst = c.worst_seeds_S
        worst_RxS = worst_all_RxS if c.worst_chosen_S is None else bootstrap.resampled(worst, cfg.boot, rng)
        out["exact_mean"] = (float(worst.mean()), worst_RxS.mean(axis=1))  # the chosen setting's seeds
        out["exact_best"] = (float(c.worst_S.max()), worst_all_RxS.max(axis=1))  # every model
    return out


def analyze(rows: list[dict], cfg: AnalysisConfig = AnalysisConfig()) -> Analysis:
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
    stats: dict[tuple, dict] = {}  # (series, d, m) -> statistic -> (value, replicates)
    for c in all_cells:
        key = (c.series, c.d, c.m)
        stats[key] = cell_statistics(c, cfg, rng)
        low, high = bootstrap.interval(stats[key]["mean"][1], cfg.ci)
        share_low, share_high = bootstrap.interval(stats[key]["share"][1], cfg.ci)
        seeds = c.seeds_S
        row = {**dict(zip(columns, c.series)), "d": c.d, "m": c.m, "seeds": len(seeds),
               "accuracy": c.mean, "accuracy_low": low, "accuracy_high": high,
               "seed_min": float(seeds.min()), "seed_max": float(seeds.max()),
               "best_accuracy": float(c.acc_S.max()), "share_above_tau": stats[key]["share"][0],
               "share_low": share_low, "share_high": share_high,
               "share_out_of_budget": float(np.mean(budget_stops[key])) if budget_stops[key] else "",
               "baseline_accuracy": c.baseline,
               "interval_note": f"{len(seeds)} seeds: read the seed range" if len(seeds) < FEW_SEEDS else ""}
        if c.setting is not None:
            row.update({"models": len(c.acc_S), "chosen_lr": c.setting[0], "chosen_weight_decay": c.setting[1]})
        if "exact_mean" in stats[key]:
            row.update({"exact_accuracy": stats[key]["exact_mean"][0], "exact_best": stats[key]["exact_best"][0],
                        "exact_share": float((c.worst_seeds_S >= cfg.exact).mean())})
        cell_rows.append(row)
    by_series_d: dict[tuple, list[Cell]] = defaultdict(list)
    for c in all_cells:
        by_series_d[(c.series, c.d)].append(c)
    levels = {"tau": cfg.tau, "exact": cfg.exact}
    for method, (statistic, level, estimate) in METHODS.items():
        level = levels.get(level, level)
        per_series: dict[tuple, dict] = defaultdict(lambda: {"d": [], "point": [], "boot": [], "censored": []})
        for (series, d), cs in sorted(by_series_d.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            cs = sorted(cs, key=lambda c: c.m)
            if len(cs) < 2 or any(statistic not in stats[(series, d, c.m)] for c in cs):
                continue  # one vocabulary size (no curve in m to cut), or a statistic not measured here
            m_K = np.array([c.m for c in cs])
            point_1xK = np.array([[stats[(series, d, c.m)][statistic][0] for c in cs]])
            boot_RxK = np.stack([stats[(series, d, c.m)][statistic][1] for c in cs], axis=1)
            m_thr, censored = estimate(m_K, point_1xK, level)
            if not np.isfinite(m_thr[0]):
                continue  # the curve does not allow this method here
            m_thr_R, _ = estimate(m_K, boot_RxK, level)
            low, high = bootstrap.interval(m_thr_R, cfg.ci)
            cens = "" if censored is None else str(censored[0])
            seeds = min(len(c.seeds_S) for c in cs)
            threshold_rows.append({**dict(zip(columns, series)), "d": d, "m_thr": float(m_thr[0]),
                                   "m_thr_low": low, "m_thr_high": high, "method": method, "censored": cens,
                                   "tau": cfg.tau, "level": level, "seeds": seeds, "grid_m": " ".join(map(str, m_K)),
                                   "interval_note": f"{seeds} seeds" if seeds < FEW_SEEDS else ""})
            if not cens:
                s = per_series[series]
                s["d"].append(d), s["point"].append(m_thr[0]), s["boot"].append(m_thr_R)
        for series, s in per_series.items():
            fit_rows.extend(_fit_row(columns, series, method, s, cfg))
            if len(s["d"]) >= 3:  # the smallest d often dominates a slope: the fit without it, beside
                drop = {k: v[1:] for k, v in s.items() if k != "censored"}
                fit_rows.extend(_fit_row(columns, series, method, drop, cfg, over=f"d > {s['d'][0]}"))
    return Analysis(columns, all_cells, cell_rows, threshold_rows, fit_rows)


def _fit_row(columns, series, method, s, cfg: AnalysisConfig, over: str = "all d") -> list[dict]:
    d_D = np.array(s["d"])
    slope, intercept = scaling.loglog_fit(d_D, np.array(s["point"]))
    if not np.isfinite(slope):
        return []
    slope_R, intercept_R = scaling.loglog_fit_replicates(d_D, np.stack(s["boot"], axis=1))
    slope_lo, slope_hi = bootstrap.interval(slope_R, cfg.ci)
    icpt_lo, icpt_hi = bootstrap.interval(intercept_R, cfg.ci)
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
                piece += f", exact counting (worst family >= {cfg.exact}) up to {text(get('exact_interpolated'))}"
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
