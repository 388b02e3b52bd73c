"""What CountAttend needs against n: MLP width and attention logit scale (claim 4).

- width: "interp" has one hidden unit per count (w = n); "min" the fewest grid knots whose
  PL interpolant stays within 1/2 of every count (`inversion.greedy_knots`, optimal among
  interpolants through grid points); "head" none at all (the quadratic-in-(k+2) head
  inverts a itself). Widths are computed in float64 for every n of the grid; up to
  `verify_n` each variant is also built and checked exact through the model.
- beta_min: the smallest logit scale at which the model (float32 argmax) is exact on the
  adversarial sequences (for each c, c copies of q and n - c copies of its most coherent
  rival), by bisection; exactness is monotone in beta because every leak term
  exp(-beta (1 - <u_q, u_t>)) falls with beta. Theory for orthogonal directions: ln(2n)
  for "head", ln(5n/2) for "interp" (see `count_attend`); for directions with largest
  signed overlap mu+, ln(2n) / (1 - mu+) for "head".
"""

from __future__ import annotations

import math

import numpy as np

from counting.config import TaskConfig
from counting.theory import inversion, sequences
from counting.theory.coherence import coherence, welch_bound
from counting.theory.count_attend import (
    INVERSES,
    beta_of,
    count_attend,
    default_directions,
    max_signed_coherence,
    rivals,
    set_beta,
    worst_query,
)
from counting.theory.precision import exactness
from counting.theory.weights import Construction, max_abs_weight


def widths(n: int) -> dict[str, int]:
    """The MLP widths of the CountAttend readout at n: interpolating every count (n), the fewest knots within
    1/2 and within 1/4 of every count 0..n (inversion.greedy_knots), and the head variant's (0)."""
    return {"w_interp": n, "w_min": len(inversion.greedy_knots(n, 0.5)) - 1,
            "w_quarter": len(inversion.greedy_knots(n, 0.25)) - 1, "w_head": 0}


def exact_f32(c: Construction, seqs: sequences.Sequences) -> bool:
    """Whether the construction is exact in float32 on the sequences (its model's argmax)."""
    return exactness(c, "float32", seqs)["model"]


def beta_min(c: Construction, seqs: sequences.Sequences, rel_tol: float = 1e-3) -> float:
    """Smallest beta (to rel_tol) at which `c` is exact on `seqs`; the model's beta is
    restored afterwards. NaN when not exact even at 4x its built beta."""
    model = c.model
    start = beta_of(model)
    lo, hi = 0.0, 4.0 * start
    set_beta(model, hi)
    if not exact_f32(c, seqs):
        set_beta(model, start)
        return float("nan")
    while hi - lo > rel_tol * hi:
        mid = 0.5 * (lo + hi)
        set_beta(model, mid)
        lo, hi = (lo, mid) if exact_f32(c, seqs) else (mid, hi)
    set_beta(model, start)
    return hi


def theory_beta(n: int, inverse: str, mu_plus: float = 0.0) -> float:
    """The leak bound's threshold: ln(2n) (head), ln(5n/2) (interp, orthogonal directions)."""
    base = {"head": math.log(2 * n), "interp": math.log(2.5 * n)}.get(inverse, float("nan"))
    return base / (1.0 - max(mu_plus, 0.0))


def adversarial_for(task: TaskConfig, u: np.ndarray) -> sequences.Sequences:
    """The adversarial sequences of the task for token directions u: each token against its most coherent rival,
    QC's query the one with the largest leak."""
    return sequences.adversarial(task, rivals(u), worst=worst_query(u))


def width_rows(ns: list[int], verify_n: int, m: int = 4, d: int = 6) -> list[dict]:
    """One row per n: the widths, and for n <= verify_n each variant's exactness at its
    default beta, its beta_min and largest weights."""
    rows = []
    for n in ns:
        row: dict = {"n": n, **widths(n), "sqrt_2n": math.sqrt(2 * n)}
        if n <= verify_n:
            task = TaskConfig("qc", m=m, n=n)
            u = default_directions(m, d - 2)
            seqs = sequences.concat([adversarial_for(task, u), sequences.uniform(task, 32), sequences.balanced(task, 32)])
            for inverse in INVERSES:
                c = count_attend(task, d, inverse, u=u)
                row[f"exact_{inverse}"] = exact_f32(c, seqs)
                row[f"beta_default_{inverse}"] = beta_of(c.model)
                row[f"beta_min_{inverse}"] = beta_min(c, adversarial_for(task, u))
                for part, value in max_abs_weight(c.model).items():
                    row[f"max_{part}_{inverse}"] = value
            row["beta_theory_head"] = theory_beta(n, "head")
            row["beta_theory_interp"] = theory_beta(n, "interp")
        rows.append(row)
    return rows


def coherent_rows(ds: list[int], ms: list[int], ns: list[int]) -> list[dict]:
    """beta_min of the "head" variant with m token directions in d - 2 dimensions (one-hot
    when m <= d - 2, else spread: the circle for d = 4, coherence-optimised otherwise),
    against n, beside the leak bound ln(2n) / (1 - mu+)."""
    rows = []
    for d in ds:
        for m in ms:
            u = default_directions(m, d - 2)
            mu, mu_plus = coherence(u) if m > 1 else 0.0, max_signed_coherence(u)
            for n in ns:
                task = TaskConfig("qc", m=m, n=n)
                c = count_attend(task, d, "head", u=u)
                seqs = adversarial_for(task, u)
                rows.append({"d": d, "m": m, "m_over_d": m / d, "n": n, "mu": mu, "mu_plus": mu_plus,
                             "welch_u": welch_bound(m, d - 2), "beta_min": beta_min(c, seqs),
                             "beta_theory": theory_beta(n, "head", mu_plus), "exact_default": exact_f32(c, seqs)})
    return rows
