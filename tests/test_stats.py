"""counting.analysis.stats (scipy.stats underneath) against the suite's earlier hand-written
estimators, copied here as references, and against hand computations, on planted data."""

import itertools
import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from counting.analysis import stats, threshold

# --- the hand-written estimators the suite used before scipy.stats (references) -------------

Z95 = 1.959963984540054


def wilson_reference(k: int, N: int, z: float = Z95) -> tuple[float, float]:
    """counting/llm/table.py:wilson, as it was."""
    if N == 0:
        return math.nan, math.nan
    p = k / N
    center = (p + z * z / (2 * N)) / (1 + z * z / N)
    half = z * math.sqrt(p * (1 - p) / N + z * z / (4 * N * N)) / (1 + z * z / N)
    return (0.0 if k == 0 else max(0.0, center - half)), (1.0 if k == N else min(1.0, center + half))


def resampled_reference(acc_S: np.ndarray, boot: int, rng: np.random.Generator) -> np.ndarray:
    """counting/analysis/bootstrap.py:resampled: the seeds resampled `boot` times."""
    S = len(acc_S)
    return acc_S[rng.integers(0, S, size=(boot, S))]


def interval_reference(samples_R: np.ndarray, ci: float) -> tuple[float, float]:
    """counting/analysis/bootstrap.py:interval: the central percentile interval of the finite
    replicates (NaN if fewer than half are)."""
    finite_R = samples_R[np.isfinite(samples_R)]
    if len(finite_R) < max(1, len(samples_R) // 2):
        return float("nan"), float("nan")
    a = (1.0 - ci) / 2.0
    lo, hi = np.quantile(finite_R, [a, 1.0 - a])
    return float(lo), float(hi)


BOOT, TOL = 2000, 0.02  # replicates, and the Monte-Carlo tolerance on accuracies in [0, 1]


def planted(S: int, mean: float, sd: float, seed: int) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).normal(mean, sd, S), 0.0, 1.0)


# --- Wilson ----------------------------------------------------------------------------------

def test_wilson_equals_the_hand_written_interval():
    for N in (1, 2, 5, 10, 37, 100, 1000):
        for k in range(N + 1):
            ours, ref = stats.wilson(k, N), wilson_reference(k, N)
            assert ours == pytest.approx(ref, abs=1e-12, rel=0), (k, N)
    assert stats.wilson(7, 20, ci=0.9) == pytest.approx(wilson_reference(7, 20, z=1.6448536269514722), abs=1e-12)
    assert all(math.isnan(v) for v in stats.wilson(0, 0))


# --- the percentile bootstrap over seeds -----------------------------------------------------

@pytest.mark.parametrize("S, mean, sd", [(5, 0.9, 0.05), (10, 0.6, 0.2), (20, 0.97, 0.03)])
def test_percentile_bootstrap_of_mean_best_and_share_is_the_hand_written_one(S, mean, sd):
    acc_S = planted(S, mean, sd, seed=S)
    share = lambda a, axis=-1: (a >= 0.9).mean(axis=axis)
    for statistic in (np.mean, np.max, share):
        ref = interval_reference(statistic(resampled_reference(acc_S, BOOT, np.random.default_rng(1)), axis=1), 0.95)
        ours = stats.bootstrap_interval((acc_S,), statistic, ci=0.95, n_resamples=BOOT, rng=2)
        tol = TOL if statistic is not share else 1.0 / S + 1e-9  # a share moves in steps of 1/S
        assert ours == pytest.approx(ref, abs=tol), statistic


def test_bootstrap_of_a_threshold_resamples_each_cell_independently_like_the_hand_written_one():
    m_K = np.array([2, 4, 8, 16, 32, 64])
    rng = np.random.default_rng(3)
    acc_KxS = [np.clip(1.0 / (1.0 + (m / 12.0) ** 3) * 0.7 + 0.3 + rng.normal(0, 0.04, 8), 0, 1) for m in m_K]
    # reference: every cell's seeds resampled on their own, the curve of means cut at tau per replicate
    ref_rng = np.random.default_rng(4)
    mean_RxK = np.stack([resampled_reference(a, BOOT, ref_rng).mean(axis=1) for a in acc_KxS], axis=1)
    ref = interval_reference(threshold.interpolated(m_K, mean_RxK, 0.8)[0], 0.95)

    def m_thr(*acc, axis=-1):
        mean_RxK = np.stack([a.mean(axis=axis) for a in acc], axis=-1)
        return threshold.interpolated(m_K, mean_RxK.reshape(-1, len(m_K)), 0.8)[0].reshape(mean_RxK.shape[:-1])

    ours = stats.bootstrap_interval(acc_KxS, m_thr, ci=0.95, n_resamples=BOOT, rng=5)
    assert ref[0] < threshold.interpolated(m_K, np.stack([a.mean() for a in acc_KxS])[None], 0.8)[0][0] < ref[1]
    assert ours == pytest.approx(ref, rel=0.01)


def test_bootstrap_degenerate_cells_and_non_finite_replicates_as_before():
    one, same = np.array([0.7]), np.full(6, 0.25)
    for acc_S in (one, same):  # one seed, or every seed equal: a point interval, as resampling gave
        ref = interval_reference(resampled_reference(acc_S, 100, np.random.default_rng(0)).mean(axis=1), 0.95)
        assert stats.bootstrap_interval((acc_S,), np.mean, n_resamples=100, rng=0) == ref == (acc_S[0], acc_S[0])
        assert stats.bootstrap_interval((acc_S,), np.mean, n_resamples=100, rng=0, method="BCa") == ref
    # a cell of one seed beside a varying one: it stays fixed, the other is resampled
    low, high = stats.bootstrap_interval((one, planted(10, 0.5, 0.1, 0)),
                                         lambda a, b, axis=-1: np.stack([a.mean(axis), b.mean(axis)]), rng=0)
    assert low[0] == high[0] == 0.7 and low[1] < 0.5 < high[1]
    # a statistic the resample does not always allow (NaN): the finite replicates, or NaN if under half
    acc_S = planted(12, 0.5, 0.2, 1)
    for cut in (0.4, 0.6):
        partial = lambda a, axis=-1, cut=cut: np.where(a.mean(axis) < cut, np.nan, a.mean(axis))
        ref = interval_reference(partial(resampled_reference(acc_S, BOOT, np.random.default_rng(6)), axis=1), 0.95)
        ours = stats.bootstrap_interval((acc_S,), partial, n_resamples=BOOT, rng=7)
        if math.isnan(ref[0]):
            assert all(math.isnan(v) for v in ours)
        else:
            assert ours == pytest.approx(ref, abs=TOL)


def test_bca_is_near_the_percentile_interval_on_a_smooth_statistic():
    acc_S = planted(30, 0.6, 0.1, 8)
    pct = stats.bootstrap_interval((acc_S,), np.mean, n_resamples=BOOT, rng=9)
    bca = stats.bootstrap_interval((acc_S,), np.mean, n_resamples=BOOT, rng=9, method="BCa")
    assert bca[0] < acc_S.mean() < bca[1] and bca == pytest.approx(pct, abs=TOL)


# --- tests -------------------------------------------------------------------------------------

def welch_by_hand(a, b) -> tuple[float, float, float, float]:
    """(t, df, difference, se): Welch's statistic and Welch-Satterthwaite degrees of freedom."""
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    diff = float(np.mean(a) - np.mean(b))
    return diff / se, df, diff, se


def test_welch_t_equals_a_hand_computation():
    a, b = planted(7, 0.8, 0.05, 10), planted(12, 0.75, 0.1, 11)
    t, p = stats.welch(a, b)
    t_hand, df, _, _ = welch_by_hand(a, b)
    assert t == pytest.approx(t_hand, rel=1e-12) and p == pytest.approx(2 * student_t.sf(abs(t_hand), df), rel=1e-9)


def test_tost_p_values_by_hand_and_the_verdicts_on_planted_samples():
    margin = 0.02
    ours, theirs = planted(20, 0.9, 0.01, 12), planted(20, 0.9, 0.01, 13)
    p_lower, p_upper, p = stats.tost(ours, theirs, margin)
    _, df, diff, se = welch_by_hand(ours, theirs)
    assert p_lower == pytest.approx(student_t.sf((diff + margin) / se, df), rel=1e-9)
    assert p_upper == pytest.approx(student_t.cdf((diff - margin) / se, df), rel=1e-9) and p == max(p_lower, p_upper)
    assert stats.agreement(ours, theirs, margin) == "equivalent"
    assert stats.agreement(ours, theirs - 2 * margin, margin) == "differs"
    assert stats.agreement(ours, theirs + 2 * margin, margin) == "differs"
    assert stats.agreement(np.array([0.80, 0.95]), np.array([0.85, 0.99]), margin) == "undecided"  # two noisy seeds


def test_permutation_test_equals_the_exact_enumeration():
    a, b = np.array([0.91, 0.88, 0.95, 0.97]), np.array([0.80, 0.86, 0.90, 0.79])
    pooled, observed = np.concatenate([a, b]), a.mean() - b.mean()
    null = [pooled[list(i)].mean() - np.delete(pooled, list(i)).mean() for i in itertools.combinations(range(8), 4)]
    exact = np.mean(np.abs(null) >= abs(observed) - 1e-12)  # 70 relabellings: scipy enumerates them all
    assert stats.permutation(a, b, rng=0) == pytest.approx(exact, rel=1e-12)
    assert stats.permutation(a, b, rng=0, alternative="greater") == pytest.approx(np.mean(np.array(null) >= observed - 1e-12))


def test_holm_on_a_hand_computed_example():
    # sorted 0.005 0.01 0.03 0.04 times 4 3 2 1 = 0.02 0.03 0.06 0.04 -> non-decreasing 0.02 0.03 0.06 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0]) and stats.holm([0.2]) == pytest.approx([0.2])
    assert len(stats.holm([])) == 0


def test_growth_exponent_interval_matches_the_hand_written_bootstrap():
    """counting.inspect.growth.exponent_interval (scipy.stats.bootstrap, models resampled in
    pairs) against the loop it replaced, on planted power-law data: the same point, an interval
    within Monte-Carlo tolerance."""
    from counting.inspect.growth import BOOT, CI, exponent_interval, loglog_slope

    rng = np.random.default_rng(3)
    g_N = np.repeat([8, 16], 12)
    x_N = np.tile(np.linspace(0.5, 3.0, 12), 2)
    y_N = x_N**1.5 * np.exp(rng.normal(0, 0.2, len(x_N))) * np.where(g_N == 8, 1.0, 2.0)

    def old(x_N, y_N, g_N, rng):  # the hand-written percentile bootstrap it replaced
        p = loglog_slope(x_N, y_N, g_N)
        reps = []
        for _ in range(BOOT):
            i_N = rng.integers(0, len(x_N), len(x_N))
            reps.append(loglog_slope(x_N[i_N], y_N[i_N], g_N[i_N]))
        reps = np.array([r for r in reps if np.isfinite(r)])
        lo, hi = np.quantile(reps, [(1 - CI) / 2, (1 + CI) / 2])
        return p, float(lo), float(hi)

    p_new, lo_new, hi_new = exponent_interval(x_N, y_N, g_N, np.random.default_rng(0))
    p_old, lo_old, hi_old = old(x_N, y_N, g_N, np.random.default_rng(0))
    assert p_new == p_old and abs(p_new - 1.5) < 0.2
    assert abs(lo_new - lo_old) < 0.05 and abs(hi_new - hi_old) < 0.05, (lo_new, lo_old, hi_new, hi_old)


# --- a proportion against a baseline, and the trend of a binary outcome --------------------------

def test_above_is_the_binomial_upper_tail_by_hand():
    for k, N, p0 in ((30, 100, 0.2), (0, 10, 0.1), (10, 10, 0.5), (13, 100, 0.125)):
        tail = sum(math.comb(N, j) * p0**j * (1 - p0) ** (N - j) for j in range(k, N + 1))
        assert stats.above(k, N, p0) == pytest.approx(tail, rel=1e-9, abs=1e-15)
    assert math.isnan(stats.above(0, 0, 0.5))


def cochran_armitage_reference(x, y) -> float:
    """The asymptotic two-sided Cochran-Armitage p-value by hand: T = sum (x - mean x) y over
    its permutation standard deviation, against the normal."""
    from scipy.stats import norm

    x, y = np.asarray(x, float), np.asarray(y, float)
    dx, N, p = x - x.mean(), len(x), y.mean()
    z = (dx @ y) / math.sqrt(p * (1 - p) * (dx @ dx) * N / (N - 1))
    return float(2 * norm.sf(abs(z)))


def planted_binary(rates, per_level: int, seed: int, levels=(1.0, 2.0, 3.0, 4.0)):
    rng = np.random.default_rng(seed)
    x = np.repeat(np.asarray(levels[:len(rates)], float), per_level)
    y = np.concatenate([rng.random(per_level) < r for r in rates]).astype(int)
    return x, y


def test_trend_detects_a_strong_decline_with_its_slope():
    x, y = planted_binary([0.9, 0.7, 0.4, 0.1], 100, seed=0)
    t = stats.trend(x, y)
    assert t.p <= 2 / 10000 + 1e-12 and t.slope < 0 and t.low <= t.slope <= t.high < 0
    # the slope is that of the levels' rates (100 prompts each) on x
    rates = [y[x == v].mean() for v in (1, 2, 3, 4)]
    assert t.slope == pytest.approx(np.polyfit([1, 2, 3, 4], rates, 1)[0], rel=1e-12)
    assert t.slope == pytest.approx(-0.27, abs=0.03)


def test_trend_finds_no_trend_in_a_flat_rate():
    x, y = planted_binary([0.3, 0.3, 0.3, 0.3], 100, seed=1)
    t = stats.trend(x, y)
    assert t.p > 0.05 and t.low < 0 < t.high
    # over many flat data sets it rejects at about its level (a few of 40 at 0.05)
    rejected = sum(stats.trend(*planted_binary([0.2] * 3, 100, seed=s), n_resamples=999, n_boot=200).p < 0.05
                   for s in range(40))
    assert rejected <= 5


def test_trend_permutation_p_is_the_cochran_armitage_p():
    # a mild decline (p about 0.04-0.09 here): the permutation p also counts the relabellings tied
    # with the observed statistic, so it lies a little above the normal one (half a lattice step)
    for seed in range(3):
        x, y = planted_binary([0.25, 0.22, 0.2, 0.17], 150, seed=seed)
        ref = cochran_armitage_reference(x, y)
        assert 0.01 < ref < 0.2 and stats.trend(x, y).p == pytest.approx(ref, abs=0.01)


def test_trend_of_constant_outcomes_and_bad_input():
    assert stats.trend([1, 1, 2, 2], [0, 0, 0, 0]) == (0.0, 0.0, 0.0, 1.0)
    t = stats.trend([1, 1, 2, 2], [1, 1, 0, 0])  # each level constant: the interval is the point
    assert t.slope == t.low == t.high == -1.0
    with pytest.raises(ValueError, match="two levels"):
        stats.trend([1, 1, 1], [0, 1, 0])
    with pytest.raises(ValueError, match="binary"):
        stats.trend([1, 2, 3], [0, 2, 1])
