"""m_thr: the largest vocabulary size m at which accuracy stays at or above tau.

Two estimators, both vectorised over bootstrap replicates (rows R) of a curve sampled at K
vocabulary sizes m_K (ascending):

- `interpolated`: walk up in m to the first grid point below tau and interpolate linearly in
  log m between it and the point before. A non-monotone curve is cut at its first crossing
  ("stays" above tau). If every m passes, m_thr is censored above (reported as the largest m
  of the grid); if the smallest m already fails, censored below (reported as the smallest m).
- `logistic`: least-squares fit of acc = lo + (hi - lo) / (1 + exp((log m - mu) / s)) and
  the m where it crosses tau; used where the curve allows it (at least 4 grid points, the fit
  spans tau and crosses it inside the grid). The fit is a grid search over (mu, s) with
  (lo, hi) solved in closed form, refined once: deterministic, no optimiser to tune.
"""

from __future__ import annotations

import numpy as np

ABOVE, BELOW, NONE = "above", "below", ""
MIN_LOGISTIC_POINTS = 4


def interpolated(m_K: np.ndarray, acc_RxK: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """(m_thr_R, censored_R) by log-linear interpolation at the first crossing below tau."""
    x_K = np.log(np.asarray(m_K, np.float64))
    R, _K = acc_RxK.shape
    below_RxK = acc_RxK < tau
    any_R = below_RxK.any(axis=1)
    i_R = np.argmax(below_RxK, axis=1)  # first failing grid point
    prev_R = np.maximum(i_R - 1, 0)
    rows_R = np.arange(R)
    a_R, b_R = acc_RxK[rows_R, prev_R], acc_RxK[rows_R, i_R]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac_R = np.where(a_R > b_R, (a_R - tau) / (a_R - b_R), 0.0)
    x_thr_R = x_K[prev_R] + np.clip(frac_R, 0.0, 1.0) * (x_K[i_R] - x_K[prev_R])
    m_thr_R = np.where(~any_R, m_K[-1], np.where(i_R == 0, m_K[0], np.exp(x_thr_R))).astype(np.float64)
    censored_R = np.where(~any_R, ABOVE, np.where(i_R == 0, BELOW, NONE))
    return m_thr_R, censored_R


def _grid(x_K: np.ndarray, mu_P: np.ndarray, s_P: np.ndarray, acc_RxK: np.ndarray):
    """Best (lo, hi, sse) per replicate and grid point: (lo, hi) in closed form."""
    g_PxK = 1.0 / (1.0 + np.exp(np.clip((x_K[None, :] - mu_P[:, None]) / s_P[:, None], -50, 50)))
    h_PxK = 1.0 - g_PxK
    a11_P, a12_P, a22_P = (h_PxK**2).sum(1), (h_PxK * g_PxK).sum(1), (g_PxK**2).sum(1)
    b1_RxP, b2_RxP = acc_RxK @ h_PxK.T, acc_RxK @ g_PxK.T
    det_P = a11_P * a22_P - a12_P**2
    ok_P = det_P > 1e-12
    det_P = np.where(ok_P, det_P, 1.0)
    lo_RxP = (a22_P * b1_RxP - a12_P * b2_RxP) / det_P
    hi_RxP = (a11_P * b2_RxP - a12_P * b1_RxP) / det_P
    yy_Rx1 = (acc_RxK**2).sum(1, keepdims=True)
    sse_RxP = yy_Rx1 - 2 * (lo_RxP * b1_RxP + hi_RxP * b2_RxP) + lo_RxP**2 * a11_P + 2 * lo_RxP * hi_RxP * a12_P + hi_RxP**2 * a22_P
    sse_RxP = np.where(ok_P & (hi_RxP > lo_RxP), sse_RxP, np.inf)  # accuracy falls with m
    return lo_RxP, hi_RxP, sse_RxP


def fit_logistic(m_K: np.ndarray, acc_RxK: np.ndarray) -> dict[str, np.ndarray]:
    """Per replicate: lo, hi, mu (in log m), s > 0, and the residual sum of squares."""
    x_K = np.log(np.asarray(m_K, np.float64))
    span = max(x_K[-1] - x_K[0], 1e-6)
    mu_G = np.linspace(x_K[0] - 0.5 * span, x_K[-1] + 0.5 * span, 61)
    s_G = span * np.geomspace(0.02, 2.0, 40)
    mu_P, s_P = (a.ravel() for a in np.meshgrid(mu_G, s_G, indexing="ij"))
    _lo_RxP, _hi_RxP, sse_RxP = _grid(x_K, mu_P, s_P, acc_RxK)
    best_R = np.argmin(sse_RxP, axis=1)
    mu_R, s_R = mu_P[best_R], s_P[best_R]
    # One refinement around each replicate's best point (a 9 x 9 local grid).
    dmu, ds = mu_G[1] - mu_G[0], np.log(s_G[1] / s_G[0])
    offs = np.linspace(-1.0, 1.0, 9)
    R = acc_RxK.shape[0]
    out = {k: np.empty(R) for k in ("lo", "hi", "mu", "s", "sse")}
    for r in range(R):
        mu_Q, s_Q = (a.ravel() for a in np.meshgrid(mu_R[r] + offs * dmu, s_R[r] * np.exp(offs * ds), indexing="ij"))
        lo_1xQ, hi_1xQ, sse_1xQ = _grid(x_K, mu_Q, s_Q, acc_RxK[r : r + 1])
        q = int(np.argmin(sse_1xQ[0]))
        out["lo"][r], out["hi"][r], out["mu"][r], out["s"][r], out["sse"][r] = (
            lo_1xQ[0, q], hi_1xQ[0, q], mu_Q[q], s_Q[q], sse_1xQ[0, q])
    return out


def logistic(m_K: np.ndarray, acc_RxK: np.ndarray, tau: float) -> np.ndarray:
    """m_thr_R where the fitted logistic crosses tau; NaN where the curve does not allow it."""
    R, K = acc_RxK.shape
    if K < MIN_LOGISTIC_POINTS:
        return np.full(R, np.nan)
    fit = fit_logistic(m_K, acc_RxK)
    lo_R, hi_R = fit["lo"], fit["hi"]
    spans_R = (lo_R < tau) & (tau < hi_R) & np.isfinite(fit["sse"])
    with np.errstate(invalid="ignore", divide="ignore"):
        x_thr_R = fit["mu"] + fit["s"] * np.log((hi_R - tau) / (tau - lo_R))
    x_K = np.log(np.asarray(m_K, np.float64))
    inside_R = spans_R & (x_thr_R >= x_K[0]) & (x_thr_R <= x_K[-1])
    return np.where(inside_R, np.exp(np.where(inside_R, x_thr_R, 0.0)), np.nan)
