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
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

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
