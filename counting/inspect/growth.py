"""Does the weight scale grow past d = m? Log-log fits of each weight norm against m/d,
separately on the m > d side and the m <= d side, per task (and n, w, attention), with a
bootstrap interval over models (rows resampled with replacement).

Norms depend on d itself (more coordinates, larger norms), and the m > d side holds more
small-d models, so the fit has one intercept per d: log y = p log(m/d) + a_d, i.e. p is the
slope within each d, pooled (log x and log y are centred within each d)."""

from __future__ import annotations

import itertools

import numpy as np


def loglog_slope(x_N: np.ndarray, y_N: np.ndarray, g_N: np.ndarray) -> float:
    """p of the least-squares fit log y = p log x + a_g (one intercept per group g) over
    positive, finite points."""
    ok = np.isfinite(x_N) & np.isfinite(y_N) & (x_N > 0) & (y_N > 0)
    lx, ly, g = np.log(x_N[ok]), np.log(y_N[ok]), g_N[ok]
    for v in np.unique(g):
        lx[g == v] -= lx[g == v].mean()
        ly[g == v] -= ly[g == v].mean()
    den = (lx * lx).sum()
    return float((lx * ly).sum() / den) if den > 1e-12 else float("nan")


NORMS = ("norm_qk", "norm_total", "norm_embed", "norm_ov", "norm_mlp", "norm_head")
GROUP = ("task", "n", "w", "attention", "topk")
FIT_COLUMNS = ["task", "n", "w", "attention", "topk", "subset", "side", "norm", "exponent", "lo", "hi", "models",
               "ratios", "d_values"]
BOOT, CI = 1000, 0.95
MIN_MODELS = 6  # fewer models than this give no fit (their bootstrap interval would mean nothing)
SIDES = {"m>d": lambda r: r["m"] > r["d"], "m<=d": lambda r: r["m"] <= r["d"]}
# all models, or only those given a mechanism (the ones that count)
SUBSETS = {"all": lambda r: True, "counting": lambda r: r["mechanism"] != "neither"}


def exponent_interval(x_N: np.ndarray, y_N: np.ndarray, g_N: np.ndarray,
                      rng: np.random.Generator) -> tuple[float, float, float]:
    """(slope, low, high): the fitted exponent and its percentile interval over models resampled
    with replacement (scipy.stats.bootstrap, paired: a model keeps its x, y and group), taken over
    the resamples whose fit is finite (NaN when none is)."""
    from scipy import stats as sps

    p = loglog_slope(x_N, y_N, g_N)
    if len(x_N) < 2:
        return p, float("nan"), float("nan")
    boot = sps.bootstrap((x_N, y_N, g_N), loglog_slope, paired=True, vectorized=False, n_resamples=BOOT,
                         confidence_level=CI, method="percentile", rng=rng)
    reps = boot.bootstrap_distribution[np.isfinite(boot.bootstrap_distribution)]
    if not len(reps):
        return p, float("nan"), float("nan")
    lo, hi = np.quantile(reps, [(1 - CI) / 2, (1 + CI) / 2])
    return p, float(lo), float(hi)


def growth_fits(rows: list[dict], seed: int = 0) -> list[dict]:
    """The rows of inspect_fit.csv: per group (task, n, w, attention, topk), subset of models (all, or those
    given a mechanism), side (m > d, m <= d) and weight norm, the exponent of the norm against m/d with its
    bootstrap interval; only where a subset side has at least MIN_MODELS models and some d with two ratios m/d."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[c] for c in GROUP), []).append(r)
    out = []
    for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        for (subset, take), (side, keep) in itertools.product(SUBSETS.items(), SIDES.items()):
            part = [r for r in members if keep(r) and take(r)]
            x_N = np.array([r["m"] / r["d"] for r in part], np.float64)
            g_N = np.array([r["d"] for r in part])
            spans = any(len({r["m"] for r in part if r["d"] == d}) >= 2 for d in set(g_N))
            if len(part) < MIN_MODELS or not spans:
                continue  # too few models, or no d with two ratios: no within-d slope
            for norm in NORMS:
                y_N = np.array([r[norm] for r in part], np.float64)
                p, lo, hi = exponent_interval(x_N, y_N, g_N, rng)
                out.append({**dict(zip(GROUP, key)), "subset": subset, "side": side, "norm": norm,
                            "exponent": p, "lo": lo, "hi": hi, "models": len(part), "ratios": len(set(x_N)),
                            "d_values": len(set(g_N))})
    return out
