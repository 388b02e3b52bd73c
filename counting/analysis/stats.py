"""The suite's statistics: every interval and test the analysis and LLM tables report, each a
thin wrapper over scipy.stats (no estimator of our own).

- `wilson`: the Wilson score interval of a proportion (LLM accuracy over samples).
- `bootstrap_interval`: a bootstrap interval of any statistic of one or more samples, each
  resampled with replacement independently of the others (the suite's samples: one cell's
  seeds each, since every model has its own seed); percentile by default, BCa on request.
- `welch`, `tost`, `agreement`: Welch's t-test, the two one-sided tests of equivalence within
  a margin, and the one-cell verdict they give together.
- `permutation`: a permutation test of two independent samples.
- `holm`: Holm's step-down correction of a family of p-values (scipy has only BH and BY).
- `above`: a one-sided binomial test of a proportion against a fixed rate (an LLM cell's
  accuracy against its trivial baseline).
- `trend`: the trend of a binary outcome over an ordered factor (an LLM's accuracy over m or
  n): the Cochran-Armitage statistic by permutation, with a bootstrap interval of its slope.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats as sps


def wilson(k: int, N: int, ci: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for k successes out of N (sensible at 0 and N, unlike
    p +- z se): scipy.stats.binomtest(k, N).proportion_ci(method="wilson"); NaN when N = 0."""
    if N == 0:
        return math.nan, math.nan
    low, high = sps.binomtest(int(k), int(N)).proportion_ci(confidence_level=ci, method="wilson")
    return float(low), float(high)


def bootstrap_interval(samples: Sequence[np.ndarray], statistic: Callable, *, ci: float = 0.95,
                       n_resamples: int = 1000, rng: np.random.Generator | int | None = None,
                       method: str = "percentile"):
    """(low, high): the central `ci` bootstrap interval of statistic(*samples), by
    scipy.stats.bootstrap with every sample resampled with replacement independently of the
    others (paired=False) and `rng` (a Generator or a seed: deterministic).

    `statistic(*samples, axis=-1)` reduces each sample along its last axis and is vectorised
    over the leading ones (scipy passes `n_resamples` resamples at once); it returns one value
    per resample or a stack of several, shape (outputs, ...): then low and high are arrays of
    one interval per output (they share the resamples). `method`: "percentile" (the quantiles
    of the replicates) or "BCa" (bias-corrected and accelerated: for smooth statistics such as
    a mean, with enough distinct values; not for a max, a share or a threshold of a curve).

    The cases scipy does not take are handled here:
    - a sample of one value (one seed) is passed as two copies of it: resampling either gives
      that value every time, so `statistic` must not depend on how often a value repeats (a
      mean, a max and a share do not);
    - every sample constant (one seed each, or all seeds equal): the statistic cannot move,
      and the interval is its value at both ends (where BCa would be NaN);
    - an output with non-finite replicates (a threshold the resampled curve does not allow, a
      fit with too few points): NaN if fewer than half of them are finite, else the percentile
      interval of the finite ones (scipy.stats.quantile, the quantile scipy's bootstrap takes).
    """
    samples = [np.asarray(s, np.float64) for s in samples]
    samples = [np.repeat(s, 2) if len(s) == 1 else s for s in samples]
    if all(np.all(s == s[0]) for s in samples):
        value = np.asarray(statistic(*samples, axis=-1), np.float64)
        return _unpack(value, value)
    with warnings.catch_warnings():  # NaN replicates: decided below, not warned about
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sps.bootstrap(samples, statistic, n_resamples=n_resamples, method=method, confidence_level=ci,
                            paired=False, vectorized=True, rng=rng)
    low, high = (np.array(v, np.float64) for v in res.confidence_interval)  # shape (): one statistic; (O,): O
    shape = low.shape
    dist_OxR = np.asarray(res.bootstrap_distribution, np.float64).reshape(low.size, -1)
    finite_OxR = np.isfinite(dist_OxR)
    partial_O = ~finite_OxR.all(axis=1)
    if partial_O.any():
        a = (1.0 - ci) / 2.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an output with no finite replicate
            q_Ox2 = np.asarray(sps.quantile(np.where(finite_OxR, dist_OxR, np.nan), np.array([[a, 1.0 - a]]),
                                            axis=-1, nan_policy="omit"), np.float64)
        enough_O = finite_OxR.sum(axis=1) >= max(1, dist_OxR.shape[1] // 2)
        low, high = low.reshape(-1), high.reshape(-1)
        low[partial_O] = np.where(enough_O, q_Ox2[:, 0], np.nan)[partial_O]
        high[partial_O] = np.where(enough_O, q_Ox2[:, 1], np.nan)[partial_O]
        low, high = low.reshape(shape), high.reshape(shape)
    return _unpack(low, high)


def _unpack(low: np.ndarray, high: np.ndarray):
    """Floats for one statistic, arrays of one value per output for a stack of them."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    return (float(low), float(high)) if low.ndim == 0 else (low, high)


def welch(a, b) -> tuple[float, float]:
    """(t, p): Welch's two-sided t-test of mean(a) = mean(b), variances not assumed equal
    (scipy.stats.ttest_ind(equal_var=False))."""
    res = sps.ttest_ind(np.asarray(a, np.float64), np.asarray(b, np.float64), equal_var=False)
    return float(res.statistic), float(res.pvalue)


def tost(a, b, margin: float) -> tuple[float, float, float]:
    """(p_lower, p_upper, p): the two one-sided Welch tests of equivalence of mean(a) and
    mean(b) within +-margin: H0 mean(a) - mean(b) <= -margin (rejected by p_lower) and
    H0 mean(a) - mean(b) >= margin (rejected by p_upper); p = max of the two (equivalent at
    level alpha when p < alpha). Shifting a by the margin leaves its variance, and Welch's
    degrees of freedom, as they are."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    lower = sps.ttest_ind(a + margin, b, equal_var=False, alternative="greater")
    upper = sps.ttest_ind(a - margin, b, equal_var=False, alternative="less")
    p_lower, p_upper = float(lower.pvalue), float(upper.pvalue)
    return p_lower, p_upper, max(p_lower, p_upper)


def welch_from_stats(a, mean_b: float, std_b: float, n_b: int) -> dict:
    """Welch's two-sided t-test of the sample `a` against a sample known only by its mean,
    standard deviation (ddof 1) and size (scipy.stats.ttest_ind_from_stats), as
    `peer.welch_contrast` reports it for two samples: estimate (mean(a) - mean_b), se, t, the
    Welch-Satterthwaite df and p_value."""
    a = np.asarray(a, np.float64)
    va, vb = a.var(ddof=1) / len(a), std_b**2 / n_b
    res = sps.ttest_ind_from_stats(a.mean(), a.std(ddof=1), len(a), mean_b, std_b, n_b, equal_var=False)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (n_b - 1)) if va + vb > 0 else float("nan")
    return {"estimate": float(a.mean() - mean_b), "se": float(np.sqrt(va + vb)), "t": float(res.statistic),
            "df": float(df), "p_value": float(res.pvalue)}


def tost_from_stats(a, mean_b: float, std_b: float, n_b: int, margin: float) -> tuple[float, float, float]:
    """`tost` against a sample known by its mean, standard deviation (ddof 1) and size."""
    a = np.asarray(a, np.float64)
    ma, sa, na = a.mean(), a.std(ddof=1), len(a)
    lower = sps.ttest_ind_from_stats(ma + margin, sa, na, mean_b, std_b, n_b, equal_var=False, alternative="greater")
    upper = sps.ttest_ind_from_stats(ma - margin, sa, na, mean_b, std_b, n_b, equal_var=False, alternative="less")
    p_lower, p_upper = float(lower.pvalue), float(upper.pvalue)
    return p_lower, p_upper, max(p_lower, p_upper)


def agreement(ours, theirs, margin: float, alpha: float = 0.05) -> str:
    """One cell's verdict on two samples: "equivalent" (TOST p < alpha: the means lie within
    +-margin, even where Welch also finds a difference, which is then smaller than the
    margin), "differs" (Welch p < alpha), else "undecided" (too few or too noisy samples to
    say either). Correcting alpha over many cells (`holm`) is the caller's job."""
    if tost(ours, theirs, margin)[2] < alpha:
        return "equivalent"
    if welch(ours, theirs)[1] < alpha:
        return "differs"
    return "undecided"


def permutation(a, b, statistic: Callable | None = None, *, n_resamples: int = 9999,
                rng: np.random.Generator | int | None = None, alternative: str = "two-sided") -> float:
    """The p-value of a permutation test of two independent samples (scipy.stats.
    permutation_test): `statistic(x, y, axis)` (default: the difference of means), exact
    when the number of distinct relabellings is at most `n_resamples`."""
    if statistic is None:
        def statistic(x, y, axis=-1):
            return np.mean(x, axis=axis) - np.mean(y, axis=axis)
    res = sps.permutation_test((np.asarray(a, np.float64), np.asarray(b, np.float64)), statistic,
                               permutation_type="independent", vectorized=True, n_resamples=n_resamples,
                               alternative=alternative, rng=rng)
    return float(res.pvalue)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the given order: the i-th smallest of n is
    multiplied by n - i + 1 (i from 1), made non-decreasing in that order and capped at 1;
    reject where the adjusted p < alpha (the family-wise error stays below alpha)."""
    p_N = np.asarray(p_values, np.float64)
    order_N = np.argsort(p_N, kind="stable")
    adjusted_N = np.minimum(1.0, np.maximum.accumulate((len(p_N) - np.arange(len(p_N))) * p_N[order_N]))
    out_N = np.empty_like(p_N)
    out_N[order_N] = adjusted_N
    return out_N


def above(k: int, N: int, p0: float) -> float:
    """The one-sided p-value of k successes in N against a success rate of p0 (H1: the rate
    exceeds p0): scipy.stats.binomtest(k, N, p0, alternative="greater"), exact; NaN when N = 0.
    p0 is taken as known: against a baseline measured on the same N items (such as the share of
    the cell's most common true answer, which is at least its expected value) the test is
    conservative."""
    if N == 0:
        return math.nan
    return float(sps.binomtest(int(k), int(N), float(min(max(p0, 0.0), 1.0)), alternative="greater").pvalue)


class Trend(NamedTuple):
    """A binary outcome's trend over a score x: `slope`, the change in the success rate per unit
    of x (the least-squares slope of the outcomes on x: with the same count at every level, the
    slope of the levels' rates); `low`, `high`, its bootstrap interval; `p`, the two-sided
    permutation p-value of no trend."""

    slope: float
    low: float
    high: float
    p: float


def trend(x, y, *, ci: float = 0.95, n_resamples: int = 9999, n_boot: int = 2000,
          rng: np.random.Generator | int | None = 0) -> Trend:
    """The trend of binary outcomes y (0/1, one per item) over a score x of the item's level
    (for example log2 m): a Cochran-Armitage test for trend, by permutation.

    The Cochran-Armitage statistic is T = sum_i (x_i - mean x) y_i, which is the least-squares
    slope of y on x times the fixed sum of squares of x; under H0 (the success rate does not
    depend on the level) the outcomes are exchangeable over the items, so the exact conditional
    test permutes y against x: scipy.stats.permutation_test (permutation_type="pairings",
    `n_resamples` random relabellings, two-sided; its Monte-Carlo p-value counts the observed
    labelling, and the two-sided one doubles the smaller tail, so p >= 2 / (n_resamples + 1)). Why this test and not others: the outcomes are
    binary, so the normal-error p-value of scipy.stats.linregress on per-item outcomes has no
    basis; scipy.stats.chi2_contingency on the 2 x k table tests any difference between the
    levels, not an ordered one, and loses power to its k - 1 degrees of freedom; the permutation
    test needs no large-sample approximation (it stays exact where most rates are near 0 or 1,
    where the asymptotic Cochran-Armitage z does not) and its statistic is the slope, an effect
    size in the data's own units.

    The interval (`ci`) of the slope is the percentile bootstrap (`bootstrap_interval`) with
    each level's outcomes resampled on their own (the design fixes how many items each level
    has). A constant y gives slope 0, interval [0, 0] and p = 1. `rng`: a seed or Generator
    (the default 0 makes the result reproducible)."""
    x_N = np.asarray(x, np.float64)
    y_N = np.asarray(y, np.float64)
    if x_N.shape != y_N.shape or x_N.ndim != 1 or len(np.unique(x_N)) < 2:
        raise ValueError("trend: x and y must be 1-d of the same length, with at least two levels of x")
    if not np.isin(y_N, (0.0, 1.0)).all():
        raise ValueError("trend: y must be binary (0/1)")
    dx_N = x_N - x_N.mean()
    sxx = float(dx_N @ dx_N)
    slope = float(dx_N @ y_N / sxx)
    rng = np.random.default_rng(rng)
    if np.all(y_N == y_N[0]):
        p = 1.0
    else:
        def statistic(y, axis=-1):
            return np.moveaxis(y, axis, -1) @ dx_N / sxx

        p = float(sps.permutation_test((y_N,), statistic, permutation_type="pairings", vectorized=True,
                                       n_resamples=n_resamples, alternative="two-sided", rng=rng).pvalue)
    levels_L = np.unique(x_N)
    groups = [y_N[x_N == v] for v in levels_L]
    N_L = np.array([len(g) for g in groups], np.float64)

    def slope_of_rates(*groups, axis=-1):
        rate_LxR = np.stack([np.mean(g, axis=axis) for g in groups])  # one row per level
        w_L = N_L / N_L.sum()
        xbar = w_L @ levels_L
        d_L = levels_L - xbar
        return np.tensordot(w_L * d_L, rate_LxR, axes=(0, 0)) / (w_L @ d_L**2)

    low, high = bootstrap_interval(groups, slope_of_rates, ci=ci, n_resamples=n_boot, rng=rng)
    return Trend(slope, float(low), float(high), p)
