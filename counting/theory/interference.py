"""Counting through m > d non-orthogonal token embeddings (claims 3 and 5).

Unit embeddings e_1..e_m in R^d. After uniform attention (the histogram mechanism) the
residual at the query q is x = e_q + (e_q + sum_t h_t e_t) / T, with h the content
histogram (sum_t h_t = n, h_q = c the answer). Three readouts of x, each with a precise
limit:

1. Projection (the histogram solution's own readout, <e_q, .>): it reads
   c + I with interference I = sum_{t != q} h_t <e_q, e_t>; in the worst case (n - c copies of
   q's most coherent rival) |I| = (n - c) mu_q, which must stay below the 1/2 decision
   margin for every c: exact iff n mu < 1/2, whatever the weight scale (scaling the readout
   scales signal and interference alike). `projection_n_max`.
2. Best linear readout <w_q, .> (any direction per query, any thresholds): with
   alpha = <w, e_q> and b_t = <w, e_t>, the counts c and c + 1 are separated for every
   histogram iff alpha - max b > (n - c - 1)(max b - min b); the ratio
   rho_q = max_w (alpha - max b) / (max b - min b) is a linear-fractional program (solved as
   an LP), and exactness holds iff n <= ceil(rho_q). rho is infinite when the other m - 1
   vectors lie in a hyperplane missing e_q (always for m <= d + 1). `linear_n_max`.
3. Any readout (an MLP of any width): it can only separate what differs. The margin
   delta(n) = min ||x - x'|| over two length-n sequences with the same query and different
   answers = min ||sum_t g_t e_t|| / T over integer g != 0 with sum_t g_t = 0 and
   ||g||_1 <= 2n (g = h - h'). A readout whose output moves by one count between them needs
   Lipschitz constant (a product of weight norms) at least Lambda(n) = 1/delta(n). `lattice_margin`
   computes delta exactly by enumeration. Pigeonhole (about n^(m-1) histograms in a ball of
   radius n in R^d) gives delta <= C n^(1 - (m-1)/d) / T, so Lambda grows at least like
   n^((m-1)/d) once m >= d + 2; for m <= d + 1 the lattice {g : sum g = 0} maps injectively
   (generic e) and Lambda grows like T, as with orthogonal embeddings. We use T = n + 1
   (query last, no BOS).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linprog

from counting.theory.coherence import normalise


def projection_n_max(E_mxd: np.ndarray) -> float:
    """Largest n with n mu < 1/2 (infinite for orthogonal embeddings)."""
    E = normalise(E_mxd)
    G = np.abs(E @ E.T)
    np.fill_diagonal(G, 0.0)
    mu = G.max()
    return math.inf if mu < 1e-12 else float(math.ceil(0.5 / mu) - 1)


def linear_rho(E_mxd: np.ndarray, q: int, cap: float = 1e9) -> float:
    """rho_q = max_w (<w, e_q> - max_t b_t) / (max_t b_t - min_t b_t) over t != q, b_t = <w, e_t>.

    LP in (w, s): maximise <w, e_q> - s subject to s - 1 <= <w, e_t> <= s (spread fixed to
    at most 1; the optimum uses all of it). Infinite when the LP is unbounded (capped).
    """
    E = normalise(E_mxd)
    others = np.delete(E, q, axis=0)
    k, d = others.shape
    cost = -np.r_[E[q], -1.0]  # minimise -(<w, e_q> - s)
    A = np.block([[others, -np.ones((k, 1))], [-others, np.ones((k, 1))]])
    b = np.r_[np.zeros(k), np.ones(k)]
    res = linprog(cost, A_ub=A, b_ub=b, bounds=[(-cap, cap)] * d + [(-cap, cap)], method="highs")
    value = -res.fun
    return math.inf if value > cap / 10 else float(value)


def linear_n_max(E_mxd: np.ndarray) -> float:
    """Largest n at which some linear readout per query decodes every count: min_q ceil(rho_q)."""
    rhos = [linear_rho(E_mxd, q) for q in range(len(E_mxd))]
    return min(math.inf if math.isinf(r) else float(math.ceil(r - 1e-9)) for r in rhos)


def l1_ball(P: int, R: int) -> np.ndarray:
    """All integer vectors of length P with L1 norm <= R (P >= 0)."""
    if P == 0:
        return np.zeros((1, 0), np.int64)
    rest = l1_ball(P - 1, R)
    rows = []
    r1 = np.abs(rest).sum(1)
    for g0 in range(-R, R + 1):
        keep = rest[r1 <= R - abs(g0)]
        rows.append(np.c_[np.full(len(keep), g0), keep])
    return np.concatenate(rows)


def lattice_margin(E_mxd: np.ndarray, n: int) -> float:
    """min ||sum_t g_t e_t|| over integer g != 0, sum g = 0, ||g||_1 <= 2n (exact).

    g = (prefix g_0..g_{m-3}, t, -(S + t)) with S = sum(prefix): sum_t g_t e_t = v + t w with
    v = sum_i g_i (e_i - e_{m-1}) and w = e_{m-2} - e_{m-1}. The prefixes are enumerated
    (the first coordinate in a loop); the best integer t is the rounding of the
    unconstrained minimiser clamped to the interval where |t| + |S + t| fits the L1 budget.
    """
    E = normalise(E_mxd)
    m = len(E)
    R = 2 * n
    w = E[m - 2] - E[m - 1]
    D_PxD = E[: m - 2] - E[m - 1]
    ww = float(w @ w)
    best = math.sqrt(ww)  # prefix 0, t = +-1
    if m < 3:
        return best
    rest = l1_ball(m - 3, R)
    rest_l1 = np.abs(rest).sum(1)
    for g0 in range(-R, R + 1):
        fits = rest_l1 <= R - abs(g0)
        g_QxP = np.c_[np.full(fits.sum(), g0), rest[fits]]
        g_QxP = g_QxP[np.any(g_QxP != 0, axis=1)]
        S_Q = g_QxP.sum(1)
        room_Q = R - np.abs(g_QxP).sum(1) - np.abs(S_Q)
        ok = room_Q >= 0
        g_QxP, S_Q, room_Q = g_QxP[ok], S_Q[ok], room_Q[ok]
        if not len(g_QxP):
            continue
        v_QxD = g_QxP @ D_PxD
        lo_Q = np.ceil(np.minimum(0, -S_Q) - room_Q / 2)
        hi_Q = np.floor(np.maximum(0, -S_Q) + room_Q / 2)
        t_star_Q = -(v_QxD @ w) / ww
        for t_Q in (np.floor(t_star_Q), np.floor(t_star_Q) + 1):
            t_Q = np.clip(t_Q, lo_Q, hi_Q)
            best = min(best, float(np.linalg.norm(v_QxD + t_Q[:, None] * w[None, :], axis=1).min()))
    return best


def margin_rows(embeddings: dict[str, np.ndarray], ns: dict[int, list[int]]) -> list[dict]:
    """delta(n) and Lambda(n) = T / delta(n) (T = n + 1) for each named embedding, over the n
    grid of its m."""
    rows = []
    for name, E in embeddings.items():
        m, d = E.shape
        for n in ns[m]:
            delta = lattice_margin(E, n)
            T = n + 1
            rows.append({"embedding": name, "d": d, "m": m, "n": n, "delta_sum": delta, "delta": delta / T,
                         "lipschitz_needed": math.inf if delta < 1e-12 else T / delta})
    return rows
