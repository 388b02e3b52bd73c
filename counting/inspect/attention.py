"""The attention signature at the analysed positions (see `trace`): where the first
block's attention puts its mass.

- `att_bos`, `att_match`, `att_other`: mean mass on BOS, on the positions holding the
  analysed position's own token (itself included), and on all others.
- How the mass on matches f(c) scales with their number c. CountAttend: BOS and every match
  get comparable weight, so f(c) = c / (c + K) with K the BOS-to-match weight ratio
  (K = 1 in the construction); histogram: uniform attention, f(c) = c / T. `match_K` is the
  median over c of c (1 - f) / f; `rmse_count_attend` and `rmse_uniform` are the root mean
  square gaps between the per-c mean of f and each law (c weighted equally).
- `match_lift`: mean f over mean c / T; 1 for uniform attention, large for CountAttend.
- `other_lift`: mean mass on the others over their uniform share (T - c - BOS) / T; 1 for
  uniform attention, near 0 for CountAttend (attention leaves the non-matching tokens).
- `att_keys`: exp(entropy) of the weights, the effective number of attended keys.

With several heads, the head with the most mass on BOS and matches is reported. Linear
attention's weights are not a distribution (they may be negative); the masses are then the
plain sums of weights and the entropy is left out.
"""

from __future__ import annotations

import numpy as np

from counting.inspect.trace import Trace


def head_signature(trace: Trace, att_BxAxT: np.ndarray) -> dict[str, float]:
    """The attention signature (see the module's docstring) of one head's weights att_BxAxT at the analysed
    positions."""
    match_BxAxT = trace.is_match_BxAxT
    bos_T = trace.is_bos_T
    bos_BxA = att_BxAxT[..., bos_T].sum(-1)
    match_BxA = (att_BxAxT * match_BxAxT).sum(-1)
    total_BxA = att_BxAxT.sum(-1)
    c_BxA = trace.matches_BxA
    T_A = trace.keys_A
    f_by_c = {int(c): float(match_BxA[c_BxA == c].mean()) for c in np.unique(c_BxA)}
    c_C = np.array(sorted(f_by_c), np.float64)
    f_C = np.array([f_by_c[int(c)] for c in c_C])
    ok = (f_C > 1e-9) & (f_C < 1 - 1e-9)
    K = float(np.median(c_C[ok] * (1 - f_C[ok]) / f_C[ok])) if ok.any() else float("nan")
    T = float(T_A.mean())
    other_share = ((T_A[None] - c_BxA - bos_T.any()) / T_A[None]).mean()
    other = float((total_BxA - bos_BxA - match_BxA).mean())
    rmse = lambda law_C: float(np.sqrt(np.mean((f_C - law_C) ** 2)))
    nonneg = bool((att_BxAxT >= 0).all())
    p = np.clip(att_BxAxT, 1e-30, None)
    keys = float(np.exp(-(att_BxAxT * np.log(p)).sum(-1)).mean()) if nonneg else float("nan")
    return {
        "att_bos": float(bos_BxA.mean()) if bos_T.any() else float("nan"),
        "att_match": float(match_BxA.mean()),
        "att_other": other,
        "match_lift": float(match_BxA.mean() / (c_BxA / T_A[None]).mean()),
        "other_lift": other / other_share if other_share > 0 else float("nan"),
        "match_K": K,
        "rmse_count_attend": rmse(c_C / (c_C + K)) if np.isfinite(K) else float("nan"),
        "rmse_uniform": rmse(c_C / T),
        "att_keys": keys,
    }


def signature(trace: Trace) -> dict[str, float]:
    """The signature of the head with the most mass on BOS and matches, and which head that is (att_head)."""
    heads = [head_signature(trace, trace.att_BxHxAxT[:, h]) for h in range(trace.att_BxHxAxT.shape[1])]
    mass = [np.nan_to_num(s["att_bos"]) + s["att_match"] for s in heads]
    best = int(np.argmax(mass))
    return {**heads[best], "att_head": best}


def match_mass_by_count(trace: Trace, head: int = 0) -> dict[int, float]:
    """c -> mean mass on matches at positions with c matches (for figures and tests)."""
    match_BxA = (trace.att_BxHxAxT[:, head] * trace.is_match_BxAxT).sum(-1)
    c_BxA = trace.matches_BxA
    return {int(c): float(match_BxA[c_BxA == c].mean()) for c in np.unique(c_BxA)}
