"""CountAttend (claim 4): exact Query Count for any d >= 3 and any m, with BOS.

Layout of the d coordinates: U = the first d - 2 (token directions u_t, unit vectors),
C = d - 2 (content flag: 1 on every content token, the query included), B = d - 1 (BOS flag).
Weights of a one-layer `Transformer` (H = 1, no norm, no positions, no mask):

- embedding: content token t -> (u_t, 1, 0); BOS -> (0, 0, 1); SEP -> 0;
- attention, read at the query q: query = beta * (u_q on U, the content flag moved to B),
  key = (u_t on U, the BOS flag on B), so the logit is beta * <u_q, u_t> at a content token,
  beta at BOS and at every copy of q (the query position included), 0 at SEP. With c copies
  of q among the n tokens, BOS gets weight a = 1/(c + 2 + eps), where the leak
  eps = sum over non-matching tokens t of exp(-beta (1 - <u_q, u_t>)) <= (n - c) exp(-beta (1 - mu+)),
  mu+ = max_{s != t} <u_s, u_t>. value/out copy the BOS flag, so the residual's B coordinate
  at the query is a;
- MLP: reads a, writes h(a) onto C (`inversion`: the PL interpolant of 1/a - 2 through
  knots), the out bias removes the content flag;
- head: the quadratic head decodes C to the nearest count.

Variants (`INVERSES`): "interp" (a knot at every count, width n), "min" (fewest knots the
head tolerates, width ~ sqrt(2n)), "quarter" (chord gaps < 1/4, leaving half of the
head's tolerance to the leak), and "head": no MLP at all, the head itself inverts a, since
logits_k = 2(k + 2) - (k + 2)^2 a are maximised at the integer k nearest 1/a - 2.

Exactness needs the leak below what the inversion tolerates: eps < 1/2 for "head", so
beta > ln(2n) / (1 - mu+) (the worst case is c = 0 with n copies of q's most coherent
rival); "interp" needs eps < (c + 2)/(2c + 5), i.e. beta > ln(5n/2) for orthogonal u.
Counts 0..n are all decoded (c = 0: q absent, a = 1/2).
"""

from __future__ import annotations

import math

import numpy as np

from counting.config import ModelConfig, TaskConfig
from counting.tasks import BOS_ID, NUM_SPECIAL, class_of
from counting.theory import inversion
from counting.theory.coherence import optimised
from counting.theory.weights import Construction, blank, linear_readout, put, quadratic_head

INVERSES = ("interp", "min", "quarter", "head")


def default_directions(m: int, k: int) -> np.ndarray:
    """u_mxK: one-hot when m <= k, else m unit vectors spread on the circle (k = 2) or the
    coherence-optimised set of `counting.theory.coherence` (fixed seed)."""
    if m <= k:
        return np.eye(m, k)
    if k == 2:
        angle_M = 2 * np.pi * np.arange(m) / m
        return np.stack([np.cos(angle_M), np.sin(angle_M)], axis=1)
    return optimised(m, k, seed=0)


def max_signed_coherence(u_mxK: np.ndarray) -> float:
    """mu+ = max_{s != t} <u_s, u_t>: how close a rival's logit comes to a match's."""
    G = u_mxK @ u_mxK.T
    np.fill_diagonal(G, -np.inf)
    return float(G.max()) if len(u_mxK) > 1 else -1.0


def rivals(u_mxK: np.ndarray) -> np.ndarray:
    """rival_M: each token's most coherent other token (the worst leak)."""
    G = u_mxK @ u_mxK.T
    np.fill_diagonal(G, -np.inf)
    return G.argmax(1)


def worst_query(u_mxK: np.ndarray) -> int:
    """The query whose rival overlaps it most (the largest leak)."""
    G = u_mxK @ u_mxK.T
    np.fill_diagonal(G, -np.inf)
    return int(G.max(1).argmax())


def default_beta(n: int, mu_plus: float, gap: float = 0.0) -> float:
    """A logit scale whose worst leak n exp(-beta (1 - mu+)) is a quarter of the tolerance
    the inversion leaves (1/2 minus its largest gap `gap` at the grid)."""
    return math.log(4.0 * max(n, 1) / (0.5 - gap)) / (1.0 - max(mu_plus, 0.0))


def count_attend(task: TaskConfig, d: int, inverse: str = "interp", beta: float | None = None,
                 u: np.ndarray | None = None) -> Construction:
    """CountAttend for QC with BOS (query last or after a separator); u_mx(d-2) defaults to
    `default_directions`; beta to `default_beta`."""
    if not class_of(task.name).asks_query() or not task.bos:
        raise ValueError("CountAttend solves QC with a BOS token")
    if d < 3 or inverse not in INVERSES:
        raise ValueError(f"CountAttend needs d >= 3 and inverse in {INVERSES}, got d={d}, {inverse!r}")
    m, n, K = task.m, task.n, d - 2
    u = default_directions(m, K) if u is None else np.asarray(u, np.float64)
    mu_plus = max_signed_coherence(u)
    if mu_plus >= 1.0 - 1e-12:
        raise ValueError("two tokens share a direction: no beta separates them")
    C, B = d - 2, d - 1
    knots = None if inverse == "head" else inversion.KNOTS[inverse](n)
    gap = 0.0 if knots is None else inversion.worst_gap(knots, n)
    beta = default_beta(n, mu_plus, gap) if beta is None else beta
    w = 1 if knots is None else max(len(knots) - 1, 1)
    model = blank(ModelConfig(d=d, L=1, H=1, w=w, pos="none", causal=False, norm="none"), task)
    E = np.zeros((m + NUM_SPECIAL, d))
    E[NUM_SPECIAL:, :K] = u
    E[NUM_SPECIAL:, C] = 1.0
    E[BOS_ID, B] = 1.0
    put(model.embed.embedding, E)
    attn, mlp = model.blocks[0].attn, model.blocks[0].mlp
    s = beta * math.sqrt(d)  # the model divides logits by sqrt(d / H)
    Wq, Wk, Wv = np.zeros((d, d)), np.zeros((d, d)), np.zeros((d, d))
    Wq[:K, :K], Wq[C, B] = s * np.eye(K), s
    Wk[:K, :K], Wk[B, B] = np.eye(K), 1.0
    Wv[B, B] = 1.0
    for param, W in ((attn.query.kernel, Wq), (attn.key.kernel, Wk), (attn.value.kernel, Wv), (attn.out.kernel, Wv)):
        put(param, W)
    if knots is None:
        return _head_inverts(task, model, B)
    t_J, v_J = inversion.pl_units(knots)
    W1 = np.zeros((d, w))
    W1[B, : len(t_J)] = -1.0
    W2 = np.zeros((w, d))
    W2[: len(v_J), C] = v_J
    b1, b2 = np.zeros(w), np.zeros(d)
    b1[: len(t_J)] = t_J
    b2[C] = -1.0  # removes the query's content flag: C holds h(a)
    for param, W in ((mlp.hidden.kernel, W1), (mlp.hidden.bias, b1), (mlp.out.kernel, W2), (mlp.out.bias, b2)):
        put(param, W)
    r_D = np.eye(d)[C]
    quadratic_head(model, r_D, 0.0, n)
    return Construction(f"count_attend_{inverse}", task, model, linear_readout(r_D, 0.0))


def _head_inverts(task: TaskConfig, model, B: int) -> Construction:
    """No MLP: logits_k = 2(k + 2) - (k + 2)^2 a; the readout is 1/a - 2."""
    d, n = model.cfg.d, task.n
    y_C = np.arange(n + 1, dtype=np.float64) + 2.0
    W = np.zeros((d, n + 1))
    W[B] = -(y_C**2)
    put(model.head.kernel, W)
    put(model.head.bias, 2.0 * y_C)
    return Construction("count_attend_head", task, model, lambda x: 1.0 / np.asarray(x, np.float64)[..., B] - 2.0)


def beta_of(model) -> float:
    """The logit scale beta the query kernel implements (its content-flag -> BOS entry)."""
    d = model.cfg.d
    return float(np.asarray(model.blocks[0].attn.query.kernel[...])[d - 2, d - 1]) / math.sqrt(d)


def set_beta(model, beta: float) -> None:
    """Rescales the query kernel to logit scale `beta` (the shapes, hence the compiled
    forward, stay the same)."""
    Wq = np.asarray(model.blocks[0].attn.query.kernel[...], np.float64)
    put(model.blocks[0].attn.query.kernel, Wq * (beta / beta_of(model)))
