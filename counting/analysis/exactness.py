"""Exact counting as a measured quantity: how models stopped, when they became exact, and the
exact threshold read from a model of P(exact | m, d).

- `stop_rows`: per cell, the share of each stop reason (target, plateau, budget, pruned,
  diverged) and where the models stood when they stopped (the worst in-support validation
  family, `support_worst`, and the i.i.d. held-out accuracy), so a cell whose models were cut
  off before exactness shows it.
- `survival_rows`: steps to exactness per cell as right-censored data (and how many models
  were exact during training but not at their stop): a model that never
  became exact within its budget is censored at its last step, not dropped; the Kaplan-Meier
  estimate (scipy.stats.ecdf of CensoredData) gives the share exact by each budget and the
  median steps to exactness (NaN where fewer than half became exact), with the median total
  weight norm at exactness.
- `logistic_rows`: per series and d, a logistic fit of P(exact) = 1 / (1 + exp(-(a + b log m)))
  over every model of the chosen setting (seeds as replicates; exact = the worst in-support test
  family >= analysis.exact), the exact threshold m_50 where P = 1/2 with a bootstrap interval
  (each cell's models resampled independently, scipy.stats.bootstrap), m_50 / d, and m_50
  reported as a bound (`censored` above / below: m_thr is the grid's edge, no interval) where it
  lies outside the grid, and with the interval widened to the grid gap where the outcomes are
  separated (every model exact below the gap, none above: the data place m_50 only inside it);
  then the slope
  of log m_50 against log d across d (with and without the largest d), from the same bootstrap.

Written by `write` as stops.csv, exactness.csv and exact_fit.csv beside thresholds.csv.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats as sps

from counting.analysis.table import row_worst
from counting.config import AnalysisConfig
from counting.store import EXACT_FIT, EXACTNESS, STOPS, write_table
from counting.store.columns import searched, series_columns, series_of
from counting.training.stop import REASONS


def _chosen(rows: list[dict]) -> list[dict]:
    """The models a cell's seeds-as-replicates statistics use: under a halving search those of
    the settings promoted to the end (the chosen setting), else all."""
    promoted = [r for r in rows if r.get("promoted") in (True, "True")]
    return promoted or rows


def _cells(rows: list[dict]) -> tuple[list[str], dict[tuple, list[dict]]]:
    columns = series_columns(rows)
    by: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        by[(series_of(r, columns), r["d"], r["m"])].append(r)
    return columns, dict(sorted(by.items(), key=lambda kv: (str(kv[0][0]), kv[0][1], kv[0][2])))


def stop_rows(rows: list[dict]) -> list[dict]:
    """Per cell: the share of each stop reason and the median standing at the stop."""
    columns, by = _cells(rows)
    out = []
    for (series, d, m), rs in by.items():
        reasons = [r.get("stop_reason") or "budget" for r in rs]
        row = {**dict(zip(columns, series)), "d": d, "m": m, "models": len(rs)}
        row.update({f"share_{k}": reasons.count(k) / len(rs) for k in REASONS})
        stood = [r.get("support_worst") for r in rs if r.get("support_worst") is not None]
        row["median_support_worst"] = float(np.median(stood)) if stood else math.nan
        row["median_accuracy"] = float(np.median([r["accuracy"] for r in rs]))
        row["median_steps"] = float(np.median([r.get("steps") or 0 for r in rs]))
        out.append(row)
    return out


def survival_rows(rows: list[dict], budgets=(), cfg: AnalysisConfig = AnalysisConfig()) -> list[dict]:
    """Per cell: Kaplan-Meier steps to exactness of the chosen setting's models (rows with a
    `steps_to_exact` column: runs that watched their validation families), and `lost_models`:
    those that became exact on their validation families during training but whose worst
    in-support test family is below analysis.exact at their stop: exactness lost before the stop
    (the record keeps the last weights, not the best) or never reached on the test families."""
    columns, by = _cells([r for r in rows if r.get("steps_to_exact") is not None])
    out = []
    for (series, d, m), rs in by.items():
        rs = _chosen(rs)
        t = np.array([float(r["steps_to_exact"]) for r in rs])
        censored = np.array([r.get("exact_censored") in (True, "True") for r in rs])
        lost = sum(not c and not row_worst(r)["worst"] >= cfg.exact for r, c in zip(rs, censored))
        row = {**dict(zip(columns, series)), "d": d, "m": m, "models": len(rs), "exact_models": int((~censored).sum()),
               "lost_models": int(lost)}
        if (~censored).any():
            data = sps.CensoredData(uncensored=t[~censored], right=t[censored])
            sf = sps.ecdf(data).sf
            q = sf.quantiles  # event times
            p_exact = 1 - sf.probabilities
            half = np.nonzero(p_exact >= 0.5)[0]
            row["median_steps_to_exact"] = float(q[half[0]]) if len(half) else math.nan
            row["exact_by_budget"] = float(p_exact[-1])
            norms = [r.get("exact_norm") for r in rs if r.get("exact_norm") not in (None, "") and
                     not (isinstance(r.get("exact_norm"), float) and math.isnan(r["exact_norm"]))]
            row["median_exact_norm"] = float(np.median(norms)) if norms else math.nan
        else:
            row.update({"median_steps_to_exact": math.nan, "exact_by_budget": 0.0, "median_exact_norm": math.nan})
        row["budget"] = float(t.max())
        out.append(row)
    return out


def _logistic(x_N: np.ndarray, y_RxN: np.ndarray, iters: int = 60, ridge: float = 1e-3):
    """(a_R, b_R): maximum-likelihood logistic fits of y (0/1, one row per replicate) on x, by
    Newton's method on every row at once, with a small ridge on the slope and the slope bounded
    by SEPARATED (complete separation: the steepest allowed curve through the gap)."""
    y_RxN = np.atleast_2d(np.asarray(y_RxN, np.float64))
    x0 = float(np.mean(x_N))
    xc_N = np.asarray(x_N, np.float64) - x0  # centred: a better-conditioned Hessian
    a_R, b_R = np.zeros(len(y_RxN)), np.zeros(len(y_RxN))
    for _ in range(iters):
        p_RxN = 1.0 / (1.0 + np.exp(-(a_R[:, None] + b_R[:, None] * xc_N)))
        w_RxN = p_RxN * (1.0 - p_RxN) + 1e-12
        r_RxN = y_RxN - p_RxN
        g_a, g_b = r_RxN.sum(1), (r_RxN * xc_N).sum(1) - ridge * b_R
        h_aa, h_ab, h_bb = w_RxN.sum(1), (w_RxN * xc_N).sum(1), (w_RxN * xc_N**2).sum(1) + ridge
        det = h_aa * h_bb - h_ab**2
        a_R = a_R + (h_bb * g_a - h_ab * g_b) / det
        b_R = np.clip(b_R + (h_aa * g_b - h_ab * g_a) / det, -SEPARATED, SEPARATED)
    return a_R - b_R * x0, b_R  # back to uncentred x


SEPARATED = 49.0  # a fitted slope this steep is the bound: the outcomes are separated in m


def _data(m_K, ys) -> tuple[np.ndarray, np.ndarray]:
    """(log m, exact) over every model of the cells."""
    return np.concatenate([np.full(len(y), math.log(m)) for m, y in zip(m_K, ys)]), np.concatenate(ys)


def _log_m50(a_R: np.ndarray, b_R: np.ndarray) -> np.ndarray:
    """log m where the fitted P(exact) crosses 1/2 (capped at log 1e6: no decline with m)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b_R < 0, np.minimum(-a_R / b_R, math.log(1e6)), math.log(1e6))


def logistic_m50(outcomes: dict[int, np.ndarray]) -> float:
    """The point estimate of m_50 from {m: exact outcomes (0/1) of the cell's models}: the
    fit `logistic_rows` makes (capped at 1e6 where P(exact) does not fall with m)."""
    m_K = sorted(outcomes)
    x_N, y_N = _data(m_K, [np.asarray(outcomes[m], np.float64) for m in m_K])
    return float(math.exp(_log_m50(*_logistic(x_N, y_N))[0]))


def logistic_rows(rows: list[dict], cfg: AnalysisConfig = AnalysisConfig()) -> tuple[list[dict], list[dict]]:
    """(per d: the logistic exact threshold m_50 with its interval; per series: the slope of
    log m_50 on log d)."""
    columns, by = _cells([r for r in rows if not math.isnan(row_worst(r)["worst"])])
    curves: dict[tuple, dict] = defaultdict(dict)
    for (series, d, m), rs in by.items():
        rs = _chosen(rs) if searched(rs) else rs
        curves[(series, d)][m] = np.array([float(row_worst(r)["worst"] >= cfg.exact) for r in rs])
    thr_rows, reps = [], defaultdict(dict)
    rng = np.random.default_rng(cfg.seed)
    for (series, d), cells in curves.items():
        m_K = np.array(sorted(cells))
        if len(m_K) < 2:
            continue
        samples = [cells[m] for m in m_K]

        x_N = _data(m_K, samples)[0]

        def stat(*ys, axis=-1):  # vectorised over the resamples (leading axes)
            y = np.concatenate([np.moveaxis(v, axis, -1) for v in ys], axis=-1)
            lead = y.shape[:-1]
            return _log_m50(*_logistic(x_N, y.reshape(-1, y.shape[-1]))).reshape(lead)

        point = float(stat(*samples))
        if min(len(y) for y in samples) < 2:  # one model in a cell: nothing to resample
            distribution, low, high = np.full(cfg.boot, point), math.nan, math.nan
        else:
            boot = sps.bootstrap(samples, stat, vectorized=True, paired=False, n_resamples=cfg.boot,
                                 confidence_level=cfg.ci, method="percentile", rng=rng)
            distribution = boot.bootstrap_distribution
            low, high = math.exp(boot.confidence_interval.low), math.exp(boot.confidence_interval.high)
        high = math.inf if high >= 0.99e6 else high  # resamples without a decline in m: unbounded above
        m50 = math.exp(point)
        censored = "above" if m50 > m_K[-1] else ("below" if m50 < m_K[0] else "")
        if censored:  # outside the grid: a bound (the grid's edge), not a value
            m50, low, high = float(m_K[-1] if censored == "above" else m_K[0]), math.nan, math.nan
        else:
            exact_m = [m for m, y in zip(m_K, samples) if y.any()]
            fail_m = [m for m, y in zip(m_K, samples) if (y == 0).any()]
            if exact_m and fail_m and max(exact_m) < min(fail_m):  # every model exact below a gap, none above:
                low, high = min(low, float(max(exact_m))), max(high, float(min(fail_m)))  # m_50 is somewhere in it
        reps[series][d] = (point, distribution, censored)
        thr_rows.append({**dict(zip(columns, series)), "d": d, "method": "exact_logistic", "m_thr": m50,
                         "m_thr_low": low, "m_thr_high": high, "censored": censored, "ratio": m50 / d,
                         "ratio_low": low / d, "ratio_high": high / d, "models": int(sum(len(s) for s in samples)),
                         "grid_m": " ".join(map(str, m_K)), "level": 0.5})
    fit_rows = []
    for series, per_d in reps.items():
        ds = sorted(d for d, (_, _, cens) in per_d.items() if not cens)
        for over, use in (("all d", ds), (f"d < {ds[-1]}" if ds else "", ds[:-1])):
            if len(use) < 2:
                continue
            x = np.log(np.array(use, float))
            y = np.array([per_d[d][0] for d in use])
            slope = float(np.polyfit(x, y, 1)[0])
            R = min(len(per_d[d][1]) for d in use)
            y_RxD = np.stack([per_d[d][1][:R] for d in use], axis=1)
            slopes = np.polyfit(x, y_RxD.T, 1)[0]
            lo, hi = np.quantile(slopes, [(1 - cfg.ci) / 2, 1 - (1 - cfg.ci) / 2])
            fit_rows.append({**dict(zip(columns, series)), "method": "exact_logistic", "over": over, "slope": slope,
                             "slope_low": float(lo), "slope_high": float(hi), "slope_one_inside": bool(lo <= 1 <= hi),
                             "d_values": " ".join(map(str, use))})
    return thr_rows, fit_rows


def write(rows: list[dict], out_dir: Path, cfg: AnalysisConfig = AnalysisConfig()) -> dict[str, Path]:
    """stops.csv, exactness.csv (where runs watched their validation families) and
    exact_fit.csv (the logistic exact thresholds and their slope in d) in out_dir."""
    out_dir = Path(out_dir)
    paths = {}
    stops = stop_rows(rows)
    if stops:
        paths["stops"] = out_dir / STOPS
        write_table(paths["stops"], stops, list(stops[0]), digits=6)
    survival = survival_rows(rows, cfg=cfg)
    if survival:
        paths["exactness"] = out_dir / EXACTNESS
        write_table(paths["exactness"], survival, list(survival[0]), digits=6)
    thr, fit = logistic_rows(rows, cfg)
    if thr:
        paths["exact_fit"] = out_dir / EXACT_FIT
        keys = list(dict.fromkeys(k for r in thr + fit for k in r))
        write_table(paths["exact_fit"], thr + fit, keys, digits=6)
    return paths
