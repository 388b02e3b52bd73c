"""Linear probes of the residual stream at the analysed positions, after the first block's
attention and before its MLP (`trace.resid_BxAxD`): ridge regressions fitted on the first
half of the sequences and scored (R^2) on the second half. Each probe also sees the one-hot
of the position's own token (the MLP has it too): the residual holds the token's own
embedding beside what attention added, and only with it known is the histogram a linear
function of the residual (x = e_t + E^T hist / T under uniform attention).

- `probe_count_r2`: the count of the position's token (QC: the answer);
- `probe_inv_count_r2`: 1 / (count + 1), what CountAttend's BOS share carries linearly;
- `probe_hist_r2`: the whole token histogram (m targets; R^2 of all of them together, each
  centred on its training mean), what the histogram mechanism carries linearly.
"""

from __future__ import annotations

import numpy as np

from counting.inspect.trace import Trace
from counting.tasks import NUM_SPECIAL

RIDGE = 1e-4  # ridge penalty relative to the mean feature energy


def ridge_r2(X_NxD: np.ndarray, Y_NxK: np.ndarray, train_N: np.ndarray) -> float:
    """Held-out R^2 of the ridge fit Y ~ X W + b on rows train_N, scored on the others."""
    Xa_NxD = np.concatenate([X_NxD, np.ones((len(X_NxD), 1))], axis=1)
    Xt, Yt, Xv, Yv = Xa_NxD[train_N], Y_NxK[train_N], Xa_NxD[~train_N], Y_NxK[~train_N]
    G_DxD = Xt.T @ Xt
    lam = RIDGE * np.trace(G_DxD) / G_DxD.shape[0]
    reg = lam * np.eye(G_DxD.shape[0])
    reg[-1, -1] = 0.0  # the bias is not penalised
    W = np.linalg.solve(G_DxD + reg, Xt.T @ Yt)
    sst = ((Yv - Yt.mean(0)) ** 2).sum()
    return float(1.0 - ((Yv - Xv @ W) ** 2).sum() / sst) if sst > 0 else float("nan")


def probes(trace: Trace) -> dict[str, float]:
    """The three probes' held-out R^2 (probe_count_r2, probe_inv_count_r2, probe_hist_r2) on the residual stream
    plus the one-hot of each position's own token, fitted on the first half of the sequences."""
    B, A, D = trace.resid_BxAxD.shape
    own_NxM = np.eye(trace.m)[np.clip(trace.query_BxA - NUM_SPECIAL, 0, trace.m - 1).reshape(-1)]
    X_NxD = np.concatenate([trace.resid_BxAxD.reshape(B * A, D), own_NxM], axis=1)
    train_N = np.repeat(np.arange(B) < B // 2, A)  # split by sequence
    c_N = trace.count_BxA.reshape(-1).astype(np.float64)
    hist_NxM = np.repeat(trace.hist_BxM.astype(np.float64), A, axis=0)
    return {
        "probe_count_r2": ridge_r2(X_NxD, c_N[:, None], train_N),
        "probe_inv_count_r2": ridge_r2(X_NxD, 1.0 / (c_N[:, None] + 1.0), train_N),
        "probe_hist_r2": ridge_r2(X_NxD, hist_NxM, train_N),
    }
