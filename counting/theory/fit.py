"""Growth exponents: least-squares fits of log y against log x (or against ln x)."""

from __future__ import annotations

import numpy as np


def loglog_slope(x, y) -> tuple[float, float]:
    """(p, log a) of the fit y ~ a x^p over the points where both are positive and finite."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    p, log_a = np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)
    return float(p), float(log_a)


def log_slope(x, y) -> tuple[float, float]:
    """(s, b) of the fit y ~ s ln x + b (logarithmic growth)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    s, b = np.polyfit(np.log(x[ok]), y[ok], 1)
    return float(s), float(b)
