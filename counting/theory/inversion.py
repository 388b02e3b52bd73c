"""The one-hidden-layer ReLU MLP that inverts CountAttend's BOS weight a = 1/(c + 2) -> c.

The grid: a_c = 1/(c + 2) for c = 0..n (the +2: BOS and the query position itself both
match). A continuous piecewise-linear (PL) function through chosen knots c_0 = 0 < c_1 <
... < c_J = n, linear in a between neighbouring knots and constant above a_0 = 1/2, is

    h(a) = sum_j (s_j - s_{j-1}) ReLU(a_{c_j} - a),   s_j = (c_{j+1} - c_j) / (a_{c_j} - a_{c_{j+1}}),

one hidden unit per segment (width J). Anchoring the units at the large-a end keeps every
term O(1), so no catastrophic cancellation occurs in low precision.

Exact interpolation puts a knot at every grid point (width n). The quadratic head only
needs |h(a_c) - c| < 1/2, and 1/a - 2 is convex, so a chord over [c_j, c_{j+1}] lies
above the curve with its largest gap inside; `greedy_knots` extends each segment as far as
the gap at every grid point inside stays below the tolerance. Convexity makes that
feasibility hereditary (a sub-chord's gaps are smaller), so the greedy choice is the
fewest knots among PL interpolants through grid points; it needs about sqrt(2n) of them
(a chord spanning k grid points near count c has gap about k^2 / (2c)).
"""

from __future__ import annotations

import numpy as np


def grid(n: int) -> np.ndarray:
    """a_C: the BOS weight 1/(c + 2) for each count c = 0..n."""
    return 1.0 / (np.arange(n + 1, dtype=np.float64) + 2.0)


def chord_gaps(c_lo: int, c_hi: int) -> np.ndarray:
    """gap_K: chord minus curve at the grid points strictly between counts c_lo < c_hi."""
    a_lo, a_hi = 1.0 / (c_lo + 2.0), 1.0 / (c_hi + 2.0)
    c_K = np.arange(c_lo + 1, c_hi, dtype=np.float64)
    chord_K = c_lo + (a_lo - 1.0 / (c_K + 2.0)) * (c_hi - c_lo) / (a_lo - a_hi)
    return chord_K - c_K


def max_gap(c_lo: int, c_hi: int) -> float:
    """The largest chord-minus-curve gap strictly between counts c_lo < c_hi (`chord_gaps`); 0 when no count
    lies between."""
    gaps = chord_gaps(c_lo, c_hi)
    return float(gaps.max()) if gaps.size else 0.0


def greedy_knots(n: int, tol: float) -> np.ndarray:
    """knots_J+1: the fewest grid knots whose PL interpolant stays within `tol` (strictly)
    of every count 0..n. Each segment is extended by doubling, then bisection."""
    knots = [0]
    while knots[-1] < n:
        lo = knots[-1]
        step = 1  # lo + step is always feasible (no grid point inside)
        while lo + 2 * step <= n and max_gap(lo, lo + 2 * step) < tol:
            step *= 2
        good, bad = lo + step, min(lo + 2 * step, n + 1)
        while bad - good > 1:
            mid = (good + bad) // 2
            good, bad = (mid, bad) if max_gap(lo, mid) < tol else (good, mid)
        knots.append(good)
    return np.asarray(knots)


def all_knots(n: int) -> np.ndarray:
    """Exact interpolation: a knot at every count."""
    return np.arange(n + 1)


def pl_units(knots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t_J, v_J): h(a) = sum_j v_j ReLU(t_j - a) through (a_{c_j}, c_j) for the knots."""
    c = knots.astype(np.float64)
    a = 1.0 / (c + 2.0)
    slope_J = np.diff(c) / (a[:-1] - a[1:])
    return a[:-1], np.diff(np.r_[0.0, slope_J])


def pl_eval(knots: np.ndarray, a: np.ndarray) -> np.ndarray:
    """h(a) in float64 for a >= a_{c_J} (the grid's range), by interpolation: O(n log n)."""
    c = knots.astype(np.float64)
    return np.interp(np.asarray(a, np.float64), (1.0 / (c + 2.0))[::-1], c[::-1])


def pl_units_eval(knots: np.ndarray, a: np.ndarray) -> np.ndarray:
    """h(a) as the MLP computes it, sum_j v_j ReLU(t_j - a) (O(n J): small n only)."""
    t_J, v_J = pl_units(knots)
    return np.maximum(t_J[None, :] - np.asarray(a, np.float64).reshape(-1, 1), 0.0) @ v_J


def worst_gap(knots: np.ndarray, n: int) -> float:
    """max_c |h(a_c) - c|: the part of the head's 1/2 tolerance the knots use up."""
    return float(np.abs(pl_eval(knots, grid(n)) - np.arange(n + 1)).max())


def decodes(knots: np.ndarray, n: int, tol: float = 0.5) -> bool:
    """Whether h(a_c) is within `tol` of c for every count c = 0..n (exact attention)."""
    return bool(np.all(np.abs(pl_eval(knots, grid(n)) - np.arange(n + 1)) < tol))


KNOTS = {
    "interp": lambda n: all_knots(n),
    "min": lambda n: greedy_knots(n, 0.5),
    "quarter": lambda n: greedy_knots(n, 0.25),
}
