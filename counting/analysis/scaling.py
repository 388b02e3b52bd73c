"""The scaling law: log m_thr = a + b log d, fitted by least squares; the theory predicts b = 1
(the transition sits at d = m)."""

from __future__ import annotations

import numpy as np


def loglog_fit(d_D: np.ndarray, m_thr_D: np.ndarray) -> tuple[float, float]:
    """(slope b, intercept a) of log m_thr against log d; NaN with fewer than 2 finite points."""
    ok_D = np.isfinite(m_thr_D) & (m_thr_D > 0)
    if ok_D.sum() < 2 or len(set(np.asarray(d_D)[ok_D])) < 2:
        return float("nan"), float("nan")
    x_D, y_D = np.log(np.asarray(d_D, np.float64)[ok_D]), np.log(m_thr_D[ok_D])
    b, a = np.polyfit(x_D, y_D, 1)
    return float(b), float(a)


def loglog_fit_replicates(d_D: np.ndarray, m_thr_RxD: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slope_R, intercept_R): the fit on every bootstrap replicate of the thresholds."""
    fits = [loglog_fit(d_D, row_D) for row_D in m_thr_RxD]
    return np.array([f[0] for f in fits]), np.array([f[1] for f in fits])
