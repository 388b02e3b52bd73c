"""The scaling law: log m_thr = a + b log d, fitted by least squares; the theory predicts b = 1
(the transition sits at d = m). The same fits give the theory's growth exponents
(counting.theory.tables)."""

from __future__ import annotations

import numpy as np


def loglog_fit(x_N, y_N) -> tuple[float, float]:
    """(slope b, intercept a) of log y = a + b log x (here: log m_thr against log d; the
    theory's growth exponents) over the points where both are positive and finite; NaN with
    fewer than 2 distinct x."""
    x_N, y_N = np.asarray(x_N, np.float64), np.asarray(y_N, np.float64)
    ok_N = np.isfinite(x_N) & np.isfinite(y_N) & (x_N > 0) & (y_N > 0)
    if len(set(x_N[ok_N])) < 2:
        return float("nan"), float("nan")
    b, a = np.polyfit(np.log(x_N[ok_N]), np.log(y_N[ok_N]), 1)
    return float(b), float(a)


def semilog_fit(x_N, y_N) -> tuple[float, float]:
    """(slope s, intercept b) of y = b + s ln x (logarithmic growth) over the points where x
    is positive and both are finite; NaN with fewer than 2 distinct x."""
    x_N, y_N = np.asarray(x_N, np.float64), np.asarray(y_N, np.float64)
    ok_N = np.isfinite(x_N) & np.isfinite(y_N) & (x_N > 0)
    if len(set(x_N[ok_N])) < 2:
        return float("nan"), float("nan")
    s, b = np.polyfit(np.log(x_N[ok_N]), y_N[ok_N], 1)
    return float(s), float(b)


def loglog_fit_replicates(d_D: np.ndarray, m_thr_RxD: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slope_R, intercept_R): the fit on every bootstrap replicate of the thresholds."""
    fits = [loglog_fit(d_D, row_D) for row_D in m_thr_RxD]
    return np.array([f[0] for f in fits]), np.array([f[1] for f in fits])
